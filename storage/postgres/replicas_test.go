package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/postgres"
	"github.com/smallsso/provider/storage/postgres/pgtest"
)

// twoReplicas opens two Stores, each with its own pool, on one fresh
// database: what two provider replicas are.
func twoReplicas(t *testing.T) (a, b *postgres.Store, dsn string) {
	t.Helper()
	dsn = pgtest.Shared(t).NewDatabase(t)
	open := func() *postgres.Store {
		s, err := postgres.Open(t.Context(), postgres.Options{DSN: dsn, Migrate: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	return open(), open(), dsn
}

// pair runs fa and fb on two goroutines released together.
func pair(fa, fb func() error) (ea, eb error) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { <-start; ea = fa() })
	wg.Go(func() { <-start; eb = fb() })
	close(start)
	wg.Wait()
	return ea, eb
}

func refreshToken(sig string) storage.TokenRequest {
	return storage.TokenRequest{
		Kind: storage.KindRefreshToken, Signature: sig, RequestID: "req-" + sig, ClientID: "c-app",
		Subject: "u-alice", RequestedAt: time.Now().UTC(), Active: true, ExpiresAt: time.Now().Add(time.Hour),
	}
}

func TestReplicasRaceDeactivate(t *testing.T) {
	t.Parallel()
	a, b, _ := twoReplicas(t)
	ctx := t.Context()
	for i := range 50 {
		r := refreshToken(fmt.Sprintf("rt-%02d", i))
		if err := a.CreateToken(ctx, r); err != nil {
			t.Fatal(err)
		}
		ea, eb := pair(
			func() error { return a.DeactivateToken(ctx, r.Kind, r.Signature) },
			func() error { return b.DeactivateToken(ctx, r.Kind, r.Signature) },
		)
		won := 0
		for _, err := range []error{ea, eb} {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, storage.ErrInactive):
				t.Fatalf("round %d: %v, want nil or ErrInactive", i, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d replicas won the deactivation (A: %v, B: %v), want exactly 1", i, won, ea, eb)
		}
	}
}

// TestReplicasRaceDeactivateInTx races the rotation as the provider does
// it: each replica deactivates in a transaction that also writes the new
// token, and the loser rolls back.
func TestReplicasRaceDeactivateInTx(t *testing.T) {
	t.Parallel()
	a, b, _ := twoReplicas(t)
	ctx := t.Context()
	for i := range 20 {
		r := refreshToken(fmt.Sprintf("rt-%02d", i))
		if err := a.CreateToken(ctx, r); err != nil {
			t.Fatal(err)
		}
		rotate := func(s *postgres.Store, next string) func() error {
			return func() error {
				txCtx, err := s.BeginTx(ctx)
				if err != nil {
					return err
				}
				if err := s.DeactivateToken(txCtx, r.Kind, r.Signature); err != nil {
					_ = s.RollbackTx(txCtx)
					return err
				}
				if err := s.CreateToken(txCtx, refreshToken(next)); err != nil {
					_ = s.RollbackTx(txCtx)
					return err
				}
				return s.CommitTx(txCtx)
			}
		}
		ea, eb := pair(rotate(a, r.Signature+"-a"), rotate(b, r.Signature+"-b"))
		if (ea == nil) == (eb == nil) || !errors.Is(errors.Join(ea, eb), storage.ErrInactive) {
			t.Fatalf("round %d: A %v, B %v; want one winner and one ErrInactive", i, ea, eb)
		}
		successors := 0
		for _, sig := range []string{r.Signature + "-a", r.Signature + "-b"} {
			if _, err := b.GetToken(ctx, storage.KindRefreshToken, sig); err == nil {
				successors++
			}
		}
		if successors != 1 {
			t.Fatalf("round %d: %d successor tokens stored, want 1", i, successors)
		}
	}
}

func TestReplicasRaceCreateJTI(t *testing.T) {
	t.Parallel()
	a, b, _ := twoReplicas(t)
	ctx := t.Context()
	now := time.Now()
	for i := range 50 {
		j := storage.JTI{ID: fmt.Sprintf("jti-%02d", i), ExpiresAt: now.Add(time.Minute)}
		if i%2 == 1 {
			// An expired record of the ID is there: both may replace it,
			// one does.
			if err := a.CreateJTI(ctx, storage.JTI{ID: j.ID, ExpiresAt: now.Add(-time.Minute)}, now.Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		ea, eb := pair(
			func() error { return a.CreateJTI(ctx, j, now) },
			func() error { return b.CreateJTI(ctx, j, now) },
		)
		if (ea == nil) == (eb == nil) || !errors.Is(errors.Join(ea, eb), storage.ErrAlreadyExists) {
			t.Fatalf("round %d: A %v, B %v; want exactly one success and one ErrAlreadyExists", i, ea, eb)
		}
	}
}

func TestReplicasRaceUpdateUser(t *testing.T) {
	t.Parallel()
	a, b, _ := twoReplicas(t)
	ctx := t.Context()
	if err := a.CreateUser(ctx, storage.User{ID: "u-alice", Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	const each = 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for r, s := range []*postgres.Store{a, b} {
		for i := range each {
			wg.Go(func() {
				errs <- s.UpdateUser(ctx, "u-alice", func(u storage.User) (storage.User, error) {
					u.Groups = append(u.Groups, fmt.Sprintf("g-%d-%02d", r, i))
					return u, nil
				})
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	u, err := b.GetUser(ctx, "u-alice")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(u.Groups)
	if len(slices.Compact(u.Groups)) != 2*each {
		t.Fatalf("%d increments kept of %d: %v", len(u.Groups), 2*each, u.Groups)
	}
}

// TestGCOneReplicaAtATime: a replica that finds the janitor's advisory
// lock taken collects nothing and says so at once; two replicas
// collecting together remove each record once.
func TestGCOneReplicaAtATime(t *testing.T) {
	t.Parallel()
	a, b, dsn := twoReplicas(t)
	ctx := t.Context()
	postgres.SetGCBatch(a, 7)
	postgres.SetGCBatch(b, 7)
	now := time.Now()
	const expired = 200
	txCtx, err := a.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range expired {
		r := refreshToken(fmt.Sprintf("old-%03d", i))
		r.ExpiresAt = now.Add(-time.Duration(expired-i) * time.Second)
		if err := a.CreateToken(txCtx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.CommitTx(txCtx); err != nil {
		t.Fatal(err)
	}

	// Another replica (here: a bare connection) holds the lock.
	other, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	if _, err := other.Exec(ctx, "SELECT pg_advisory_lock($1)", postgres.GCLockKey); err != nil {
		t.Fatal(err)
	}
	n, err := a.GarbageCollect(ctx, now)
	if n != 0 || err != nil {
		t.Fatalf("collect while another replica holds the lock: %d, %v; want 0, nil", n, err)
	}
	if _, err := a.GetToken(ctx, storage.KindRefreshToken, "old-000"); err != nil {
		t.Fatalf("expired token collected while the lock was held elsewhere: %v", err)
	}
	if _, err := other.Exec(ctx, "SELECT pg_advisory_unlock($1)", postgres.GCLockKey); err != nil {
		t.Fatal(err)
	}

	na, nb := 0, 0
	ea, eb := pair(
		func() (err error) { na, err = a.GarbageCollect(ctx, now); return err },
		func() (err error) { nb, err = b.GarbageCollect(ctx, now); return err },
	)
	if ea != nil || eb != nil {
		t.Fatalf("collect on both replicas: %v, %v", ea, eb)
	}
	for na+nb < expired {
		// The replica that lost the lock returned at once; collect what
		// is left (none, unless it ran first and the other one second).
		n, err := a.GarbageCollect(ctx, now)
		if err != nil || n == 0 {
			t.Fatalf("removed %d+%d of %d, then %d (%v)", na, nb, expired, n, err)
		}
		na += n
	}
	if na+nb != expired {
		t.Fatalf("replicas removed %d+%d records, want %d in all", na, nb, expired)
	}
	// The lock was released: a bare connection takes it at once.
	var got bool
	if err := other.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", postgres.GCLockKey).Scan(&got); err != nil || !got {
		t.Fatalf("GC lock still held after the runs: %v %v", got, err)
	}
}

// TestGCStopsOnCancel: a run cancelled after its first batch stops
// there, and counts what that batch committed; the next run takes the
// rest.
func TestGCStopsOnCancel(t *testing.T) {
	t.Parallel()
	s, _ := openFresh(t)
	defer s.Close()
	postgres.SetGCBatch(s, 1)
	ctx, cancel := context.WithCancel(t.Context())
	postgres.SetGCAfterBatch(s, cancel)
	now := time.Now()
	for i := range 3 {
		r := refreshToken(fmt.Sprintf("old-%d", i))
		r.ExpiresAt = now.Add(-time.Duration(3-i) * time.Minute)
		if err := s.CreateToken(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.GarbageCollect(ctx, now)
	if n != 1 || !errors.Is(err, context.Canceled) {
		t.Fatalf("collect cancelled after a batch: %d, %v; want 1 and context.Canceled", n, err)
	}
	if _, err := s.GetToken(t.Context(), storage.KindRefreshToken, "old-0"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("oldest token after the first batch: %v, want it collected", err)
	}
	postgres.SetGCAfterBatch(s, nil)
	n, err = s.GarbageCollect(t.Context(), now)
	if n != 2 || err != nil {
		t.Fatalf("collect: %d, %v; want 2, nil", n, err)
	}
}

// TestReplicasDeadlockIsConflict: two replicas' transactions that lock
// two users in opposite orders deadlock; PostgreSQL aborts one, whose
// call and CommitTx fail with ErrConflict and keep nothing, and the
// other commits.
func TestReplicasDeadlockIsConflict(t *testing.T) {
	t.Parallel()
	a, b, _ := twoReplicas(t)
	ctx := t.Context()
	for _, id := range []string{"u1", "u2"} {
		if err := a.CreateUser(ctx, storage.User{ID: id, Username: id}); err != nil {
			t.Fatal(err)
		}
	}
	name := func(n string) func(storage.User) (storage.User, error) {
		return func(u storage.User) (storage.User, error) { u.Name = n; return u, nil }
	}
	txA, err := a.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	txB, err := b.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.UpdateUser(txA, "u1", name("A")); err != nil {
		t.Fatal(err)
	}
	if err := b.UpdateUser(txB, "u2", name("B")); err != nil {
		t.Fatal(err)
	}
	finish := func(s *postgres.Store, txCtx context.Context, id string) func() error {
		return func() error {
			err := s.UpdateUser(txCtx, id, name("late"))
			cerr := s.CommitTx(txCtx)
			if err != nil && !errors.Is(cerr, storage.ErrConflict) {
				return fmt.Errorf("commit after %v: %v, want ErrConflict", err, cerr)
			}
			return err
		}
	}
	ea, eb := pair(finish(a, txA, "u2"), finish(b, txB, "u1"))
	if (ea == nil) == (eb == nil) || !errors.Is(errors.Join(ea, eb), storage.ErrConflict) {
		t.Fatalf("A %v, B %v; want one ErrConflict and one success", ea, eb)
	}
	winner := "A"
	if ea != nil {
		winner = "B"
	}
	for _, id := range []string{"u1", "u2"} {
		u, err := a.GetUser(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]string{"A/u1": "A", "A/u2": "late", "B/u1": "late", "B/u2": "B"}[winner+"/"+id]; u.Name != want {
			t.Errorf("%s after %s won: name %q, want %q (nothing of the loser kept)", id, winner, u.Name, want)
		}
	}
}

// TestRevokeRacingARotation revokes a token family on one replica while
// another replica's rotation holds the family's token locked and has
// inserted its successor: the revocation waits for the rotation, and the
// successor is revoked too. (One DELETE at READ COMMITTED would miss it:
// the row was inserted after that statement's snapshot.)
func TestRevokeRacingARotation(t *testing.T) {
	t.Parallel()
	for _, revoke := range []struct {
		name string
		do   func(ctx context.Context, s *postgres.Store) error
	}{
		{"by request ID", func(ctx context.Context, s *postgres.Store) error {
			return s.RevokeByRequestID(ctx, storage.KindRefreshToken, "req-family")
		}},
		{"by subject and client", func(ctx context.Context, s *postgres.Store) error {
			return s.RevokeSubjectClient(ctx, "u-alice", "c-app")
		}},
	} {
		t.Run(revoke.name, func(t *testing.T) {
			t.Parallel()
			a, b, dsn := twoReplicas(t)
			ctx := t.Context()
			old, next := refreshToken("rt-old"), refreshToken("rt-next")
			old.RequestID, next.RequestID = "req-family", "req-family"
			if err := a.CreateToken(ctx, old); err != nil {
				t.Fatal(err)
			}
			txCtx, err := a.BeginTx(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.DeactivateToken(txCtx, storage.KindRefreshToken, old.Signature); err != nil {
				t.Fatal(err)
			}
			if err := a.CreateToken(txCtx, next); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- revoke.do(ctx, b) }()
			// The revocation is waiting for the rotation's row lock.
			watch, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer watch.Close(ctx)
			for deadline := time.Now().Add(10 * time.Second); ; {
				var waiting int
				if err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
					t.Fatal(err)
				}
				if waiting > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the revocation never waited for the rotation's lock")
				}
				<-time.After(5 * time.Millisecond)
			}
			if err := a.CommitTx(txCtx); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			for _, sig := range []string{old.Signature, next.Signature} {
				if _, err := a.GetToken(ctx, storage.KindRefreshToken, sig); !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("%s after the family was revoked: %v, want not found", sig, err)
				}
			}
		})
	}
}
