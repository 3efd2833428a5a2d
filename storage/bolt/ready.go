package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/bbolt"

	"github.com/smallsso/provider/storage"
)

// Readiness, and what a failed write does.
//
// A commit fails when the file cannot grow (a full disk, a file size
// limit, a quota), a write or an fdatasync fails, or the file system went
// read-only. bbolt then rolls the transaction back: none of the batch's
// writes is kept, every writer of the batch gets the error (they shared
// the one commit), and the next batch begins on a fresh transaction, so
// nothing stays broken once the cause is gone. The cost is CPU: without a
// synced freelist (see Open), bbolt rebuilds its free-page list after a
// failed commit by walking the whole file.
//
// CheckWritable is what /readyz asks. A small write to the meta bucket can
// succeed on a full disk, in pages the file already has, while a token
// that needs the file to grow fails; so a failed commit of any writer
// also counts against readiness for readyFailFor after it.

const (
	// readyCacheFor is how long a probe's result is reused: a storm of
	// probes costs one commit a second.
	readyCacheFor = time.Second
	// readyFailFor is how long a failed commit keeps the store unready.
	readyFailFor = 5 * time.Second

	keyReadyProbe = "ready_probe"
)

// readiness is the state of CheckWritable.
type readiness struct {
	now func() time.Time

	// mu is held while a probe runs: checks arriving meanwhile wait for
	// it and share its result.
	mu      sync.Mutex
	checked time.Time // when the last probe ended; zero before the first
	err     error     // its result

	failMu   sync.Mutex
	failedAt time.Time
	failErr  error
}

func newReadiness(now func() time.Time) *readiness {
	if now == nil {
		now = time.Now
	}
	return &readiness{now: now}
}

// writeFailed records a failed commit.
func (r *readiness) writeFailed(err error) {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	r.failedAt, r.failErr = r.now(), err
}

// recentFailure returns the error of a commit that failed less than
// readyFailFor ago, or nil.
func (r *readiness) recentFailure() error {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	if r.failErr != nil && r.now().Sub(r.failedAt) < readyFailFor {
		return r.failErr
	}
	return nil
}

// check returns a recent failure, else the result of probe, reusing one
// younger than readyCacheFor.
func (r *readiness) check(ctx context.Context, probe func() error) error {
	if err := r.recentFailure(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.checked.IsZero() && r.now().Sub(r.checked) < readyCacheFor {
		return r.err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err := probe()
	if err != nil && !errors.Is(err, storage.ErrUnavailable) {
		err = fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	r.checked, r.err = r.now(), err
	return err
}

// CheckWritable implements storage.Store: it writes the time to the meta
// bucket, through the group commit, so under load the probe shares the
// commit of the requests it runs beside.
func (s *Store) CheckWritable(ctx context.Context) error {
	if s.txState(ctx) != nil {
		return errors.New("check writable: called inside a transaction")
	}
	return s.ready.check(ctx, func() error {
		stamp := binary.BigEndian.AppendUint64(nil, uint64(s.ready.now().Unix()))
		return s.w.update(func(t *txn) error {
			meta := t.tx.Bucket([]byte(bucketMeta))
			if meta == nil {
				return errors.New("no meta bucket")
			}
			return meta.Put([]byte(keyReadyProbe), stamp)
		})
	})
}

// commit commits a batch's transaction; a failure (bbolt has rolled it
// back) matches storage.ErrUnavailable and is recorded for readiness.
func (w *writer) commit(tx *bbolt.Tx) error {
	err := tx.Commit()
	if err == nil {
		w.commits.Add(1)
		return nil
	}
	err = fmt.Errorf("%w: database write failed, nothing of it was kept: %w", storage.ErrUnavailable, err)
	if w.failed != nil {
		w.failed(err)
	}
	return err
}

// openError says plainly that the file cannot be written, when that is
// why it did not open: the server needs to write it, and the OS error
// alone ("open /var/lib/...: permission denied") reads like a read error.
func openError(path string, err error) error {
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		cause := err
		var pe *fs.PathError
		if errors.As(err, &pe) {
			cause = pe.Err
		}
		return fmt.Errorf("database %s is not writable (%w): the server must be able to write the file and its directory", path, cause)
	}
	return fmt.Errorf("open bolt %s: %w", path, err)
}
