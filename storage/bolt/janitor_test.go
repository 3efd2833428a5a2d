package bolt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/smallsso/provider/storage"
)

// seedExpired stores n access tokens that expired one second apart in one
// transaction, and returns their signatures, the oldest first.
func seedExpired(t testing.TB, s *Store, n int, subject string) []string {
	t.Helper()
	ctx := context.Background()
	base := time.Now().Add(-time.Duration(n+1) * time.Second)
	txCtx, err := s.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sigs := make([]string, n)
	for i := range sigs {
		// Scrambled, as real signatures are: the records of one chunk
		// are spread over the token bucket, not side by side.
		sigs[i] = fmt.Sprintf("expired-%016x", uint64(i)*0x9e3779b97f4a7c15)
		r := storage.TokenRequest{
			Kind: storage.KindAccessToken, Signature: sigs[i], RequestID: "r-" + sigs[i], ClientID: "c-app",
			Subject: subject, Active: true, ExpiresAt: base.Add(time.Duration(i) * time.Second),
		}
		if err := s.CreateToken(txCtx, r); err != nil {
			_ = s.RollbackTx(txCtx)
			t.Fatal(err)
		}
	}
	if err := s.CommitTx(txCtx); err != nil {
		t.Fatal(err)
	}
	return sigs
}

func openWith(t *testing.T, opts Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "provider.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestGarbageCollectChunks checks the chunk bound and that the write lock
// is free between chunks: the hook runs between two of them and writes.
func TestGarbageCollectChunks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openWith(t, Options{GCChunkRecords: 100, GCChunkTime: time.Hour})
	sigs := seedExpired(t, s, 1000, "u-alice")
	live := storage.TokenRequest{Kind: storage.KindRefreshToken, Signature: "live", RequestID: "r", Subject: "u-alice", Active: true, ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.CreateToken(ctx, live); err != nil {
		t.Fatal(err)
	}
	var chunks []int
	s.gc.afterChunk = func(removed int) {
		chunks = append(chunks, removed)
		if len(chunks) != 1 {
			return
		}
		// With the pass holding the lock, this would never return.
		w := storage.TokenRequest{Kind: storage.KindAccessToken, Signature: "written-between", RequestID: "r-w", Active: true, ExpiresAt: time.Now().Add(time.Hour)}
		if err := s.CreateToken(ctx, w); err != nil {
			t.Errorf("create between chunks: %v", err)
		}
		_, errFirst := s.GetToken(ctx, storage.KindAccessToken, sigs[0])
		_, errLast := s.GetToken(ctx, storage.KindAccessToken, sigs[len(sigs)-1])
		if !errors.Is(errFirst, storage.ErrNotFound) || errLast != nil {
			t.Errorf("after the first chunk: oldest %v, newest %v; want the oldest gone and the newest kept", errFirst, errLast)
		}
	}
	n, err := s.GarbageCollect(ctx, time.Now())
	if err != nil || n != len(sigs) {
		t.Fatalf("garbage collect: removed %d, err %v; want %d, nil", n, err, len(sigs))
	}
	// Ten full chunks, then one that finds the index drained.
	if want := []int{100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 0}; !slices.Equal(chunks, want) {
		t.Errorf("chunks removed %v, want %v", chunks, want)
	}
	for _, sig := range []string{"written-between"} {
		if _, err := s.GetToken(ctx, storage.KindAccessToken, sig); err != nil {
			t.Errorf("%s after garbage collect: %v", sig, err)
		}
	}
	if _, err := s.GetToken(ctx, live.Kind, live.Signature); err != nil {
		t.Errorf("live token after garbage collect: %v", err)
	}
	if got, err := s.ListSubjectTokens(ctx, storage.KindAccessToken, "u-alice"); err != nil || len(got) != 0 {
		t.Errorf("alice's access tokens after garbage collect: %d, %v; want none", len(got), err)
	}
	if n := count(t, s, bucketSubjects); n != 1 {
		t.Errorf("subject index holds %d entries, want only the live token's", n)
	}
}

// TestGarbageCollectTimeBox checks that a chunk stops taking records once
// its time is spent, after at least one so that every chunk progresses.
func TestGarbageCollectTimeBox(t *testing.T) {
	t.Parallel()
	s := openWith(t, Options{GCChunkTime: time.Nanosecond})
	seedExpired(t, s, 50, "")
	chunks := 0
	s.gc.afterChunk = func(removed int) {
		chunks++
		if removed != 1 {
			t.Errorf("chunk %d removed %d records, want 1", chunks, removed)
		}
	}
	n, err := s.GarbageCollect(context.Background(), time.Now())
	if err != nil || n != 50 || chunks != 50 {
		t.Fatalf("garbage collect: removed %d in %d chunks, err %v; want 50 in 50, nil", n, chunks, err)
	}
}

// TestGarbageCollectStopsWhenCancelled checks that a cancelled pass keeps
// what it committed and reports it.
func TestGarbageCollectStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	s := openWith(t, Options{GCChunkRecords: 10, GCChunkTime: time.Hour})
	seedExpired(t, s, 100, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	chunks := 0
	s.gc.afterChunk = func(int) {
		if chunks++; chunks == 3 {
			cancel()
		}
	}
	n, err := s.GarbageCollect(ctx, time.Now())
	if !errors.Is(err, context.Canceled) || n != 30 {
		t.Fatalf("cancelled garbage collect: removed %d, err %v; want 30, context.Canceled", n, err)
	}
	if left := count(t, s, bucketExpiry); left != 70 {
		t.Fatalf("expiry index holds %d entries, want 70", left)
	}
}

// TestSubjectIndexBackfill opens a file written before the subject index
// existed (the bucket and the meta key removed) and checks that Open
// fills the index once.
func TestSubjectIndexBackfill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "provider.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tokens := []storage.TokenRequest{
		{Kind: storage.KindRefreshToken, Signature: "f1", RequestID: "r1", ClientID: "c-app", Subject: "u-alice", Active: true},
		{Kind: storage.KindAccessToken, Signature: "a1", RequestID: "r1", ClientID: "c-app", Subject: "u-alice", Active: true},
		{Kind: storage.KindRefreshToken, Signature: "f2", RequestID: "r2", ClientID: "c-other", Subject: "u-alice", Active: true},
		{Kind: storage.KindRefreshToken, Signature: "f3", RequestID: "r3", ClientID: "c-app", Subject: "u-bob", Active: true},
		{Kind: storage.KindAccessToken, Signature: "cc", RequestID: "r4", ClientID: "c-app", Active: true},
	}
	for _, r := range tokens {
		if err := s.CreateToken(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	plant(t, s, func(tx *bbolt.Tx) error {
		return errors.Join(
			tx.DeleteBucket([]byte(bucketSubjects)),
			tx.Bucket([]byte(bucketMeta)).Delete([]byte(keySubjectsIndexed)),
		)
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = reopen(t, path)
	defer s.Close()
	if n := count(t, s, bucketSubjects); n != 4 {
		t.Fatalf("subject index holds %d entries after the backfill, want 4 (the token without a subject is not indexed)", n)
	}
	var marker string
	_ = s.db.View(func(tx *bbolt.Tx) error {
		marker = string(tx.Bucket([]byte(bucketMeta)).Get([]byte(keySubjectsIndexed)))
		return nil
	})
	if marker != subjectsIndexed {
		t.Fatalf("meta %q = %q after the backfill, want %q", keySubjectsIndexed, marker, subjectsIndexed)
	}
	got, err := s.ListSubjectTokens(ctx, storage.KindRefreshToken, "u-alice")
	if err != nil || len(got) != 2 {
		t.Fatalf("alice's refresh tokens after the backfill: %d, %v; want 2", len(got), err)
	}
	if err := s.RevokeSubjectClient(ctx, "u-alice", "c-app"); err != nil {
		t.Fatal(err)
	}
	for _, r := range tokens {
		_, err := s.GetToken(ctx, r.Kind, r.Signature)
		if gone := errors.Is(err, storage.ErrNotFound); gone != (r.Subject == "u-alice" && r.ClientID == "c-app") {
			t.Errorf("%s %s after revoking alice's c-app tokens: %v", r.Kind, r.Signature, err)
		}
	}
}

// TestSubjectIndexNotRebuilt checks that the backfill runs once: an entry
// planted after it survives a reopen (a rebuild would drop nothing, but
// would add back an entry that was deleted; here one was).
func TestSubjectIndexNotRebuilt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "provider.db")
	s := reopen(t, path)
	r := storage.TokenRequest{Kind: storage.KindRefreshToken, Signature: "f1", RequestID: "r1", ClientID: "c-app", Subject: "u-alice", Active: true}
	if err := s.CreateToken(ctx, r); err != nil {
		t.Fatal(err)
	}
	plant(t, s, func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketSubjects)).Delete(subjectKey(r.Subject, r.Kind, r.ClientID, r.Signature))
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, path)
	defer s.Close()
	if n := count(t, s, bucketSubjects); n != 0 {
		t.Fatalf("subject index holds %d entries after a reopen, want 0: it was rebuilt", n)
	}
}

func TestSubjectIndexDropsStaleEntries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	bobs := storage.TokenRequest{Kind: storage.KindRefreshToken, Signature: "sig", RequestID: "r1", ClientID: "c-app", Subject: "u-bob", Active: true}
	if err := s.CreateToken(ctx, bobs); err != nil {
		t.Fatal(err)
	}
	plant(t, s, func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(bucketSubjects))
		return errors.Join(
			b.Put(subjectKey("u-alice", bobs.Kind, "c-app", bobs.Signature), nil), // points at bob's token
			b.Put(subjectKey("u-alice", bobs.Kind, "c-app", "gone"), nil),         // points at nothing
			b.Put(append(key("u-alice", string(bobs.Kind), "c-app"), 0xff), nil),  // malformed
		)
	})
	got, err := s.ListSubjectTokens(ctx, bobs.Kind, "u-alice")
	if err != nil || len(got) != 0 {
		t.Fatalf("alice's tokens with only stale entries: %+v, %v; want none", got, err)
	}
	if err := s.RevokeSubjectClient(ctx, "u-alice", "c-app"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetToken(ctx, bobs.Kind, bobs.Signature); err != nil {
		t.Fatalf("bob's token after revoking alice's: %v", err)
	}
	if left := count(t, s, bucketSubjects); left != 1 {
		t.Fatalf("subject index holds %d entries after revoke, want only bob's", left)
	}
}

func reopen(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
