package bolt

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"go.etcd.io/bbolt"

	"github.com/smallsso/provider/storage"
)

// Group commit. bbolt makes one writer at a time and two fdatasyncs per
// commit, so a commit per write caps the store near the disk's sync rate
// however many requests wait. Here writers that arrive while another one
// works share its bbolt transaction, and the last of them commits it: one
// commit for all, and each returns only after that commit is on disk, so
// durability is what it was with a commit each.
//
// Unlike bbolt's own DB.Batch there is no timer: a writer alone commits at
// once, so a quiet server answers as fast as before, and a busy one
// batches exactly the writers that queued behind the fsync.
//
// A failed write must not take the others with it, but bbolt cannot undo
// one writer's part of a transaction. So every writer's closures are kept,
// in order, and when one fails after it may have written, the transaction
// is rolled back and the others' closures are run again on a fresh one
// (replay). They see the same state in the same order as the first time,
// so they make the same writes. Precondition failures (not found, already
// exists, inactive) are returned before a closure writes anything, so they
// need no replay.

// maxBatch bounds how many writers share one commit, so a steady stream of
// writers cannot postpone the commit, and their answers, without end.
const maxBatch = 256

// writer serialises write transactions and groups them into batches.
type writer struct {
	db *bbolt.DB
	// mu is held by whoever runs closures on the open batch's transaction:
	// one writer, or one explicit transaction from BeginTx to its end.
	mu sync.Mutex
	// queued counts writers waiting for mu. The one leaving commits the
	// batch only when nobody queued would have joined it.
	queued atomic.Int32
	// cur is the open batch, nil when no transaction is open. Guarded by mu.
	cur *batch
	// commits counts committed batches (tests compare it with writers).
	commits atomic.Int64
	// closed is set by Store.Close; writers are refused after it. Guarded
	// by mu.
	closed bool
	// failed, when set, is told of every commit that failed (ready.go).
	failed func(error)
}

// batch is one bbolt write transaction shared by several writers.
type batch struct {
	tx *bbolt.Tx
	t  *txn
	// log holds the closures of every writer that finished its part, for
	// a replay.
	log []func(*txn) error
	// members are the writers waiting for the commit.
	members int
	done    chan struct{}
	err     error
}

// enter takes the write lock and returns the open batch, beginning one if
// needed. The caller holds w.mu afterwards, also on error.
func (w *writer) enter() (*batch, error) {
	w.queued.Add(1)
	w.mu.Lock()
	w.queued.Add(-1)
	if w.closed {
		return nil, errClosed
	}
	if w.cur != nil {
		return w.cur, nil
	}
	b, err := w.begin()
	if err != nil {
		return nil, err
	}
	w.cur = b
	return b, nil
}

func (w *writer) begin() (*batch, error) {
	tx, err := w.db.Begin(true)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	return &batch{tx: tx, t: newTxn(tx), done: make(chan struct{})}, nil
}

// update runs fn as a writer of its own and returns once its writes are
// committed, or with fn's error and none of its writes.
func (w *writer) update(fn func(*txn) error) error {
	b, err := w.enter()
	if err != nil {
		w.mu.Unlock()
		return err
	}
	if err := w.run(b, fn); err != nil {
		if !wroteNothing(err) {
			w.undo(b)
		}
		w.leave()
		return err
	}
	return w.seal(b, fn)
}

// run calls fn on the batch's transaction. A panic in fn (an update
// function of a caller, say) undoes fn's part and releases the write lock
// before it goes on up, so it cannot leave every later writer waiting.
func (w *writer) run(b *batch, fn func(*txn) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			w.undo(b)
			w.leave()
			panic(p)
		}
	}()
	return fn(b.t)
}

var errClosed = errors.New("store closed")

// close commits or discards the open batch and refuses writers from now
// on. The caller holds w.mu.
func (w *writer) close() {
	w.closed = true
	b := w.cur
	if b == nil {
		return
	}
	w.cur = nil
	if b.members == 0 {
		_ = b.tx.Rollback()
		return
	}
	b.err = w.commit(b.tx)
	close(b.done)
}

// seal adds a finished writer's closures to the batch, leaves, and waits
// for the batch's commit.
func (w *writer) seal(b *batch, fns ...func(*txn) error) error {
	if len(fns) == 0 {
		w.leave()
		return nil
	}
	b.log = append(b.log, fns...)
	b.members++
	w.leave()
	<-b.done
	return b.err
}

// leave releases the write lock. If the open batch has writers waiting
// for it and nobody is queued to join, it is committed now; a batch with
// no writers is rolled back, so no idle transaction holds bbolt's lock.
func (w *writer) leave() {
	b := w.cur
	switch {
	case b == nil:
		w.mu.Unlock()
	case b.members == 0:
		w.cur = nil
		w.mu.Unlock()
		_ = b.tx.Rollback()
	case w.queued.Load() == 0 || b.members >= maxBatch:
		w.cur = nil
		// The next writer may begin while this commit syncs; bbolt makes
		// it wait for the file, not for this lock.
		w.mu.Unlock()
		b.err = w.commit(b.tx)
		close(b.done)
	default:
		w.mu.Unlock()
	}
}

// undo discards the open transaction and rebuilds the batch's state from
// its log on a fresh one. A closure that fails on replay (it should not:
// same state, same order) fails the whole batch.
func (w *writer) undo(b *batch) {
	_ = b.tx.Rollback()
	if len(b.log) == 0 {
		w.cur = nil
		return
	}
	fresh, err := w.begin()
	if err == nil {
		for _, fn := range b.log {
			if err = fn(fresh.t); err != nil {
				_ = fresh.tx.Rollback()
				break
			}
		}
	}
	if err != nil {
		w.cur = nil
		b.err = fmt.Errorf("replay after a failed write: %w", err)
		close(b.done)
		return
	}
	b.tx, b.t = fresh.tx, fresh.t
}

// wroteNothing says whether a closure failing with err left the
// transaction as it found it: the store's preconditions are checked before
// anything is written.
func wroteNothing(err error) bool {
	return errors.Is(err, storage.ErrNotFound) ||
		errors.Is(err, storage.ErrAlreadyExists) ||
		errors.Is(err, storage.ErrInactive)
}
