package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/smallsso/provider/storage"
)

// Error prefixes name the kind but never the signature: a signature is
// half of a bearer credential and error text ends up in logs.

const tokenColumns = `active, replay, replay_until, data`

// The statements that find tokens by something other than their key, each
// served by an index (index_internal_test.go checks the plans).
const (
	sqlRevokeByRequestID   = `DELETE FROM tokens WHERE kind = $1 AND request_id = $2`
	sqlListSubjectTokens   = `SELECT ` + tokenColumns + ` FROM tokens WHERE subject = $1 AND kind = $2 AND subject <> ''`
	sqlRevokeSubjectClient = `DELETE FROM tokens WHERE subject = $1 AND client_id = $2 AND subject <> ''`
)

func checkKind(kind storage.TokenKind) error {
	for _, k := range storage.TokenKinds {
		if k == kind {
			return nil
		}
	}
	return fmt.Errorf("unknown token kind %q", kind)
}

// nullTime is t for a timestamptz column, NULL for the zero time.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func (s *Store) CreateToken(ctx context.Context, r storage.TokenRequest) error {
	op := "create " + string(r.Kind) + " token"
	if err := checkKind(r.Kind); err != nil {
		return wrap(op, err)
	}
	if r.Signature == "" {
		return wrap(op, fmt.Errorf("signature is required"))
	}
	rest := r
	rest.Replay, rest.ReplayUntil = nil, time.Time{}
	data, err := json.Marshal(rest)
	if err != nil {
		return wrap(op, err)
	}
	var replay []byte
	if len(r.Replay) > 0 {
		replay = r.Replay
	}
	return wrap(op, s.single(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, `INSERT INTO tokens (kind, signature, request_id, client_id, subject, active, expires_at, replay, replay_until, data)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`,
			r.Kind, r.Signature, r.RequestID, r.ClientID, r.Subject, r.Active, nullTime(r.ExpiresAt), replay, nullTime(r.ReplayUntil), data)
		if err == nil && tag.RowsAffected() == 0 {
			return storage.ErrAlreadyExists
		}
		return err
	}))
}

func scanToken(row pgx.Row) (storage.TokenRequest, error) {
	var (
		r      storage.TokenRequest
		active bool
		replay []byte
		until  *time.Time
		data   []byte
	)
	if err := row.Scan(&active, &replay, &until, &data); err != nil {
		return r, err
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, err
	}
	r.Active = active
	if len(replay) > 0 {
		r.Replay = replay
	}
	if until != nil {
		r.ReplayUntil = until.UTC()
	}
	return r, nil
}

func (s *Store) GetToken(ctx context.Context, kind storage.TokenKind, signature string) (storage.TokenRequest, error) {
	op := "get " + string(kind) + " token"
	if err := checkKind(kind); err != nil {
		return storage.TokenRequest{}, wrap(op, err)
	}
	q, err := s.q(ctx)
	if err != nil {
		return storage.TokenRequest{}, wrap(op, err)
	}
	r, err := scanToken(q.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE kind = $1 AND signature = $2`, kind, signature))
	return r, wrap(op, err)
}

func (s *Store) DeleteToken(ctx context.Context, kind storage.TokenKind, signature string) error {
	return s.deleteOne(ctx, "delete "+string(kind)+" token", `DELETE FROM tokens WHERE kind = $1 AND signature = $2`, kind, signature)
}

// DeactivateToken is one UPDATE ... WHERE active: of two racing callers,
// on one replica or two, the second waits for the first's row lock, then
// finds the row inactive. The same statement tells a missing token
// (ErrNotFound) from an inactive one (ErrInactive).
func (s *Store) DeactivateToken(ctx context.Context, kind storage.TokenKind, signature string) error {
	return wrap("deactivate "+string(kind)+" token", s.single(ctx, func(q querier) error {
		var updated, exists bool
		err := q.QueryRow(ctx, `WITH u AS (
				UPDATE tokens SET active = false WHERE kind = $1 AND signature = $2 AND active RETURNING 1
			)
			SELECT EXISTS (SELECT 1 FROM u), EXISTS (SELECT 1 FROM tokens WHERE kind = $1 AND signature = $2)`,
			kind, signature).Scan(&updated, &exists)
		switch {
		case err != nil:
			return err
		case updated:
			return nil
		case exists:
			return storage.ErrInactive
		}
		return storage.ErrNotFound
	}))
}

func (s *Store) SetTokenReplay(ctx context.Context, kind storage.TokenKind, signature string, replay []byte, until time.Time) error {
	if len(replay) == 0 {
		replay, until = nil, time.Time{}
	}
	return wrap("set "+string(kind)+" token replay", s.single(ctx, func(q querier) error {
		var updated, exists bool
		err := q.QueryRow(ctx, `WITH u AS (
				UPDATE tokens SET replay = $3, replay_until = $4 WHERE kind = $1 AND signature = $2 AND NOT active RETURNING 1
			)
			SELECT EXISTS (SELECT 1 FROM u), EXISTS (SELECT 1 FROM tokens WHERE kind = $1 AND signature = $2)`,
			kind, signature, replay, nullTime(until)).Scan(&updated, &exists)
		switch {
		case err != nil:
			return err
		case updated:
			return nil
		case exists:
			return storage.ErrAlreadyExists // still active
		}
		return storage.ErrNotFound
	}))
}

// RevokeByRequestID deletes through the (kind, request_id) index.
func (s *Store) RevokeByRequestID(ctx context.Context, kind storage.TokenKind, reqID string) error {
	return wrap("revoke "+string(kind)+" tokens", s.single(ctx, func(q querier) error {
		return deleteUntilNone(ctx, q, sqlRevokeByRequestID, kind, reqID)
	}))
}

// deleteUntilNone runs a DELETE of a token family until it removes
// nothing. At READ COMMITTED one DELETE that waited for a rotation's row
// lock (on the token being rotated) does not see the successor that
// rotation inserted: its snapshot is older. The next statement's is not,
// so a revocation racing with a rotation on another replica still takes
// the new token. Each round removes what committed meanwhile; a family
// cannot grow faster than one token per rotation, which needs the lock
// the DELETE takes, so this ends.
func deleteUntilNone(ctx context.Context, q querier, sql string, args ...any) error {
	for range 16 {
		tag, err := q.Exec(ctx, sql, args...)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
	}
	return nil
}

// ListSubjectTokens reads through the (subject, kind, client_id) index.
func (s *Store) ListSubjectTokens(ctx context.Context, kind storage.TokenKind, subject string) ([]storage.TokenRequest, error) {
	if subject == "" {
		return nil, nil
	}
	var out []storage.TokenRequest
	err := s.each(ctx, sqlListSubjectTokens, []any{subject, kind}, func(rows pgx.Rows) error {
		r, err := scanToken(rows)
		out = append(out, r)
		return err
	})
	return out, wrap("list "+string(kind)+" tokens of subject", err)
}

// RevokeSubjectClient deletes through the (subject, kind, client_id) index.
func (s *Store) RevokeSubjectClient(ctx context.Context, subject, clientID string) error {
	if subject == "" {
		return nil
	}
	return wrap("revoke tokens of subject for client", s.single(ctx, func(q querier) error {
		return deleteUntilNone(ctx, q, sqlRevokeSubjectClient, subject, clientID)
	}))
}

func (s *Store) WalkTokens(ctx context.Context, kind storage.TokenKind, fn func(storage.TokenRequest) error) error {
	return wrap("walk "+string(kind)+" tokens", s.each(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE kind = $1`, []any{kind}, func(rows pgx.Rows) error {
		r, err := scanToken(rows)
		if err != nil {
			return err
		}
		return fn(r)
	}))
}
