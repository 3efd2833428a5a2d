package bolt

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// metaFreelist reads the freelist page id of the current meta page (the
// one with the higher transaction id) straight from the file: bbolt's meta
// is magic, version, page size, flags (4 bytes each), the root bucket (16),
// then the freelist's page id, the high-water mark and the txid.
func metaFreelist(t *testing.T, path string) uint64 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const pageHeader, freelistAt, txidAt = 16, 32, 48
	pageSize := int(binary.LittleEndian.Uint32(raw[pageHeader+8:]))
	var best, bestTxid uint64
	for i := range 2 {
		m := raw[i*pageSize+pageHeader:]
		if txid := binary.LittleEndian.Uint64(m[txidAt:]); txid >= bestTxid {
			best, bestTxid = binary.LittleEndian.Uint64(m[freelistAt:]), txid
		}
	}
	return best
}

const noFreelist = math.MaxUint64

func seedExpiring(t testing.TB, s *Store, n int, expiresAt time.Time) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i += 5000 {
		txCtx, err := s.BeginTx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for j := i; j < min(n, i+5000); j++ {
			r := accessToken(fmt.Sprintf("seed-%08d-0123456789abcdefghijklmnopqrstuv", j))
			r.ExpiresAt = expiresAt
			if err := s.CreateToken(txCtx, r); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CommitTx(txCtx); err != nil {
			t.Fatal(err)
		}
	}
}

// The freelist is written once, by Close, not by every commit: while the
// store is open the file says it has none, after a clean close it has one,
// so a restart reads it instead of scanning the file.
func TestCloseWritesTheFreelist(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "provider.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	seedExpiring(t, s, 2000, time.Now().Add(-time.Minute))
	if _, err := s.GarbageCollect(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := metaFreelist(t, path); got != noFreelist {
		t.Errorf("while open, the meta names freelist page %d: commits write the freelist", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := metaFreelist(t, path); got == noFreelist {
		t.Error("after Close the meta names no freelist: a restart would scan the file")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// A file left without a written freelist (the process was killed) opens,
// with every committed record, and takes new writes.
func TestOpenAfterAKill(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "provider.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	seedExpiring(t, s, 3000, time.Now().Add(-time.Minute))
	if _, err := s.GarbageCollect(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(context.Background(), accessToken("committed")); err != nil {
		t.Fatal(err)
	}
	// A copy of the file as a kill would leave it: every commit is on
	// disk, the freelist is not.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	killed := filepath.Join(dir, "killed.db")
	if err := os.WriteFile(killed, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := metaFreelist(t, killed); got != noFreelist {
		t.Fatalf("the copy names freelist page %d, want none", got)
	}
	k, err := Open(killed, Options{})
	if err != nil {
		t.Fatalf("open after a kill: %v", err)
	}
	defer k.Close()
	ctx := context.Background()
	if _, err := k.GetToken(ctx, "access", "committed"); err != nil {
		t.Errorf("committed token after a kill: %v", err)
	}
	for i := range 100 {
		if err := k.CreateToken(ctx, accessToken(fmt.Sprintf("after-%d", i))); err != nil {
			t.Fatalf("write after a kill: %v", err)
		}
	}
}

// BenchmarkCreateTokenAfterMassExpiry is a synced write after the janitor
// freed 100k records' pages: the freelist is large, and a commit that
// wrote it each time would cost several times a normal one.
func BenchmarkCreateTokenAfterMassExpiry(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "provider.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	exp := time.Now().Add(time.Second)
	seedExpiring(b, s, 100000, exp)
	if _, err := s.GarbageCollect(context.Background(), exp.Add(time.Second)); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(s.db.Stats().FreePageN), "free-pages")
	i := 0
	for b.Loop() {
		if err := s.CreateToken(context.Background(), accessToken(fmt.Sprintf("new-%d", i))); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
