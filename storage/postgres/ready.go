package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/smallsso/provider/storage"
)

// probeFresh is how long a CheckWritable result is reused.
const probeFresh = time.Second

// probeTimeout bounds the probe's write, so a hung server fails the
// check instead of holding it.
const probeTimeout = 5 * time.Second

// writeProbe is CheckWritable's shared state: the last result and when
// it was made, and the write under way, which concurrent probes wait for
// instead of making their own.
type writeProbe struct {
	mu      sync.Mutex
	at      time.Time
	err     error
	pending chan struct{}
}

// CheckWritable updates the heartbeat row: a real write, through the
// pool, that fails with an error matching storage.ErrUnavailable when
// the database is unreachable, shutting down, read-only (a standby) or
// out of disk. A result less than a second old is reused, and concurrent
// probes share one write.
func (s *Store) CheckWritable(ctx context.Context) error {
	if s.txState(ctx) != nil {
		return errors.New("postgres: check writable: must not run in a transaction")
	}
	p := &s.probe
	p.mu.Lock()
	if !p.at.IsZero() && s.clock().Sub(p.at) < probeFresh {
		err := p.err
		p.mu.Unlock()
		return err
	}
	if p.pending != nil {
		ch := p.pending
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.err
	}
	ch := make(chan struct{})
	p.pending = ch
	p.mu.Unlock()

	// The write is shared: it must not fail because the caller that
	// happened to make it went away.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeTimeout)
	_, err := s.pool.Exec(wctx, `INSERT INTO heartbeat (id, beat_at) VALUES (1, now())
		ON CONFLICT (id) DO UPDATE SET beat_at = EXCLUDED.beat_at`)
	cancel()
	if err != nil && sentinel(err) != storage.ErrUnavailable {
		// Whatever kept the write from being made (a hung server that
		// ran out the timeout included), the database is not writable.
		err = fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	err = wrap("check writable", err)

	p.mu.Lock()
	p.at, p.err, p.pending = s.clock(), err, nil
	p.mu.Unlock()
	close(ch)
	return err
}

func (s *Store) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}
