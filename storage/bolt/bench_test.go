package bolt_test

import (
	"context"
	"fmt"
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

// seedOthers stores n refresh tokens of n/2 other subjects, for c-app and
// another client, in one transaction.
func seedOthers(b *testing.B, s storage.Store, n int) {
	b.Helper()
	ctx := context.Background()
	txCtx, err := s.BeginTx(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		r := benchToken(i)
		r.Kind = storage.KindRefreshToken
		r.Subject = "u-" + strconv.Itoa(i/2)
		r.ClientID = []string{"c-app", "c-other"}[i%2]
		if err := s.CreateToken(txCtx, r); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.CommitTx(txCtx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRevokeSubjectClient revokes one person's tokens for one client
// (a code, an access and a refresh token) among others' tokens: the cost
// must not grow with the others. It runs in a transaction that is rolled
// back, so it measures the work and not the commit's fsync (one, the same
// whatever the size, and noisy on a shared disk).
func BenchmarkRevokeSubjectClient(b *testing.B) {
	for _, others := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("others=%dk", others/1000), func(b *testing.B) {
			s := open(b, filepath.Join(b.TempDir(), "provider.db"))
			defer s.Close()
			ctx := context.Background()
			seedOthers(b, s, others)
			for i, kind := range []storage.TokenKind{storage.KindAuthorizeCode, storage.KindAccessToken, storage.KindRefreshToken} {
				r := benchToken(i)
				r.Kind, r.Subject, r.Signature = kind, "alice", "alice-"+strconv.Itoa(i)
				if err := s.CreateToken(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				txCtx, err := s.BeginTx(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.RevokeSubjectClient(txCtx, "alice", "c-app"); err != nil {
					b.Fatal(err)
				}
				if got, err := s.ListSubjectTokens(txCtx, storage.KindRefreshToken, "alice"); err != nil || len(got) != 0 {
					b.Fatalf("alice's refresh tokens after revoking: %d, %v", len(got), err)
				}
				if err := s.RollbackTx(txCtx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkListSubjectTokens lists one person's refresh tokens (two) among
// others' tokens, as a password change or a logout does.
func BenchmarkListSubjectTokens(b *testing.B) {
	for _, others := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("others=%dk", others/1000), func(b *testing.B) {
			s := open(b, filepath.Join(b.TempDir(), "provider.db"))
			defer s.Close()
			ctx := context.Background()
			seedOthers(b, s, others)
			for b.Loop() {
				got, err := s.ListSubjectTokens(ctx, storage.KindRefreshToken, "u-42")
				if err != nil || len(got) != 2 {
					b.Fatalf("u-42's refresh tokens: %d, %v; want 2", len(got), err)
				}
			}
		})
	}
}
