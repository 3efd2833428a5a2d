package postgres

import (
	"context"
	"fmt"
	"time"
)

// gcBatch is how many records one statement of GarbageCollect removes:
// each is a transaction of its own, short enough that nothing waits on it.
const gcBatch = 500

// gcLock is the advisory lock key held for a GarbageCollect run, so one
// replica collects at a time.
const gcLock = 0x67632d31 // "gc-1"

// gcSteps are the statements of a run, in order; each removes (or, for
// the replay answers, strips) up to $2 records expired before $1, oldest
// first. FOR UPDATE SKIP LOCKED passes over rows a live transaction holds
// (the next run takes them) instead of waiting for it.
var gcSteps = []struct {
	what    string
	sql     string
	counted bool
}{
	{"tokens", `DELETE FROM tokens t USING (
		SELECT kind, signature FROM tokens WHERE expires_at < $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED
	) d WHERE t.kind = d.kind AND t.signature = d.signature`, true},
	{"refresh answers", `UPDATE tokens t SET replay = NULL, replay_until = NULL FROM (
		SELECT kind, signature FROM tokens WHERE replay_until < $1 ORDER BY replay_until LIMIT $2 FOR UPDATE SKIP LOCKED
	) d WHERE t.kind = d.kind AND t.signature = d.signature`, false},
	{"browser sessions", `DELETE FROM browser_sessions t USING (
		SELECT id FROM browser_sessions WHERE expires_at < $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED
	) d WHERE t.id = d.id`, true},
	{"consents", `DELETE FROM consents t USING (
		SELECT user_id, client_id FROM consents WHERE expires_at < $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED
	) d WHERE t.user_id = d.user_id AND t.client_id = d.client_id`, true},
	{"jtis", `DELETE FROM jtis t USING (
		SELECT id FROM jtis WHERE expires_at < $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED
	) d WHERE t.id = d.id`, true},
}

// GarbageCollect removes what expired before now in batches of gcBatch
// records, each statement its own transaction, oldest first within each
// family. It runs on one replica at a time: it holds an advisory lock on
// a connection of its own for the run, and a replica that finds the lock
// taken returns 0, nil at once (the other is collecting). On an error or
// a cancelled ctx it stops between batches; what was committed stays
// removed and is counted.
func (s *Store) GarbageCollect(ctx context.Context, now time.Time) (int, error) {
	if tx, err := s.joined(ctx); err != nil || tx != nil {
		return 0, fmt.Errorf("postgres: garbage collect: must not run in a transaction")
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, wrap("garbage collect", err)
	}
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, gcLock).Scan(&locked); err != nil {
		conn.Release()
		return 0, wrap("garbage collect", err)
	}
	if !locked {
		conn.Release()
		return 0, nil
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, gcLock); err != nil {
			// The connection must not go back to the pool holding the
			// lock; closing it releases the lock on the server.
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
		conn.Release()
	}()
	total := 0
	for _, step := range gcSteps {
		for {
			if err := ctx.Err(); err != nil {
				return total, wrap("garbage collect", err)
			}
			tag, err := conn.Exec(ctx, step.sql, now, s.gcBatchSize())
			if err != nil {
				return total, wrap("garbage collect "+step.what, err)
			}
			n := int(tag.RowsAffected())
			if step.counted {
				total += n
			}
			if s.gcAfterBatch != nil {
				s.gcAfterBatch()
			}
			if n < s.gcBatchSize() {
				break
			}
		}
	}
	// The throttles' expired buckets go too (not counted: they are not
	// records of the Store interface).
	if _, err := s.CollectBudgets(ctx, now); err != nil {
		return total, err
	}
	return total, nil
}

func (s *Store) gcBatchSize() int {
	if s.gcBatchOverride > 0 {
		return s.gcBatchOverride
	}
	return gcBatch
}
