package membudgets_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/membudgets"
)

// BenchmarkUpdate is one update of four records, as a sign-in's reserve.
func BenchmarkUpdate(b *testing.B) {
	m := membudgets.New()
	now := time.Unix(1_800_000_000, 0)
	names := make([][]string, 1000)
	for i := range names {
		s := strconv.Itoa(i)
		names[i] = []string{"tp:0123456789abcdef0123456789abcdef/192.0.2." + s, "ts:192.0.2." + s, "ta:0123456789abcdef0123456789abcdef" + s, "tk:0123456789abcdef0123456789abcdef/192.0.2." + s}
	}
	fn := func(cur []storage.Bucket) ([]storage.Bucket, error) {
		for i := range cur {
			cur[i].Tokens++
			cur[i].At = now
			cur[i].ExpiresAt = now.Add(time.Hour)
		}
		return cur, nil
	}
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.UpdateBuckets(ctx, now, names[i%len(names)], fn)
		i++
	}
}
