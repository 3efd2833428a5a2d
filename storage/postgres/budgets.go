package postgres

// storage.Budgets on the budgets table (migrations/0003_budgets.sql): the
// throttles' and rate limits' state, shared by every replica.
//
// UpdateBuckets is one transaction: the missing rows are inserted (as
// expired placeholders; INSERT ... ON CONFLICT DO NOTHING, in name order),
// every row is locked with SELECT ... FOR UPDATE ORDER BY name, fn runs,
// and what it returns is written back. All callers lock in the same
// (bytewise) order, so two replicas updating overlapping sets wait for
// each other and never deadlock; should PostgreSQL still report a
// deadlock or a serialization failure, the call returns
// storage.ErrConflict and the caller calls again.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/smallsso/provider/storage"
)

var _ storage.Budgets = (*Store)(nil)

// budgetsCollectBatch is how many expired rows one statement of
// CollectBudgets removes.
const budgetsCollectBatch = 500

// UpdateBuckets implements storage.Budgets.
func (s *Store) UpdateBuckets(ctx context.Context, now time.Time, names []string, fn func(cur []storage.Bucket) ([]storage.Bucket, error)) (err error) {
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	if len(slices.Compact(slices.Clone(sorted))) != len(sorted) {
		return errors.New("postgres: UpdateBuckets: names are not distinct")
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return budgetsErr("budgets", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO budgets (name) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`, sorted)
	b.Queue(`SELECT name, tokens, at_ns, expires_ns FROM budgets WHERE name = ANY($1) ORDER BY name FOR UPDATE`, sorted)
	res := tx.SendBatch(ctx, b)
	found := make(map[string]storage.Bucket, len(names))
	if _, err = res.Exec(); err == nil {
		var rows pgx.Rows
		rows, err = res.Query()
		if err == nil {
			for rows.Next() {
				var name string
				var tokens float64
				var at, exp int64
				if err = rows.Scan(&name, &tokens, &at, &exp); err != nil {
					break
				}
				if exp > now.UnixNano() {
					found[name] = storage.Bucket{Name: name, Tokens: tokens, At: storage.FromUnixNanos(at), ExpiresAt: storage.FromUnixNanos(exp)}
				} else {
					found[name] = storage.Bucket{Name: name}
				}
			}
			rows.Close()
			if err == nil {
				err = rows.Err()
			}
		}
	}
	if cerr := res.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return budgetsErr("budgets", err)
	}
	if len(found) != len(names) {
		// The janitor removed an expired row between the insert and the
		// lock: the next call inserts it again.
		return fmt.Errorf("postgres: budgets: a row was collected meanwhile: %w", storage.ErrConflict)
	}
	cur := make([]storage.Bucket, len(names))
	for i, n := range names {
		cur[i] = found[n]
	}
	next, err := fn(cur)
	if err != nil {
		return err
	}
	if next == nil {
		_ = tx.Rollback(ctx) // nothing to write; drops the placeholders
		return nil
	}
	if len(next) != len(names) {
		return errors.New("postgres: UpdateBuckets: fn returned a different number of buckets than names")
	}
	var upd, del []string
	var tokens []float64
	var ats, exps []int64
	for i, n := range next {
		if !n.ExpiresAt.After(now) {
			del = append(del, names[i])
			continue
		}
		upd = append(upd, names[i])
		tokens = append(tokens, n.Tokens)
		ats = append(ats, storage.UnixNanos(n.At))
		exps = append(exps, storage.UnixNanos(n.ExpiresAt))
	}
	w := &pgx.Batch{}
	if len(upd) > 0 {
		w.Queue(`UPDATE budgets AS b SET tokens = u.tokens, at_ns = u.at_ns, expires_ns = u.expires_ns
			FROM unnest($1::text[], $2::float8[], $3::int8[], $4::int8[]) AS u(name, tokens, at_ns, expires_ns)
			WHERE b.name = u.name`, upd, tokens, ats, exps)
	}
	if len(del) > 0 {
		w.Queue(`DELETE FROM budgets WHERE name = ANY($1)`, del)
	}
	if err = tx.SendBatch(ctx, w).Close(); err != nil {
		return budgetsErr("budgets", err)
	}
	if err = tx.Commit(ctx); err != nil {
		return budgetsErr("budgets", err)
	}
	return nil
}

// ReadBuckets implements storage.Budgets.
func (s *Store) ReadBuckets(ctx context.Context, now time.Time, names []string) ([]storage.Bucket, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, tokens, at_ns, expires_ns FROM budgets WHERE name = ANY($1) AND expires_ns > $2`, names, now.UnixNano())
	if err != nil {
		return nil, budgetsErr("budgets", err)
	}
	found := make(map[string]storage.Bucket, len(names))
	for rows.Next() {
		var b storage.Bucket
		var at, exp int64
		if err := rows.Scan(&b.Name, &b.Tokens, &at, &exp); err != nil {
			rows.Close()
			return nil, budgetsErr("budgets", err)
		}
		b.At, b.ExpiresAt = storage.FromUnixNanos(at), storage.FromUnixNanos(exp)
		found[b.Name] = b
	}
	if err := rows.Err(); err != nil {
		return nil, budgetsErr("budgets", err)
	}
	out := make([]storage.Bucket, len(names))
	for i, n := range names {
		out[i] = found[n]
		out[i].Name = n
	}
	return out, nil
}

// DeleteBuckets implements storage.Budgets. The range condition lets the
// primary key find the rows; starts_with keeps it exact.
func (s *Store) DeleteBuckets(ctx context.Context, prefix string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM budgets WHERE name >= $1 AND name < $1 || chr(1114111) AND starts_with(name, $1)`, prefix)
	if err != nil {
		return budgetsErr("budgets", err)
	}
	return nil
}

// CollectBudgets removes the rows expired at now, in small batches, and
// returns how many. Rows another transaction holds are skipped (they are
// being written, or are another collector's). The store's GarbageCollect
// calls it.
func (s *Store) CollectBudgets(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for {
		tag, err := s.pool.Exec(ctx, `DELETE FROM budgets WHERE name IN (
			SELECT name FROM budgets WHERE expires_ns <= $1 ORDER BY expires_ns LIMIT $2 FOR UPDATE SKIP LOCKED)`,
			now.UnixNano(), budgetsCollectBatch)
		if err != nil {
			return total, budgetsErr("collecting budgets", err)
		}
		n := int(tag.RowsAffected())
		total += n
		if n < budgetsCollectBatch || ctx.Err() != nil {
			return total, nil
		}
	}
}

// budgetsErr words a database error for the limiters: a lost race is
// storage.ErrConflict, a database that cannot be reached
// storage.ErrUnavailable; the connection string never appears.
func budgetsErr(op string, err error) error {
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01"):
		return fmt.Errorf("postgres: %s: %w", op, storage.ErrConflict)
	case errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "08"), errors.As(err, &pgErr) && pgErr.Code == "57P01":
		return fmt.Errorf("postgres: %s: %w: %s", op, storage.ErrUnavailable, pgErr.Message)
	case errors.As(err, &pgErr):
		return fmt.Errorf("postgres: %s: %s (SQLSTATE %s)", op, pgErr.Message, pgErr.Code)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	// Anything else is the connection: refused, reset, timed out.
	return fmt.Errorf("postgres: %s: %w: %s", op, storage.ErrUnavailable, safeErr(err))
}
