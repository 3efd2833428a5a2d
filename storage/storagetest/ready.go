package storagetest

import (
	"sync"
	"testing"

	"github.com/smallsso/provider/storage"
)

// testCheckWritable: a healthy store is writable, again and again and
// from many goroutines at once; the probe changes no record; and asked
// inside a transaction it fails instead of waiting for itself.
func testCheckWritable(t *testing.T, s storage.Store) {
	ctx := t.Context()
	ok(t, s.CreateUser(ctx, user("u-alice", "alice")), "create user")
	ok(t, s.CheckWritable(ctx), "check writable")
	ok(t, s.CheckWritable(ctx), "check writable again")

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() { errs <- s.CheckWritable(ctx) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		ok(t, err, "concurrent check writable")
	}

	users, err := s.ListUsers(ctx)
	ok(t, err, "list users")
	if len(users) != 1 || users[0].ID != "u-alice" {
		t.Fatalf("users after the probes: %+v, want alice only", users)
	}

	txCtx, err := s.BeginTx(ctx)
	ok(t, err, "begin")
	if err := s.CheckWritable(txCtx); err == nil {
		t.Error("check writable inside a transaction succeeded, want an error")
	}
	ok(t, s.RollbackTx(txCtx), "rollback")
	ok(t, s.CheckWritable(ctx), "check writable after the transaction")
}
