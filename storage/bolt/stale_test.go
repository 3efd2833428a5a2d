package bolt

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/smallsso/provider/storage"
)

// The store keeps its indexes in step with the records, so stale or
// damaged entries only come from bugs or outside edits. These tests plant
// some directly and check that they are cleaned up without touching live
// records or failing the operation.

func TestGarbageCollectDropsStaleEntries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	past := time.Now().Add(-time.Hour)
	live := storage.TokenRequest{Kind: storage.KindAccessToken, Signature: "sig", RequestID: "r1", Active: true, ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.CreateToken(ctx, live); err != nil {
		t.Fatal(err)
	}
	plant(t, s, func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(bucketExpiry))
		for _, k := range [][]byte{
			expiryKey(past, familyToken, string(live.Kind), live.Signature), // record expires later
			expiryKey(past, familySession, "gone"),                          // record missing
			expiryKey(past, "unknown-family", "x"),
			append(expiryKey(past), 0xff), // malformed reference
			{0x00},                        // shorter than a timestamp
		} {
			if err := b.Put(k, nil); err != nil {
				return err
			}
		}
		return nil
	})

	n, err := s.GarbageCollect(ctx, time.Now())
	if err != nil || n != 0 {
		t.Fatalf("garbage collect: removed %d, err %v; want 0, nil", n, err)
	}
	if _, err := s.GetToken(ctx, live.Kind, live.Signature); err != nil {
		t.Fatalf("live token after garbage collect: %v", err)
	}
	if left := count(t, s, bucketExpiry); left != 1 {
		t.Fatalf("expiry index holds %d entries after garbage collect, want only the live token's", left)
	}
}

func TestRevokeDropsStaleEntries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	other := storage.TokenRequest{Kind: storage.KindAccessToken, Signature: "sig", RequestID: "r-other", Active: true}
	if err := s.CreateToken(ctx, other); err != nil {
		t.Fatal(err)
	}
	plant(t, s, func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(bucketRequestIDs))
		return errors.Join(
			b.Put(key(string(other.Kind), "r1", other.Signature), nil), // points at another request's token
			b.Put(key(string(other.Kind), "r1", "gone"), nil),          // points at nothing
			b.Put(append(key(string(other.Kind), "r1"), 0xff), nil),    // malformed
		)
	})

	if err := s.RevokeByRequestID(ctx, other.Kind, "r1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetToken(ctx, other.Kind, other.Signature); err != nil {
		t.Fatalf("token of another request after revoke: %v", err)
	}
	if left := count(t, s, bucketRequestIDs); left != 1 {
		t.Fatalf("request id index holds %d entries after revoke, want only r-other's", left)
	}
}

func TestMethodsJoinTheContextTransaction(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	txCtx, err := s.BeginTx(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.RollbackTx(txCtx)
	// A method that opened its own bbolt Update here would wait for the
	// write lock this goroutine holds: deadlock, caught by the test timeout.
	if err := s.CreateClient(txCtx, storage.Client{ID: "c"}); err != nil {
		t.Fatal(err)
	}
	other, err := Open(filepath.Join(t.TempDir(), "other.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// The transaction belongs to s only: other runs its own.
	if err := other.CreateClient(txCtx, storage.Client{ID: "c"}); err != nil {
		t.Fatal(err)
	}
}

func TestCanceledContext(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.CreateClient(ctx, storage.Client{ID: "c"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("create with a canceled context: got %v", err)
	}
}

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "provider.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func plant(t *testing.T, s *Store, fn func(*bbolt.Tx) error) {
	t.Helper()
	if err := s.db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, s *Store, bucket string) int {
	t.Helper()
	n := 0
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucket)).ForEach(func(_, _ []byte) error {
			n++
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Indexes must drain with their records, or they grow without bound and
// GarbageCollect scans ever more dead entries.
func TestIndexesDrainWithRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	soon := time.Now().Add(time.Hour)
	tok := storage.TokenRequest{Kind: storage.KindRefreshToken, Signature: "sig", RequestID: "r1", Subject: "u1", Active: true, ExpiresAt: soon}
	steps := []error{
		s.CreateUser(ctx, storage.User{ID: "u1", Username: "alice"}),
		s.UpdateUser(ctx, "u1", func(u storage.User) (storage.User, error) { u.Username = "alicia"; return u, nil }),
		s.CreateToken(ctx, tok),
		s.DeactivateToken(ctx, tok.Kind, tok.Signature),
		s.CreateToken(ctx, storage.TokenRequest{Kind: storage.KindAccessToken, Signature: "a", RequestID: "r1", Subject: "u1", ExpiresAt: soon}),
		s.CreateBrowserSession(ctx, storage.BrowserSession{ID: "s1", ExpiresAt: soon}),
		s.SaveConsent(ctx, storage.Consent{UserID: "u1", ClientID: "c1", ExpiresAt: soon}),
		s.SaveConsent(ctx, storage.Consent{UserID: "u1", ClientID: "c1", ExpiresAt: soon.Add(time.Hour)}),
		s.CreateJTI(ctx, storage.JTI{ID: "j1", ExpiresAt: time.Now().Add(-time.Minute)}, time.Now()),
		s.CreateJTI(ctx, storage.JTI{ID: "j1", ExpiresAt: soon}, time.Now()),

		s.DeleteUser(ctx, "u1"),
		s.DeleteToken(ctx, tok.Kind, tok.Signature),
		s.RevokeByRequestID(ctx, storage.KindAccessToken, "r1"),
		s.DeleteBrowserSession(ctx, "s1"),
		s.DeleteConsent(ctx, "u1", "c1"),
	}
	if err := errors.Join(steps...); err != nil {
		t.Fatal(err)
	}
	// Counted before collecting, which would hide stale entries by
	// dropping them. JTIs have no delete, so j1's entry is still due.
	for _, tc := range []struct {
		bucket string
		want   int
	}{{bucketUserNames, 0}, {bucketRequestIDs, 0}, {bucketSubjects, 0}, {bucketExpiry, 1}} {
		if n := count(t, s, tc.bucket); n != tc.want {
			t.Errorf("%s holds %d entries after the records are gone, want %d", tc.bucket, n, tc.want)
		}
	}
	if n, err := s.GarbageCollect(ctx, soon.Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("garbage collect: removed %d, err %v; want 1, nil", n, err)
	}
	if n := count(t, s, bucketExpiry); n != 0 {
		t.Errorf("expiry holds %d entries after collecting the last record", n)
	}
}
