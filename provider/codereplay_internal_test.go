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
// fosite's handlers and handleToken call them (the HTTP race in
// TestCodeExchangeRace meets them at random). Either way the replay is
// told the code was used, and the winner's tokens do not survive it. A
// replay may pass the check (the code is not claimed yet) and lose the
// claim in its token transaction, or be stopped at the check.
func TestCodeReplayOrders(t *testing.T) {
	t.Parallel()
	for _, replayChecksFirst := range []bool{true, false} {
		name := "replay checked before the winner's transaction"
		if !replayChecksFirst {
			name = "replay checked after the winner's transaction"
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
			s := &fositeStore{store: st, now: time.Now, accessLifespan: time.Hour}
			req := fosite.NewRequest()
			req.ID, req.Client, req.Session = "grant-1", &fosite.DefaultClient{ID: "c"}, newSession()
			req.Session.SetExpiresAt(fosite.AuthorizeCode, time.Now().Add(time.Minute))
			if err := s.CreateAuthorizeCodeSession(ctx, "code", req); err != nil {
				t.Fatal(err)
			}
			issuing := context.WithValue(ctx, fosite.AccessResponseContextKey, fosite.NewAccessResponse())
			// issue is fosite's NewAccessResponse: read the code, then
			// claim it and store the tokens in one transaction.
			issue := func(ctx context.Context, at, rt string) error {
				if _, err := s.GetAuthorizeCodeSession(ctx, "code", newSession()); err != nil {
					t.Fatalf("issue: read: %v", err)
				}
				tx, err := s.BeginTX(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.InvalidateAuthorizeCodeSession(tx, "code"); err != nil {
					if rerr := s.Rollback(tx); rerr != nil {
						t.Fatal(rerr)
					}
					return err
				}
				if err := s.CreateAccessTokenSession(tx, at, req); err != nil {
					t.Fatal(err)
				}
				if err := s.CreateRefreshTokenSession(tx, rt, at, req); err != nil {
					t.Fatal(err)
				}
				return s.Commit(tx)
			}

			// The winner passes the check (fosite's NewAccessRequest).
			if _, err := s.GetAuthorizeCodeSession(ctx, "code", newSession()); err != nil {
				t.Fatalf("winner's check: %v", err)
			}
			if replayChecksFirst {
				// The replay passes the check too, and loses the claim.
				if _, err := s.GetAuthorizeCodeSession(ctx, "code", newSession()); err != nil {
					t.Fatalf("replay's check: %v", err)
				}
				if err := issue(issuing, "at", "rt"); err != nil {
					t.Fatalf("winner's transaction: %v", err)
				}
				replayCtx, claim := withGrantState(issuing)
				if err := issue(replayCtx, "at-2", "rt-2"); !errors.Is(err, fosite.ErrInvalidGrant) || !claim.lost || claim.requestID != "grant-1" {
					t.Fatalf("replay's transaction: %v, claim %+v; want invalid_grant and the claim lost", err, claim)
				}
				// What handleToken does next.
				if err := s.revokeCodeGrant(ctx, claim.requestID); err != nil {
					t.Fatal(err)
				}
				if _, err := s.GetAccessTokenSession(ctx, "at-2", newSession()); !errors.Is(err, fosite.ErrNotFound) {
					t.Errorf("the replay's access token: %v, want never stored", err)
				}
			} else {
				if err := issue(issuing, "at", "rt"); err != nil {
					t.Fatalf("winner's transaction: %v", err)
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
			if _, err := s.GetAccessTokenSession(ctx, "at", newSession()); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("winner's access token: %v, want not found", err)
			}
			if _, err := s.GetRefreshTokenSession(ctx, "rt", newSession()); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("winner's refresh token: %v, want not found", err)
			}
		})
	}
}
