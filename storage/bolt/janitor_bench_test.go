package bolt

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/smallsso/provider/storage"
)

// BenchmarkGarbageCollect times a janitor pass over a backlog of expired
// records (ns/op is the whole pass), alone and with a writer issuing
// tokens throughout. It reports ns/record, chunks/op, the longest chunk
// (as seen between two chunks: its transaction and commit, plus whatever
// writer got the lock in between) and, with the writer, the longest one
// CreateToken took during the pass: how long issuance stalls.
func BenchmarkGarbageCollect(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		for _, writer := range []bool{false, true} {
			name := fmt.Sprintf("expired=%dk/writer=%t", n/1000, writer)
			b.Run(name, func(b *testing.B) { benchGarbageCollect(b, n, writer) })
		}
	}
}

func benchGarbageCollect(b *testing.B, n int, writer bool) {
	ctx := context.Background()
	var chunks int
	var maxChunk, maxWait time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s, err := Open(b.TempDir()+"/provider.db", Options{})
		if err != nil {
			b.Fatal(err)
		}
		seedExpired(b, s, n, "u-bench")
		var last time.Time
		s.gc.afterChunk = func(int) {
			chunks++
			maxChunk = max(maxChunk, time.Since(last))
			last = time.Now()
		}
		done := make(chan struct{})
		waits := make(chan time.Duration, 1)
		if writer {
			go func() {
				var longest time.Duration
				for w := 0; ; w++ {
					select {
					case <-done:
						waits <- longest
						return
					default:
					}
					start := time.Now()
					r := storage.TokenRequest{Kind: storage.KindAccessToken, Signature: fmt.Sprintf("w-%d", w), RequestID: "r", Active: true, ExpiresAt: time.Now().Add(time.Hour)}
					if err := s.CreateToken(ctx, r); err != nil {
						b.Error(err)
					}
					longest = max(longest, time.Since(start))
				}
			}()
		} else {
			waits <- 0
		}
		last = time.Now()
		b.StartTimer()
		removed, err := s.GarbageCollect(ctx, time.Now())
		b.StopTimer()
		close(done)
		maxWait = max(maxWait, <-waits)
		if err != nil || removed != n {
			b.Fatalf("removed %d, err %v; want %d", removed, err, n)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
	b.ReportMetric(float64(chunks)/float64(b.N), "chunks/op")
	b.ReportMetric(float64(maxChunk.Microseconds())/1000, "max-chunk-ms")
	if writer {
		b.ReportMetric(float64(maxWait.Microseconds())/1000, "max-create-ms")
	}
}
