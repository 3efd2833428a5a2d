package postgres

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/smallsso/provider/storage"
)

// Error prefixes name the operation, never a key: a key may be half of a
// credential, and error text ends up in logs.

func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	data, err := json.Marshal(u)
	if err != nil {
		return wrap("create user", err)
	}
	return wrap("create user", s.single(ctx, func(q querier) error {
		// DO NOTHING on either unique key: a taken ID or username is
		// ErrAlreadyExists without an error that would spoil a transaction.
		tag, err := q.Exec(ctx, `INSERT INTO users (id, username, data) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, u.ID, u.Username, data)
		if err == nil && tag.RowsAffected() == 0 {
			return storage.ErrAlreadyExists
		}
		return err
	}))
}

func (s *Store) GetUser(ctx context.Context, id string) (storage.User, error) {
	return getRecord[storage.User](ctx, s, "get user", `SELECT data FROM users WHERE id = $1`, textKey(id))
}

func (s *Store) GetUserByUsername(ctx context.Context, username string) (storage.User, error) {
	return getRecord[storage.User](ctx, s, "get user by username", `SELECT data FROM users WHERE username = $1`, textKey(username))
}

func (s *Store) ListUsers(ctx context.Context) ([]storage.User, error) {
	return listRecords[storage.User](ctx, s, "list users", `SELECT data FROM users`)
}

// UpdateUser locks the row (SELECT ... FOR UPDATE), applies fn and writes
// the result back, in one transaction: concurrent updates of one user
// queue on the row lock, none is lost.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(storage.User) (storage.User, error)) error {
	var fnErr error
	err := s.atomic(ctx, func(tx pgx.Tx) error {
		fnErr = nil
		old, err := scanRecord[storage.User](tx.QueryRow(ctx, `SELECT data FROM users WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		u, err := fn(old)
		if err != nil {
			fnErr = err
			return err
		}
		u.ID = id
		data, err := json.Marshal(u)
		if err != nil {
			return err
		}
		if u.Username == old.Username {
			_, err = tx.Exec(ctx, `UPDATE users SET data = $2 WHERE id = $1`, id, data)
			return err
		}
		// A rename may meet a taken username. In a savepoint, so that the
		// unique violation leaves the caller's transaction usable.
		return pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
			_, err := sp.Exec(ctx, `UPDATE users SET username = $2, data = $3 WHERE id = $1`, id, u.Username, data)
			return err
		})
	})
	if fnErr != nil && errors.Is(err, fnErr) {
		return fnErr
	}
	return wrap("update user", err)
}

func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return s.deleteOne(ctx, "delete user", `DELETE FROM users WHERE id = $1`, id)
}

func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	defer s.clientsChanged(ctx)
	return s.insertRecord(ctx, "create client", `INSERT INTO clients (id, data) VALUES ($1, $2) ON CONFLICT DO NOTHING`, c.ID, c)
}

// GetClient is in clientcache.go.

func (s *Store) ListClients(ctx context.Context) ([]storage.Client, error) {
	return listRecords[storage.Client](ctx, s, "list clients", `SELECT data FROM clients`)
}

func (s *Store) UpdateClient(ctx context.Context, id string, fn func(storage.Client) (storage.Client, error)) error {
	defer s.clientsChanged(ctx)
	var fnErr error
	err := s.atomic(ctx, func(tx pgx.Tx) error {
		fnErr = nil
		old, err := scanRecord[storage.Client](tx.QueryRow(ctx, `SELECT data FROM clients WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		c, err := fn(old)
		if err != nil {
			fnErr = err
			return err
		}
		c.ID = id
		data, err := json.Marshal(c)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE clients SET data = $2 WHERE id = $1`, id, data)
		return err
	})
	if fnErr != nil && errors.Is(err, fnErr) {
		return fnErr
	}
	return wrap("update client", err)
}

func (s *Store) DeleteClient(ctx context.Context, id string) error {
	defer s.clientsChanged(ctx)
	return s.deleteOne(ctx, "delete client", `DELETE FROM clients WHERE id = $1`, id)
}

func (s *Store) CreateTrustedIssuer(ctx context.Context, ti storage.TrustedIssuer) error {
	return s.insertRecord(ctx, "create trusted issuer", `INSERT INTO trusted_issuers (id, data) VALUES ($1, $2) ON CONFLICT DO NOTHING`, ti.ID, ti)
}

func (s *Store) GetTrustedIssuer(ctx context.Context, id string) (storage.TrustedIssuer, error) {
	return getRecord[storage.TrustedIssuer](ctx, s, "get trusted issuer", `SELECT data FROM trusted_issuers WHERE id = $1`, textKey(id))
}

func (s *Store) ListTrustedIssuers(ctx context.Context) ([]storage.TrustedIssuer, error) {
	return listRecords[storage.TrustedIssuer](ctx, s, "list trusted issuers", `SELECT data FROM trusted_issuers`)
}

func (s *Store) DeleteTrustedIssuer(ctx context.Context, id string) error {
	return s.deleteOne(ctx, "delete trusted issuer", `DELETE FROM trusted_issuers WHERE id = $1`, id)
}

// insertRecord runs an INSERT ... ON CONFLICT DO NOTHING of (id, the JSON
// of rec): nothing inserted is ErrAlreadyExists.
func (s *Store) insertRecord(ctx context.Context, op, sql, id string, rec any) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return wrap(op, err)
	}
	return wrap(op, s.single(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, sql, id, data)
		if err == nil && tag.RowsAffected() == 0 {
			return storage.ErrAlreadyExists
		}
		return err
	}))
}

// deleteOne runs a DELETE of one record: nothing deleted is ErrNotFound.
func (s *Store) deleteOne(ctx context.Context, op, sql string, args ...any) error {
	return wrap(op, s.single(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, sql, args...)
		if err == nil && tag.RowsAffected() == 0 {
			return storage.ErrNotFound
		}
		return err
	}))
}

// getRecord reads one record's JSON with sql.
func getRecord[T any](ctx context.Context, s *Store, op, sql string, args ...any) (T, error) {
	var rec T
	q, err := s.q(ctx)
	if err != nil {
		return rec, wrap(op, err)
	}
	rec, err = scanRecord[T](q.QueryRow(ctx, sql, args...))
	return rec, wrap(op, err)
}

func scanRecord[T any](row pgx.Row) (T, error) {
	var rec T
	var data []byte
	if err := row.Scan(&data); err != nil {
		return rec, err
	}
	err := json.Unmarshal(data, &rec)
	return rec, err
}

// listRecords reads the records whose JSON sql selects.
func listRecords[T any](ctx context.Context, s *Store, op, sql string, args ...any) ([]T, error) {
	var out []T
	err := s.each(ctx, sql, args, func(rows pgx.Rows) error {
		rec, err := scanRecord[T](rows)
		out = append(out, rec)
		return err
	})
	return out, wrap(op, err)
}

// each runs fn on every row sql selects.
func (s *Store) each(ctx context.Context, sql string, args []any, fn func(pgx.Rows) error) error {
	q, err := s.q(ctx)
	if err != nil {
		return err
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
