package postgres_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smallsso/provider/storage"
)

// benchToken is a token record of the size the provider writes.
func benchToken(sig string) storage.TokenRequest {
	return storage.TokenRequest{
		Kind: storage.KindRefreshToken, Signature: sig, RequestID: "req-" + sig, ClientID: "c-app",
		Subject: "u-alice", RequestedAt: time.Now().UTC(), Scopes: []string{"openid", "offline_access"},
		GrantedScopes: []string{"openid", "offline_access"}, Audience: []string{"c-app"},
		Form:    map[string][]string{"grant_type": {"authorization_code"}, "redirect_uri": {"https://app.example/cb"}},
		Session: make([]byte, 600), Active: true, ExpiresAt: time.Now().Add(time.Hour),
	}
}

// BenchmarkCreateToken stores a token per operation, from as many
// goroutines as GOMAXPROCS (the pool's default size).
func BenchmarkCreateToken(b *testing.B) {
	s, _ := openFresh(b)
	defer s.Close()
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.CreateToken(b.Context(), benchToken(fmt.Sprintf("sig-%d", n.Add(1)))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkDeactivate is the rotation's claim: one UPDATE ... WHERE
// active per operation, on tokens stored beforehand.
func BenchmarkDeactivate(b *testing.B) {
	s, _ := openFresh(b)
	defer s.Close()
	ctx := b.Context()
	txCtx, err := s.BeginTx(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for i := range b.N {
		if err := s.CreateToken(txCtx, benchToken(fmt.Sprintf("sig-%d", i))); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.CommitTx(txCtx); err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.DeactivateToken(ctx, storage.KindRefreshToken, fmt.Sprintf("sig-%d", n.Add(1)-1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
