package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/bolt"
)

// conflictStore is a Store whose writes lose a race with another
// replica's (storage.ErrConflict), as a PostgreSQL deadlock makes them.
type conflictStore struct{ storage.Store }

var errRaced = fmt.Errorf("postgres: deactivate token: %w", storage.ErrConflict)

func (conflictStore) DeactivateToken(context.Context, storage.TokenKind, string) error {
	return errRaced
}
func (conflictStore) CreateToken(context.Context, storage.TokenRequest) error { return errRaced }

// TestConflictAnswers: a write that lost to a concurrent one is never a
// 500. Claiming a code answers invalid_grant (a lost race), rotating a
// refresh token answers as a lost rotation does, anything else is 503
// temporarily_unavailable with Retry-After.
func TestConflictAnswers(t *testing.T) {
	t.Parallel()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "p.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := &fositeStore{store: conflictStore{st}, now: time.Now, accessLifespan: time.Hour}

	ctx, g := withGrantState(context.Background())
	err = s.InvalidateAuthorizeCodeSession(ctx, "code")
	if rfc := fosite.ErrorToRFC6749Error(err); rfc.ErrorField != "invalid_grant" || !g.lost || g.requestID != "" {
		t.Errorf("code claim that met a conflict: %v (lost %v, family %q); want invalid_grant, lost, no family to revoke", err, g.lost, g.requestID)
	}

	err = s.RotateRefreshToken(context.Background(), "grant-1", "rt")
	if !errors.Is(err, fosite.ErrInactiveToken) || !errors.Is(err, storage.ErrConflict) {
		t.Errorf("rotation that met a conflict: %v; want the lost rotation's ErrInactiveToken", err)
	}

	req := fosite.NewRequest()
	req.ID, req.Client, req.Session = "grant-1", &fosite.DefaultClient{ID: "c"}, newSession()
	err = s.CreateAccessTokenSession(context.Background(), "at", req)
	if rfc := fosite.ErrorToRFC6749Error(err); rfc.CodeField != 503 || rfc.ErrorField != "temporarily_unavailable" || !errors.Is(err, storage.ErrConflict) {
		t.Errorf("store that met a conflict: %v (HTTP %d); want 503 temporarily_unavailable", err, rfc.CodeField)
	}
	// fosite wraps storage errors in server_error; the token endpoint
	// unwraps a conflict into 503 again.
	w := httptest.NewRecorder()
	err = storageUnavailable(w, fosite.ErrServerError.WithWrap(err))
	if rfc := fosite.ErrorToRFC6749Error(err); rfc.CodeField != 503 || w.Header().Get("Retry-After") == "" {
		t.Errorf("token endpoint answer to a conflict: %v (HTTP %d, Retry-After %q)", err, rfc.CodeField, w.Header().Get("Retry-After"))
	}
}
