package membudgets_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/budgetstest"
	"github.com/smallsso/provider/storage/membudgets"
)

func TestConformance(t *testing.T) {
	budgetstest.Run(t, func(t *testing.T) (storage.Budgets, storage.Budgets) {
		b := membudgets.New()
		return b, b
	})
}

// The map stays bounded: expired records are dropped before it grows
// past its threshold.
func TestPrunes(t *testing.T) {
	t.Parallel()
	b := membudgets.NewPruneAt(1000)
	now := time.Unix(1_800_000_000, 0)
	put := func(name string, now time.Time) {
		err := b.UpdateBuckets(t.Context(), now, []string{name}, func(cur []storage.Bucket) ([]storage.Bucket, error) {
			return []storage.Bucket{{Tokens: 1, At: now, ExpiresAt: now.Add(time.Minute)}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 1000 {
		put(strconv.Itoa(i), now)
	}
	now = now.Add(time.Minute) // every record has expired
	put("new", now)
	if n := b.Len(); n != 1 {
		t.Fatalf("%d records after pruning, want 1", n)
	}
	// Live records are kept, and pruning again waits until the map has
	// doubled.
	for i := range 1500 {
		put("live"+strconv.Itoa(i), now)
	}
	if n := b.Len(); n != 1501 {
		t.Fatalf("%d records, want 1501 live ones", n)
	}
}

// A pruning in the middle of an update does not lose the update's writes
// to records it read before (expired ones, which the pruning drops).
func TestPruneDuringUpdate(t *testing.T) {
	t.Parallel()
	b := membudgets.NewPruneAt(2)
	t0 := time.Unix(1_800_000_000, 0)
	err := b.UpdateBuckets(t.Context(), t0, []string{"a", "b"}, func(cur []storage.Bucket) ([]storage.Bucket, error) {
		return []storage.Bucket{{Tokens: 1, ExpiresAt: t0.Add(time.Second)}, {Tokens: 1, ExpiresAt: t0.Add(time.Second)}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	later := t0.Add(time.Minute) // a and b have expired
	err = b.UpdateBuckets(t.Context(), later, []string{"new", "a", "b"}, func(cur []storage.Bucket) ([]storage.Bucket, error) {
		for i := range cur {
			cur[i] = storage.Bucket{Tokens: float64(i + 1), ExpiresAt: later.Add(time.Hour)}
		}
		return cur, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := b.ReadBuckets(t.Context(), later, []string{"new", "a", "b"})
	for i, g := range got {
		if g.Tokens != float64(i+1) {
			t.Errorf("%s = %+v, want %d tokens", g.Name, g, i+1)
		}
	}
}
