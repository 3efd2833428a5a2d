package postgres

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/smallsso/provider/storage"
)

// Factors live in the factors table (migrations/0004_factors.sql), one row
// per user, removed with the user by the foreign key's ON DELETE CASCADE.

func (s *Store) GetFactors(ctx context.Context, userID string) (storage.Factors, error) {
	return getRecord[storage.Factors](ctx, s, "get factors", `SELECT data FROM factors WHERE user_id = $1`, textKey(userID))
}

// factorsInsertRetries bounds how often UpdateFactors starts over when
// another writer created the user's first row between its read and its
// insert (the next read finds that row and locks it, so one retry is
// enough but for a delete in between).
const factorsInsertRetries = 3

// UpdateFactors locks the user's row (SELECT ... FOR UPDATE), applies fn
// and writes the result back in one transaction, the context's or one of
// its own: concurrent updates of one person's factors queue on the row
// lock, so a TOTP step or a recovery code is used once. A person without a
// row yet gets one with INSERT ... ON CONFLICT DO NOTHING after the user's
// row has been locked against deletion (FOR KEY SHARE); losing the race
// to create it starts over on the row the winner wrote.
func (s *Store) UpdateFactors(ctx context.Context, userID string, fn func(storage.Factors) (storage.Factors, error)) error {
	var fnErr error
	key := textKey(userID)
	err := s.atomic(ctx, func(tx pgx.Tx) error {
		for range factorsInsertRetries {
			fnErr = nil
			old, err := scanRecord[storage.Factors](tx.QueryRow(ctx, `SELECT data FROM factors WHERE user_id = $1 FOR UPDATE`, key))
			exists := err == nil
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				// No factors yet: the user must exist, and stays until the
				// transaction ends (DeleteUser waits for the share lock).
				var one int
				if err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1 FOR KEY SHARE`, key).Scan(&one); err != nil {
					return err
				}
				old = storage.Factors{UserID: userID}
			case err != nil:
				return err
			}
			f, err := fn(old)
			if err != nil {
				fnErr = err
				return err
			}
			if f.UserID != userID {
				return errors.New("user id cannot change")
			}
			data, err := json.Marshal(f)
			if err != nil {
				return err
			}
			if exists {
				_, err = tx.Exec(ctx, `UPDATE factors SET data = $2 WHERE user_id = $1`, key, data)
				return err
			}
			tag, err := tx.Exec(ctx, `INSERT INTO factors (user_id, data) VALUES ($1, $2) ON CONFLICT DO NOTHING`, key, data)
			if err != nil || tag.RowsAffected() == 1 {
				return err
			}
			// Another writer created the row after our read: start over
			// on it (fn decides from its argument alone, so running it
			// again is safe).
		}
		return storage.ErrConflict
	})
	if fnErr != nil && errors.Is(err, fnErr) {
		return fnErr
	}
	return wrap("update factors", err)
}

// DeleteFactors removes the user's row; none is not an error.
func (s *Store) DeleteFactors(ctx context.Context, userID string) error {
	return wrap("delete factors", s.single(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `DELETE FROM factors WHERE user_id = $1`, textKey(userID))
		return err
	}))
}

func (s *Store) WalkFactors(ctx context.Context, fn func(storage.Factors) error) error {
	return wrap("walk factors", walk(ctx, s, `SELECT data FROM factors`, fn))
}
