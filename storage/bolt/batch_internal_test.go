package bolt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/smallsso/provider/storage"
)

func accessToken(sig string) storage.TokenRequest {
	return storage.TokenRequest{
		Kind: storage.KindAccessToken, Signature: sig, RequestID: "req-" + sig, ClientID: "c",
		Active: true, ExpiresAt: time.Now().Add(time.Hour),
	}
}

// queue starts n writers, each calling write(i), and returns once all of
// them wait for the write lock, with a channel of their results.
func queue(t *testing.T, s *Store, n int, write func(i int) error) <-chan error {
	t.Helper()
	before := s.w.queued.Load()
	results := make(chan error, n)
	for i := range n {
		go func() { results <- write(i) }()
	}
	for s.w.queued.Load() < before+int32(n) {
		runtime.Gosched()
	}
	return results
}

func collect(t *testing.T, results <-chan error, n int) []error {
	t.Helper()
	var errs []error
	for range n {
		select {
		case err := <-results:
			errs = append(errs, err)
		case <-time.After(10 * time.Second):
			t.Fatal("a writer got no answer in 10s")
		}
	}
	return errs
}

// Writers that queue behind an open transaction share its commit.
func TestBatchSharesOneCommit(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	txCtx, err := s.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	results := queue(t, s, n, func(i int) error {
		return s.CreateToken(ctx, accessToken(fmt.Sprintf("w%02d", i)))
	})
	if err := s.CreateToken(txCtx, accessToken("tx")); err != nil {
		t.Fatal(err)
	}
	before := s.w.commits.Load()
	txDone := make(chan error, 1)
	go func() { txDone <- s.CommitTx(txCtx) }()
	if err := errors.Join(append(collect(t, results, n), collect(t, txDone, 1)...)...); err != nil {
		t.Fatal(err)
	}
	if got := s.w.commits.Load() - before; got != 1 {
		t.Errorf("%d writers and a transaction made %d commits, want 1", n, got)
	}
	for i := range n {
		if _, err := s.GetToken(ctx, storage.KindAccessToken, fmt.Sprintf("w%02d", i)); err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if _, err := s.GetToken(ctx, storage.KindAccessToken, "tx"); err != nil {
		t.Errorf("transaction's token: %v", err)
	}
}

// A writer that fails after writing is undone alone: the batch is rebuilt
// from the other writers' closures and still commits once.
func TestBatchReplaysAfterAFailedWrite(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	txCtx, err := s.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(txCtx, accessToken("first")); err != nil {
		t.Fatal(err)
	}
	errHalfway := errors.New("failed halfway")
	// One queued writer writes and then fails; the rest succeed.
	const n = 8
	results := queue(t, s, n, func(i int) error {
		if i == 3 {
			return s.update(ctx, func(t *txn) error {
				if err := t.jtis().Put([]byte("half-written"), []byte("x")); err != nil {
					return err
				}
				return errHalfway
			})
		}
		return s.CreateToken(ctx, accessToken(fmt.Sprintf("w%02d", i)))
	})
	before := s.w.commits.Load()
	txDone := make(chan error, 1)
	go func() { txDone <- s.CommitTx(txCtx) }()
	var failed int
	for _, err := range append(collect(t, results, n), collect(t, txDone, 1)...) {
		switch {
		case errors.Is(err, errHalfway):
			failed++
		case err != nil:
			t.Errorf("writer: %v", err)
		}
	}
	if failed != 1 {
		t.Errorf("%d writers reported the failure, want 1", failed)
	}
	if got := s.w.commits.Load() - before; got != 1 {
		t.Errorf("commits: %d, want 1", got)
	}
	if err := s.view(ctx, func(t *txn) error {
		if t.jtis().Get([]byte("half-written")) != nil {
			return errors.New("the failed writer's write was committed")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	for _, sig := range []string{"first", "w00", "w02", "w04", "w07"} {
		if _, err := s.GetToken(ctx, storage.KindAccessToken, sig); err != nil {
			t.Errorf("%s: %v", sig, err)
		}
	}
}

// A transaction that writes and rolls back while other writers wait for
// their shared commit leaves theirs intact.
func TestBatchRollbackKeepsOthers(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	holder, err := s.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(holder, accessToken("kept")); err != nil {
		t.Fatal(err)
	}
	// The holder's commit seals "kept" into the batch and, with a writer
	// queued, leaves the batch open for it: the queued writer is a
	// transaction that writes and rolls back.
	results := queue(t, s, 1, func(int) error {
		txCtx, err := s.BeginTx(context.WithoutCancel(ctx))
		if err != nil {
			return err
		}
		if err := s.CreateToken(txCtx, accessToken("rolled-back")); err != nil {
			return err
		}
		return s.RollbackTx(txCtx)
	})
	txDone := make(chan error, 1)
	go func() { txDone <- s.CommitTx(holder) }()
	if err := errors.Join(append(collect(t, results, 1), collect(t, txDone, 1)...)...); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetToken(ctx, storage.KindAccessToken, "kept"); err != nil {
		t.Errorf("kept: %v", err)
	}
	if _, err := s.GetToken(ctx, storage.KindAccessToken, "rolled-back"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("rolled-back: %v, want not found", err)
	}
}

// A panic in a write (a caller's update function) undoes that write and
// releases the write lock, so later writers are not left waiting.
func TestPanicInAWriteReleasesTheLock(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	if err := s.CreateUser(ctx, storage.User{ID: "u1", Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not reach the caller")
			}
		}()
		_ = s.UpdateUser(ctx, "u1", func(u storage.User) (storage.User, error) {
			u.Username = "changed"
			panic("a bug in an update function")
		})
	}()
	done := make(chan error, 1)
	go func() { done <- s.CreateToken(ctx, accessToken("after-panic")) }()
	if err := errors.Join(collect(t, done, 1)...); err != nil {
		t.Fatal(err)
	}
	if u, err := s.GetUser(ctx, "u1"); err != nil || u.Username != "alice" {
		t.Errorf("user after the panic: %+v, %v; want alice unchanged", u, err)
	}
}

// Close with a batch left open for a queued writer commits what was
// sealed into it, answers the queued writer (with its commit or with the
// store being closed) and returns: nobody waits on anybody for ever.
func TestCloseWithAnOpenBatch(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "provider.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	holder, err := s.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(holder, accessToken("sealed-before-close")); err != nil {
		t.Fatal(err)
	}
	queued := queue(t, s, 1, func(int) error { return s.CreateToken(ctx, accessToken("queued")) })
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	committed := make(chan error, 1)
	go func() { committed <- s.CommitTx(holder) }()
	if err := errors.Join(append(collect(t, committed, 1), collect(t, closed, 1)...)...); err != nil {
		t.Fatal(err)
	}
	if err := collect(t, queued, 1)[0]; err != nil && !errors.Is(err, errClosed) {
		t.Errorf("queued writer: %v, want its commit or errClosed", err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.GetToken(ctx, storage.KindAccessToken, "sealed-before-close"); err != nil {
		t.Errorf("the transaction committed before Close: %v", err)
	}
	if err := s.CreateToken(ctx, accessToken("after-reopen")); err != nil {
		t.Errorf("write after reopening: %v", err)
	}
}
