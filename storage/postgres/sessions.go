package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/smallsso/provider/storage"
)

func (s *Store) CreateBrowserSession(ctx context.Context, b storage.BrowserSession) error {
	data, err := json.Marshal(b)
	if err != nil {
		return wrap("create browser session", err)
	}
	return wrap("create browser session", s.single(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, `INSERT INTO browser_sessions (id, user_id, expires_at, data) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
			b.ID, b.UserID, nullTime(b.ExpiresAt), data)
		if err == nil && tag.RowsAffected() == 0 {
			return storage.ErrAlreadyExists
		}
		return err
	}))
}

func (s *Store) GetBrowserSession(ctx context.Context, id string) (storage.BrowserSession, error) {
	return getRecord[storage.BrowserSession](ctx, s, "get browser session", `SELECT data FROM browser_sessions WHERE id = $1`, id)
}

// UpdateBrowserSession locks the row, applies fn, writes the result back.
func (s *Store) UpdateBrowserSession(ctx context.Context, id string, fn func(storage.BrowserSession) (storage.BrowserSession, error)) error {
	var fnErr error
	err := s.atomic(ctx, func(tx pgx.Tx) error {
		fnErr = nil
		old, err := scanRecord[storage.BrowserSession](tx.QueryRow(ctx, `SELECT data FROM browser_sessions WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		b, err := fn(old)
		if err != nil {
			fnErr = err
			return err
		}
		b.ID = id
		data, err := json.Marshal(b)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE browser_sessions SET user_id = $2, expires_at = $3, data = $4 WHERE id = $1`,
			id, b.UserID, nullTime(b.ExpiresAt), data)
		return err
	})
	if fnErr != nil && errors.Is(err, fnErr) {
		return fnErr
	}
	return wrap("update browser session", err)
}

func (s *Store) DeleteBrowserSession(ctx context.Context, id string) error {
	return s.deleteOne(ctx, "delete browser session", `DELETE FROM browser_sessions WHERE id = $1`, id)
}

// ListUserSessions reads through the user_id index.
func (s *Store) ListUserSessions(ctx context.Context, userID string) ([]storage.BrowserSession, error) {
	return listRecords[storage.BrowserSession](ctx, s, "list browser sessions of user", `SELECT data FROM browser_sessions WHERE user_id = $1`, userID)
}

func (s *Store) WalkBrowserSessions(ctx context.Context, fn func(storage.BrowserSession) error) error {
	return wrap("walk browser sessions", walk(ctx, s, `SELECT data FROM browser_sessions`, fn))
}

func (s *Store) SaveConsent(ctx context.Context, c storage.Consent) error {
	data, err := json.Marshal(c)
	if err != nil {
		return wrap("save consent", err)
	}
	return wrap("save consent", s.single(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO consents (user_id, client_id, expires_at, data) VALUES ($1, $2, $3, $4)
			ON CONFLICT (user_id, client_id) DO UPDATE SET expires_at = EXCLUDED.expires_at, data = EXCLUDED.data`,
			c.UserID, c.ClientID, nullTime(c.ExpiresAt), data)
		return err
	}))
}

func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (storage.Consent, error) {
	return getRecord[storage.Consent](ctx, s, "get consent", `SELECT data FROM consents WHERE user_id = $1 AND client_id = $2`, userID, clientID)
}

func (s *Store) ListConsents(ctx context.Context, userID string) ([]storage.Consent, error) {
	return listRecords[storage.Consent](ctx, s, "list consents", `SELECT data FROM consents WHERE user_id = $1`, userID)
}

func (s *Store) DeleteConsent(ctx context.Context, userID, clientID string) error {
	return s.deleteOne(ctx, "delete consent", `DELETE FROM consents WHERE user_id = $1 AND client_id = $2`, userID, clientID)
}

func (s *Store) WalkConsents(ctx context.Context, fn func(storage.Consent) error) error {
	return wrap("walk consents", walk(ctx, s, `SELECT data FROM consents`, fn))
}

// CreateJTI is one INSERT ... ON CONFLICT DO UPDATE that replaces the
// old record only if it had expired at the caller's now: of two racing
// callers with one ID, the second waits for the first's row, then finds
// it unexpired and inserts nothing.
func (s *Store) CreateJTI(ctx context.Context, j storage.JTI, now time.Time) error {
	return wrap("create jti", s.single(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, `INSERT INTO jtis (id, expires_at) VALUES ($1, $2)
			ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at
			WHERE jtis.expires_at IS NOT NULL AND jtis.expires_at < $3`,
			textKey(j.ID), nullTime(j.ExpiresAt), now)
		if err == nil && tag.RowsAffected() == 0 {
			return storage.ErrAlreadyExists
		}
		return err
	}))
}

func scanJTI(row pgx.Row) (storage.JTI, error) {
	var j storage.JTI
	var exp *time.Time
	if err := row.Scan(&j.ID, &exp); err != nil {
		return j, err
	}
	if exp != nil {
		j.ExpiresAt = exp.UTC()
	}
	return j, nil
}

func (s *Store) GetJTI(ctx context.Context, id string) (storage.JTI, error) {
	q, err := s.q(ctx)
	if err != nil {
		return storage.JTI{}, wrap("get jti", err)
	}
	j, err := scanJTI(q.QueryRow(ctx, `SELECT id, expires_at FROM jtis WHERE id = $1`, textKey(id)))
	return j, wrap("get jti", err)
}

func (s *Store) WalkJTIs(ctx context.Context, fn func(storage.JTI) error) error {
	return wrap("walk jtis", s.each(ctx, `SELECT id, expires_at FROM jtis`, nil, func(rows pgx.Rows) error {
		j, err := scanJTI(rows)
		if err != nil {
			return err
		}
		return fn(j)
	}))
}

// walk calls fn on every record whose JSON sql selects.
func walk[T any](ctx context.Context, s *Store, sql string, fn func(T) error) error {
	return s.each(ctx, sql, nil, func(rows pgx.Rows) error {
		rec, err := scanRecord[T](rows)
		if err != nil {
			return err
		}
		return fn(rec)
	})
}
