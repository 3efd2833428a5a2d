package bolt_test

import (
	"context"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smallsso/provider/storage"
)

func benchToken(i int) storage.TokenRequest {
	return storage.TokenRequest{
		Kind:          storage.KindAccessToken,
		Signature:     "sig-" + strconv.Itoa(i),
		RequestID:     "req-" + strconv.Itoa(i/2),
		ClientID:      "c-app",
		Subject:       "u-alice",
		RequestedAt:   time.Now(),
		GrantedScopes: []string{"openid", "profile"},
		Session:       []byte(`{"claims":{"sub":"u-alice"}}`),
		Active:        true,
		ExpiresAt:     time.Now().Add(time.Hour),
	}
}

// BenchmarkCreateToken measures one synced write per token, the cost of
// every token issued on the request path.
func BenchmarkCreateToken(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "provider.db"))
	defer s.Close()
	ctx := context.Background()
	i := 0
	for b.Loop() {
		if err := s.CreateToken(ctx, benchToken(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkGetToken(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "provider.db"))
	defer s.Close()
	ctx := context.Background()
	const n = 1000
	txCtx, err := s.BeginTx(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if err := s.CreateToken(txCtx, benchToken(i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.CommitTx(txCtx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.GetToken(ctx, storage.KindAccessToken, "sig-"+strconv.Itoa(i%n)); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkCreateTokenConcurrent is BenchmarkCreateToken with 16 writers
// per core, as under load: they share commits (batch.go).
func BenchmarkCreateTokenConcurrent(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "provider.db"))
	defer s.Close()
	ctx := context.Background()
	var next atomic.Int64
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.CreateToken(ctx, benchToken(int(next.Add(1)))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
