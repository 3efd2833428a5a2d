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
