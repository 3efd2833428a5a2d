package bolt_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/smallsso/provider/storage"
)

// BenchmarkStore times each Store operation on its own, one caller at a
// time: reads from the mapped file, writes each with its own synced commit
// (BenchmarkCreateTokenConcurrent shows what sharing commits does).
// DeactivateToken and RevokeByRequestID each create the token they act on
// first, so they time two commits. The store holds 2,000 records of every
// kind first, all tokens of one subject (ListSubjectTokens lists them all).
func BenchmarkStore(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "provider.db"))
	defer s.Close()
	ctx := context.Background()
	const n = 2000
	txCtx, err := s.BeginTx(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		id := strconv.Itoa(i)
		must(b, s.CreateToken(txCtx, benchToken(i)))
		must(b, s.CreateUser(txCtx, storage.User{ID: "u-" + id, Username: "user" + id, Profile: storage.Profile{Email: "user" + id + "@example.org", Groups: []string{"staff"}}}))
		must(b, s.CreateClient(txCtx, storage.Client{ID: "c-" + id, ClientSettings: storage.ClientSettings{RedirectURIs: []string{"https://app.example/cb"}, Scopes: []string{"openid", "profile"}}}))
		must(b, s.CreateBrowserSession(txCtx, storage.BrowserSession{ID: "s-" + id, UserID: "u-" + id, SID: "sid-" + id, ExpiresAt: time.Now().Add(time.Hour)}))
		must(b, s.SaveConsent(txCtx, storage.Consent{UserID: "u-" + id, ClientID: "c-app", Scopes: []string{"openid"}}))
		must(b, s.CreateJTI(txCtx, storage.JTI{ID: "j-" + id, ExpiresAt: time.Now().Add(time.Hour)}, time.Now()))
	}
	must(b, s.CommitTx(txCtx))

	next := n // fresh keys for writes
	fresh := func() int { next++; return next }
	ops := []struct {
		name string
		op   func(i int) error
	}{
		{"GetToken", func(i int) error {
			_, err := s.GetToken(ctx, storage.KindAccessToken, "sig-"+strconv.Itoa(i%n))
			return err
		}},
		{"GetClient", func(i int) error { _, err := s.GetClient(ctx, "c-"+strconv.Itoa(i%n)); return err }},
		{"GetUser", func(i int) error { _, err := s.GetUser(ctx, "u-"+strconv.Itoa(i%n)); return err }},
		{"GetUserByUsername", func(i int) error { _, err := s.GetUserByUsername(ctx, "user"+strconv.Itoa(i%n)); return err }},
		{"GetBrowserSession", func(i int) error { _, err := s.GetBrowserSession(ctx, "s-"+strconv.Itoa(i%n)); return err }},
		{"GetConsent", func(i int) error { _, err := s.GetConsent(ctx, "u-"+strconv.Itoa(i%n), "c-app"); return err }},
		{"GetJTI", func(i int) error { _, err := s.GetJTI(ctx, "j-"+strconv.Itoa(i%n)); return err }},
		{"ListSubjectTokens", func(int) error { _, err := s.ListSubjectTokens(ctx, storage.KindAccessToken, "u-alice"); return err }},
		{"CreateToken", func(int) error { return s.CreateToken(ctx, benchToken(fresh())) }},
		{"DeactivateToken", func(int) error {
			i := fresh()
			if err := s.CreateToken(ctx, benchToken(i)); err != nil {
				return err
			}
			return s.DeactivateToken(ctx, storage.KindAccessToken, "sig-"+strconv.Itoa(i))
		}},
		{"RevokeByRequestID", func(int) error {
			i := fresh()
			if err := s.CreateToken(ctx, benchToken(i)); err != nil {
				return err
			}
			return s.RevokeByRequestID(ctx, storage.KindAccessToken, benchToken(i).RequestID)
		}},
		{"CreateJTI", func(int) error {
			return s.CreateJTI(ctx, storage.JTI{ID: "new-" + strconv.Itoa(fresh()), ExpiresAt: time.Now().Add(time.Hour)}, time.Now())
		}},
		{"UpdateUser", func(i int) error {
			return s.UpdateUser(ctx, "u-"+strconv.Itoa(i%n), func(u storage.User) (storage.User, error) {
				u.Name = "changed " + strconv.Itoa(i)
				return u, nil
			})
		}},
		{"UpdateBrowserSession", func(i int) error {
			return s.UpdateBrowserSession(ctx, "s-"+strconv.Itoa(i%n), func(bs storage.BrowserSession) (storage.BrowserSession, error) {
				bs.ClientIDs = []string{"c-" + strconv.Itoa(i)}
				return bs, nil
			})
		}},
		{"SaveConsent", func(i int) error {
			return s.SaveConsent(ctx, storage.Consent{UserID: "u-" + strconv.Itoa(i%n), ClientID: "c-app", Scopes: []string{"openid", strconv.Itoa(i)}})
		}},
	}
	for _, o := range ops {
		b.Run(o.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				if err := o.op(i); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
