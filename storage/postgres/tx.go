package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/smallsso/provider/storage"
)

// querier is what a method needs to run statements: the pool, or the
// transaction its context carries.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// txKey is keyed by store so a transaction of one Store never leaks into
// calls on another.
type txKey struct{ s *Store }

// txState is what BeginTx puts in the context. A pgx.Tx is one
// connection, not safe for concurrent use: a transaction context belongs
// to one goroutine.
type txState struct {
	tx   pgx.Tx
	done bool
	// broken is the first failure that aborted the transaction on the
	// server (it is then good only for rollback): CommitTx reports it,
	// so a conflict or an outage still matches its sentinel there.
	broken error
	// clientsWritten says a client was written in it: its commit makes
	// the client cache stale (clientcache.go).
	clientsWritten bool
}

var errTxDone = errors.New("transaction already finished")

// BeginTx starts a READ COMMITTED transaction on a connection of its own
// and returns a context carrying it. Other contexts are not held up by
// it, except where they want a row it has locked (written, or read for
// update), until it ends.
func (s *Store) BeginTx(ctx context.Context) (context.Context, error) {
	if st := s.txState(ctx); st != nil && !st.done {
		return ctx, errors.New("postgres: begin tx: transaction already open")
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return ctx, wrap("begin tx", err)
	}
	return context.WithValue(ctx, txKey{s}, &txState{tx: tx}), nil
}

// CommitTx commits the transaction in ctx. Cancellation of ctx is ignored
// here: the caller decided to commit. A transaction in which a statement
// failed is rolled back, and CommitTx says so.
func (s *Store) CommitTx(ctx context.Context) error {
	st, err := s.finish(ctx, "commit tx")
	if err != nil {
		return err
	}
	if st.broken != nil {
		_ = st.tx.Rollback(context.WithoutCancel(ctx))
		return wrap("commit tx: a write in the transaction failed, so it was rolled back", st.broken)
	}
	err = st.tx.Commit(context.WithoutCancel(ctx))
	if st.clientsWritten {
		s.clients.gen.Add(1)
	}
	if errors.Is(err, pgx.ErrTxCommitRollback) {
		return errors.New("postgres: commit tx: a statement in the transaction failed, so it was rolled back")
	}
	return wrap("commit tx", err)
}

// RollbackTx discards the transaction in ctx.
func (s *Store) RollbackTx(ctx context.Context) error {
	st, err := s.finish(ctx, "rollback tx")
	if err != nil {
		return err
	}
	err = st.tx.Rollback(context.WithoutCancel(ctx))
	if errors.Is(err, pgx.ErrTxClosed) {
		return nil
	}
	return wrap("rollback tx", err)
}

func (s *Store) finish(ctx context.Context, op string) (*txState, error) {
	st := s.txState(ctx)
	switch {
	case st == nil:
		return nil, fmt.Errorf("postgres: %s: no transaction in context", op)
	case st.done:
		return nil, fmt.Errorf("postgres: %s: %w", op, errTxDone)
	}
	st.done = true
	return st, nil
}

func (s *Store) txState(ctx context.Context) *txState {
	st, _ := ctx.Value(txKey{s}).(*txState)
	return st
}

// joined returns the open transaction ctx carries, nil if it carries none,
// or why ctx cannot be used.
func (s *Store) joined(ctx context.Context) (pgx.Tx, error) {
	st := s.txState(ctx)
	switch {
	case st == nil:
		return nil, nil
	case st.done:
		return nil, errTxDone
	}
	return st.tx, nil
}

// run passes on the result of a statement run in st, noting a failure
// that aborted the transaction on the server.
func (st *txState) run(err error) error {
	if err != nil && st.broken == nil && abortsTx(err) {
		st.broken = err
	}
	return err
}

// abortsTx says whether err, from a statement in a transaction, left the
// transaction aborted on the server. The methods avoid failing
// statements for the sentinels (ON CONFLICT DO NOTHING, savepoints), so
// only a database error or a lost connection does.
func abortsTx(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// A unique violation only ever comes from inside a savepoint
		// (UpdateUser's rename), which has been rolled back.
		return pe.Code != "23505"
	}
	return sentinel(err) == storage.ErrUnavailable
}

// q is where a single statement of a method runs: the context's
// transaction, or the pool (the statement is then a transaction of its
// own).
func (s *Store) q(ctx context.Context) (querier, error) {
	tx, err := s.joined(ctx)
	if err != nil || tx != nil {
		return tx, err
	}
	return s.pool, nil
}

// conflictRetries is how many times a call made outside a transaction is
// tried when it loses a race with a deadlock or serialization failure.
const conflictRetries = 3

// single runs one statement's worth of work fn outside a transaction
// (retrying it when it meets a conflict) or in the context's transaction.
func (s *Store) single(ctx context.Context, fn func(q querier) error) error {
	tx, err := s.joined(ctx)
	switch {
	case err != nil:
		return err
	case tx != nil:
		return s.txState(ctx).run(fn(tx))
	}
	for i := 0; ; i++ {
		err = fn(s.pool)
		if i+1 == conflictRetries || !isConflict(err) || ctx.Err() != nil {
			return err
		}
	}
}

// atomic runs fn in a transaction: the context's, or one of its own that
// it commits (retried on a conflict). fn may run more than once.
func (s *Store) atomic(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.joined(ctx)
	switch {
	case err != nil:
		return err
	case tx != nil:
		return s.txState(ctx).run(fn(tx))
	}
	for i := 0; ; i++ {
		err = pgx.BeginFunc(ctx, s.pool, fn)
		if i+1 == conflictRetries || !isConflict(err) || ctx.Err() != nil {
			return err
		}
	}
}

func isConflict(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// wrap names the operation in err and makes it match the storage
// sentinel it stands for. Sentinels from this package pass through with
// the operation named; errors of the closure of an Update never reach
// here (they are returned as they are).
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if s := sentinel(err); s != nil && !errors.Is(err, s) {
		return fmt.Errorf("postgres: %s: %w: %w", op, s, err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// sentinel is the storage error err stands for, or nil. Connection
// failures, a server shutting down or out of resources, a read-only
// database or a full disk are ErrUnavailable: nothing was kept, and the
// same call may work later.
func sentinel(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.ErrNotFound
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505":
			return storage.ErrAlreadyExists
		case pe.Code == "40001", pe.Code == "40P01":
			return storage.ErrConflict
		case pe.Code[:2] == "08", pe.Code[:2] == "53", pe.Code == "57P01", pe.Code == "57P02",
			pe.Code == "57P03", pe.Code == "25006", pe.Code == "58030":
			// 08 connection exception, 53 insufficient resources (disk
			// full, out of memory, too many connections), 57P01-03
			// shutting down or not yet up, 25006 read-only transaction (a
			// standby), 58030 I/O error.
			return storage.ErrUnavailable
		}
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || pgconn.SafeToRetry(err) {
		return storage.ErrUnavailable
	}
	return nil
}
