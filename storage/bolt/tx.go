package bolt

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
)

// txKey is keyed by store so a transaction of one Store never leaks into
// calls on another.
type txKey struct{ s *Store }

// txState is what BeginTx puts in the context. A bbolt Tx is not safe for
// concurrent use, so a transaction context belongs to one goroutine.
type txState struct {
	b *batch
	// log holds the transaction's write closures, for the batch's log when
	// it commits.
	log []func(*txn) error
	// broken is set when a write failed after it may have written: the
	// transaction can then only be rolled back.
	broken error
	done   bool
}

var errTxDone = errors.New("transaction already finished")

// BeginTx starts a write transaction and returns a context carrying it.
// It takes the store's single write lock: until CommitTx or RollbackTx,
// writes from other contexts wait, and a write from this goroutine with any
// other context deadlocks. Its writes join the batch it runs in (batch.go)
// and CommitTx returns once that batch is on disk. On error the parent
// context is returned, so a deferred RollbackTx on it fails cleanly
// instead of dereferencing nil.
func (s *Store) BeginTx(ctx context.Context) (context.Context, error) {
	if st := s.txState(ctx); st != nil && !st.done {
		return ctx, errors.New("begin tx: transaction already open")
	}
	b, err := s.w.enter()
	if err != nil {
		s.w.mu.Unlock()
		return ctx, fmt.Errorf("begin tx: %w", err)
	}
	return context.WithValue(ctx, txKey{s}, &txState{b: b}), nil
}

// CommitTx commits the transaction in ctx. Cancellation of ctx is ignored
// here on purpose: the caller decided to commit.
func (s *Store) CommitTx(ctx context.Context) error {
	st, err := s.finish(ctx, "commit tx")
	if err != nil {
		return err
	}
	if st.broken != nil {
		s.w.undo(st.b)
		s.w.leave()
		return fmt.Errorf("commit tx: a write failed: %w", st.broken)
	}
	return wrap("commit tx", s.w.seal(st.b, st.log...))
}

// RollbackTx discards the transaction in ctx.
func (s *Store) RollbackTx(ctx context.Context) error {
	st, err := s.finish(ctx, "rollback tx")
	if err != nil {
		return err
	}
	if len(st.log) > 0 || st.broken != nil {
		s.w.undo(st.b)
	}
	s.w.leave()
	return nil
}

func (s *Store) finish(ctx context.Context, op string) (*txState, error) {
	st := s.txState(ctx)
	switch {
	case st == nil:
		return nil, fmt.Errorf("%s: no transaction in context", op)
	case st.done:
		return nil, fmt.Errorf("%s: %w", op, errTxDone)
	}
	st.done = true
	return st, nil
}

func (s *Store) txState(ctx context.Context) *txState {
	st, _ := ctx.Value(txKey{s}).(*txState)
	return st
}

// update runs fn in the context's transaction if there is one, else as a
// writer of its own (batch.go). Every method goes through update or view,
// so no method ever opens a bbolt transaction inside another: a View
// opened inside an open Update on the same goroutine can deadlock when the
// file is remapped.
//
// fn may run more than once (batch.go replays it when another writer of
// its batch fails), so it must be a function of the transaction's state:
// it may set variables of its caller, never accumulate into them. It must
// check its preconditions, and fail with a storage sentinel, before it
// writes.
func (s *Store) update(ctx context.Context, fn func(*txn) error) error {
	st, err := s.joined(ctx)
	switch {
	case err != nil:
		return err
	case st == nil:
		return s.w.update(fn)
	}
	defer func() {
		if p := recover(); p != nil {
			// Only a rollback may end the transaction now.
			st.broken = fmt.Errorf("panic in a write: %v", p)
			panic(p)
		}
	}()
	err = fn(st.b.t)
	switch {
	case err == nil:
		st.log = append(st.log, fn)
	case !wroteNothing(err):
		st.broken = err
	}
	return err
}

// view is update for reads. Records are decoded inside fn, because the
// bytes bbolt hands out are only valid until the transaction ends.
func (s *Store) view(ctx context.Context, fn func(*txn) error) error {
	st, err := s.joined(ctx)
	switch {
	case err != nil:
		return err
	case st != nil:
		return fn(st.b.t)
	}
	return s.db.View(func(tx *bbolt.Tx) error { return fn(newTxn(tx)) })
}

// joined returns the open transaction ctx carries, nil if it carries none,
// or why ctx cannot be used.
func (s *Store) joined(ctx context.Context) (*txState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st := s.txState(ctx)
	if st != nil && st.done {
		return nil, errTxDone
	}
	return st, nil
}

// txn is one bbolt transaction. Its top-level buckets are looked up on
// first use: a read touches two or three of them, and looking up all ten
// cost a tenth of an introspection. Open creates every bucket, so a
// lookup cannot miss.
type txn struct {
	tx      *bbolt.Tx
	buckets [bucketCount]*bbolt.Bucket
}

// Indexes into txn.buckets.
const (
	iUsers = iota
	iUserNames
	iClients
	iTrust
	iTokens
	iRequestIDs
	iSessions
	iConsents
	iJTIs
	iExpiry
	iFactors
	bucketCount
)

var bucketNames = [bucketCount]string{
	iUsers: bucketUsers, iUserNames: bucketUserNames, iClients: bucketClients, iTrust: bucketTrust,
	iTokens: bucketTokens, iRequestIDs: bucketRequestIDs, iSessions: bucketSessions,
	iConsents: bucketConsents, iJTIs: bucketJTIs, iExpiry: bucketExpiry, iFactors: bucketFactors,
}

func newTxn(tx *bbolt.Tx) *txn { return &txn{tx: tx} }

func (t *txn) bucket(i int) *bbolt.Bucket {
	if b := t.buckets[i]; b != nil {
		return b
	}
	b := t.tx.Bucket([]byte(bucketNames[i]))
	if i == iExpiry && b != nil {
		// Expiry keys start with their time, so they arrive almost in
		// order: full pages instead of bbolt's half-full default.
		b.FillPercent = 0.9
	}
	t.buckets[i] = b
	return b
}

func (t *txn) users() *bbolt.Bucket      { return t.bucket(iUsers) }
func (t *txn) userNames() *bbolt.Bucket  { return t.bucket(iUserNames) }
func (t *txn) clients() *bbolt.Bucket    { return t.bucket(iClients) }
func (t *txn) trust() *bbolt.Bucket      { return t.bucket(iTrust) }
func (t *txn) tokens() *bbolt.Bucket     { return t.bucket(iTokens) }
func (t *txn) requestIDs() *bbolt.Bucket { return t.bucket(iRequestIDs) }
func (t *txn) sessions() *bbolt.Bucket   { return t.bucket(iSessions) }
func (t *txn) consents() *bbolt.Bucket   { return t.bucket(iConsents) }
func (t *txn) jtis() *bbolt.Bucket       { return t.bucket(iJTIs) }
func (t *txn) expiry() *bbolt.Bucket     { return t.bucket(iExpiry) }
func (t *txn) factors() *bbolt.Bucket    { return t.bucket(iFactors) }
