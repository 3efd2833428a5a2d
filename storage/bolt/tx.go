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
	tx   *bbolt.Tx
	done bool
}

var errTxDone = errors.New("transaction already finished")

// BeginTx starts a write transaction and returns a context carrying it.
// It takes the store's single write lock: until CommitTx or RollbackTx,
// writes from other contexts wait, and a write from this goroutine with any
// other context deadlocks. On error the parent context is returned, so a
// deferred RollbackTx on it fails cleanly instead of dereferencing nil.
func (s *Store) BeginTx(ctx context.Context) (context.Context, error) {
	if st := s.txState(ctx); st != nil && !st.done {
		return ctx, errors.New("begin tx: transaction already open")
	}
	tx, err := s.db.Begin(true)
	if err != nil {
		return ctx, fmt.Errorf("begin tx: %w", err)
	}
	return context.WithValue(ctx, txKey{s}, &txState{tx: tx}), nil
}

// CommitTx commits the transaction in ctx. Cancellation of ctx is ignored
// here on purpose: the caller decided to commit.
func (s *Store) CommitTx(ctx context.Context) error {
	return s.finish(ctx, "commit tx", (*bbolt.Tx).Commit)
}

// RollbackTx discards the transaction in ctx.
func (s *Store) RollbackTx(ctx context.Context) error {
	return s.finish(ctx, "rollback tx", (*bbolt.Tx).Rollback)
}

func (s *Store) finish(ctx context.Context, op string, end func(*bbolt.Tx) error) error {
	st := s.txState(ctx)
	switch {
	case st == nil:
		return fmt.Errorf("%s: no transaction in context", op)
	case st.done:
		return fmt.Errorf("%s: %w", op, errTxDone)
	}
	st.done = true
	return wrap(op, end(st.tx))
}

func (s *Store) txState(ctx context.Context) *txState {
	st, _ := ctx.Value(txKey{s}).(*txState)
	return st
}

// update runs fn in the context's transaction if there is one, else in its
// own bbolt Update. Every method goes through update or view, so no method
// ever opens a bbolt transaction inside another: a View opened inside an
// open Update on the same goroutine can deadlock when the file is remapped.
func (s *Store) update(ctx context.Context, fn func(*txn) error) error {
	return s.run(ctx, true, fn)
}

// view is update for reads. Records are decoded inside fn, because the
// bytes bbolt hands out are only valid until the transaction ends.
func (s *Store) view(ctx context.Context, fn func(*txn) error) error {
	return s.run(ctx, false, fn)
}

func (s *Store) run(ctx context.Context, writable bool, fn func(*txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	withTxn := func(tx *bbolt.Tx) error {
		t, err := newTxn(tx)
		if err != nil {
			return err
		}
		return fn(t)
	}
	st := s.txState(ctx)
	switch {
	case st != nil && st.done:
		return errTxDone
	case st != nil:
		return withTxn(st.tx)
	case writable:
		return s.db.Update(withTxn)
	default:
		return s.db.View(withTxn)
	}
}

// txn is one bbolt transaction with its top-level buckets looked up once,
// so a missing bucket is one error here rather than a nil dereference in
// every method.
type txn struct {
	users, userNames, clients, tokens, requestIDs *bbolt.Bucket
	sessions, consents, jtis, expiry, trust       *bbolt.Bucket
}

func newTxn(tx *bbolt.Tx) (*txn, error) {
	t := &txn{}
	for _, b := range []struct {
		name string
		dst  **bbolt.Bucket
	}{
		{bucketUsers, &t.users},
		{bucketUserNames, &t.userNames},
		{bucketClients, &t.clients},
		{bucketTrust, &t.trust},
		{bucketTokens, &t.tokens},
		{bucketRequestIDs, &t.requestIDs},
		{bucketSessions, &t.sessions},
		{bucketConsents, &t.consents},
		{bucketJTIs, &t.jtis},
		{bucketExpiry, &t.expiry},
	} {
		if *b.dst = tx.Bucket([]byte(b.name)); *b.dst == nil {
			return nil, fmt.Errorf("bucket %s missing", b.name)
		}
	}
	return t, nil
}
