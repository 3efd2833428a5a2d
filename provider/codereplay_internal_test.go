package provider

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/bolt"
)

// The orders a code replay can take against the winner of a code
// exchange, played step by step through fosite's storage interfaces as
// fosite's handlers and codeClaimHandler call them (the HTTP race in
// TestCodeExchangeRace meets them at random). Either way the replay is
// told the code was used, and the winner's tokens do not survive it. A
// replay may pass the check (the code is not claimed yet) and lose the
// claim, or be stopped at the check.
func TestCodeReplayOrders(t *testing.T) {
	t.Parallel()
	for _, replayFirst := range []bool{true, false} {
		name := "replay before the winner stores its tokens"
		if !replayFirst {
			name = "replay after the winner stored its tokens"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st, err := bolt.Open(filepath.Join(t.TempDir(), "p.db"), bolt.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			if err := st.CreateClient(ctx, storage.Client{ID: "c"}); err != nil {
				t.Fatal(err)
			}
			s := &fositeStore{store: st, now: time.Now, codeRetention: time.Hour}
			req := fosite.NewRequest()
			req.ID, req.Client, req.Session = "grant-1", &fosite.DefaultClient{ID: "c"}, newSession()
			req.Session.SetExpiresAt(fosite.AuthorizeCode, time.Now().Add(time.Minute))
			if err := s.CreateAuthorizeCodeSession(ctx, "code", req); err != nil {
				t.Fatal(err)
			}

			// Both check the request (fosite's NewAccessRequest), the
			// replay perhaps before the winner claims; one claims.
			if _, err := s.GetAuthorizeCodeSession(ctx, "code", newSession()); err != nil {
				t.Fatalf("winner's check: %v", err)
			}
			// The replay checked before the claim: it passes the check.
			if _, err := s.GetAuthorizeCodeSession(ctx, "code", newSession()); err != nil {
				t.Fatalf("replay's check before the claim: %v", err)
			}
			if err := s.claimAuthorizeCode(ctx, "code"); err != nil {
				t.Fatalf("winner's claim: %v", err)
			}
			replay := func() {
				t.Helper()
				// The replay that passed the check loses the claim, and
				// revokes the code's tokens itself.
				if err := s.claimAuthorizeCode(ctx, "code"); !errors.Is(err, fosite.ErrInvalidGrant) {
					t.Fatalf("replay's claim: %v, want invalid_grant", err)
				}
				// A replay checked after the claim is stopped there.
				r, err := s.GetAuthorizeCodeSession(ctx, "code", newSession())
				if !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) || r == nil || r.GetID() != "grant-1" {
					t.Fatalf("replay's check: %v, %v; want the request and ErrInvalidatedAuthorizeCode", r, err)
				}
				// What fosite does next.
				if err := s.RevokeAccessToken(ctx, r.GetID()); err != nil {
					t.Fatal(err)
				}
				if err := s.RevokeRefreshToken(ctx, r.GetID()); err != nil {
					t.Fatal(err)
				}
			}
			if replayFirst {
				replay()
			}
			// The winner issues its tokens (fosite's NewAccessResponse).
			issuing := context.WithValue(ctx, fosite.AccessResponseContextKey, fosite.NewAccessResponse())
			if _, err := s.GetAuthorizeCodeSession(issuing, "code", newSession()); err != nil {
				t.Fatalf("winner's issue: %v", err)
			}
			tx, err := s.BeginTX(issuing)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.InvalidateAuthorizeCodeSession(tx, "code"); err != nil {
				t.Fatalf("invalidate: %v", err)
			}
			if err := s.CreateAccessTokenSession(tx, "at", req); err != nil {
				t.Fatal(err)
			}
			if err := s.CreateRefreshTokenSession(tx, "rt", "at", req); err != nil {
				t.Fatal(err)
			}
			if err := s.Commit(tx); err != nil {
				t.Fatalf("commit: %v", err)
			}
			if !replayFirst {
				replay()
			}
			if _, err := s.GetAccessTokenSession(ctx, "at", newSession()); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("winner's access token: %v, want not found", err)
			}
			if _, err := s.GetRefreshTokenSession(ctx, "rt", newSession()); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("winner's refresh token: %v, want not found", err)
			}
		})
	}
}
