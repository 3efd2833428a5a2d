package postgres_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/postgres"
	"github.com/smallsso/provider/storage/postgres/pgtest"
)

// fakeClock is a settable clock (CheckWritable's cache, the client cache).
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestDatabaseRestart: while the server is down, CheckWritable (once its
// cached answer is a second old) and every call fail with ErrUnavailable,
// without the DSN's password in the error; once it is back, the pool
// reconnects by itself and nothing committed is lost.
func TestDatabaseRestart(t *testing.T) {
	t.Parallel()
	c := pgtest.Start(t)
	dsn := c.NewDatabase(t)
	ctx := t.Context()
	s, err := postgres.Open(ctx, postgres.Options{DSN: dsn, Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	clock := &fakeClock{t: time.Now()}
	postgres.SetClock(s, clock.now)
	if err := s.CreateUser(ctx, storage.User{ID: "u-alice", Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckWritable(ctx); err != nil {
		t.Fatalf("check writable on a healthy database: %v", err)
	}

	c.Stop()
	if err := s.CheckWritable(ctx); err != nil {
		t.Fatalf("check writable within the cached second: %v, want the cached success", err)
	}
	clock.advance(1100 * time.Millisecond)
	unavailable := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Fatalf("%s with the database down: %v, want ErrUnavailable", what, err)
		}
		if c.Password != "" && strings.Contains(err.Error(), c.Password) {
			t.Fatalf("%s: the error shows the DSN password: %v", what, err)
		}
	}
	err = s.CheckWritable(ctx)
	unavailable("check writable", err)
	t.Logf("what the probe says while the database is down: %v", err)
	unavailable("check writable (cached)", s.CheckWritable(ctx))
	_, err = s.GetUser(ctx, "u-alice")
	unavailable("get user", err)
	unavailable("create token", s.CreateToken(ctx, refreshToken("rt-down")))
	unavailable("deactivate token", s.DeactivateToken(ctx, storage.KindRefreshToken, "rt-down"))
	_, err = s.BeginTx(ctx)
	unavailable("begin tx", err)

	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	// The pool drops the connections the restart cut as it meets them;
	// a bounded number of probes gets through.
	var last error
	for i := range 20 {
		clock.advance(1100 * time.Millisecond)
		if last = s.CheckWritable(ctx); last == nil {
			t.Logf("writable again after %d probes", i+1)
			break
		}
		unavailable("check writable after the restart", last)
	}
	if last != nil {
		t.Fatalf("check writable after the restart never succeeded: %v", last)
	}
	if _, err := s.GetUser(ctx, "u-alice"); err != nil {
		t.Fatalf("get user after the restart: %v", err)
	}
	if err := s.CreateToken(ctx, refreshToken("rt-up")); err != nil {
		t.Fatalf("create token after the restart: %v", err)
	}
}

// TestReadOnlyIsUnavailable: a database that refuses writes (a standby,
// default_transaction_read_only) fails writes and the probe with
// ErrUnavailable, and still serves reads.
func TestReadOnlyIsUnavailable(t *testing.T) {
	t.Parallel()
	s, dsn := openFresh(t)
	ctx := t.Context()
	if err := s.CreateUser(ctx, storage.User{ID: "u-alice", Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	ro, err := postgres.Open(ctx, postgres.Options{DSN: dsn + "&options=-c%20default_transaction_read_only%3Don"})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.GetUser(ctx, "u-alice"); err != nil {
		t.Fatalf("read from a read-only database: %v", err)
	}
	for what, err := range map[string]error{
		"create user":    ro.CreateUser(ctx, storage.User{ID: "u-bob", Username: "bob"}),
		"check writable": ro.CheckWritable(ctx),
	} {
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s on a read-only database: %v, want ErrUnavailable", what, err)
		}
	}
}

// TestFailedStatementSpoilsTx: a statement that really fails inside a
// transaction (here a NUL in a text key, which PostgreSQL refuses) leaves
// it good only for rollback, and CommitTx says so. (That sentinels keep
// it usable is the suite's TxSentinelsKeepTx.)
func TestFailedStatementSpoilsTx(t *testing.T) {
	t.Parallel()
	s, _ := openFresh(t)
	defer s.Close()
	ctx := t.Context()
	txCtx, err := s.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(txCtx, refreshToken("doomed")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(txCtx, refreshToken("bad\x00sig")); err == nil {
		t.Fatal("create with a NUL in the signature succeeded")
	}
	if err := s.CommitTx(txCtx); err == nil {
		t.Fatal("commit after a failed statement succeeded")
	}
	if _, err := s.GetToken(ctx, storage.KindRefreshToken, "doomed"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("write of a failed transaction: %v, want ErrNotFound", err)
	}
}
