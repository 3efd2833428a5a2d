package provider_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider/providertest"
	"github.com/smallsso/provider/storage"
)

// tokenSignature is the part of an opaque token that keys its record.
func tokenSignature(token string) string { return token[strings.LastIndex(token, ".")+1:] }

// What real grants store: compact records that still carry what
// introspection, refresh and revocation read. Access and refresh records
// keep their expiry (in the record, for the garbage collector, and in the
// session, for introspection's exp), no form and no JSON session.
func TestStoredTokenRecords(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	rp := newRP(t, ts, "web", "web-secret", webRedirect, "openid", "profile", "email", "groups", "offline_access")
	f := rp.authorize(t, providertest.NewBrowser(ts.URL), alicePass, "allow")
	code := f.code(t, ts.URL)
	tok, err := rp.oauth2.Exchange(ctx, code, oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	codeRec, err := ts.Store.GetToken(ctx, storage.KindAuthorizeCode, tokenSignature(code))
	if err != nil {
		t.Fatal(err)
	}
	if codeRec.Form["redirect_uri"] == nil || codeRec.Active {
		t.Errorf("redeemed code record: form %v, active %v; want its redirect_uri kept, inactive", codeRec.Form, codeRec.Active)
	}

	check := func(what string, kind storage.TokenKind, token string, wantSubject string) {
		t.Helper()
		rec, err := ts.Store.GetToken(ctx, kind, tokenSignature(token))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if rec.Subject != wantSubject || rec.ExpiresAt.IsZero() || !rec.ExpiresAt.After(time.Now()) {
			t.Errorf("%s: subject %q, expires %v", what, rec.Subject, rec.ExpiresAt)
		}
		if len(rec.Form) != 0 || rec.AccessSignature != "" {
			t.Errorf("%s: form %v, access signature %q: want neither", what, rec.Form, rec.AccessSignature)
		}
		if len(rec.Session) == 0 || rec.Session[0] == '{' {
			t.Errorf("%s: session %.30q…, want the compact form", what, rec.Session)
		}
		if rec.RequestedAt.Nanosecond() != 0 {
			t.Errorf("%s: requested at %v, want whole seconds", what, rec.RequestedAt)
		}
		if kind != storage.KindAccessToken {
			return
		}
		in := ts.introspect(t, token)
		if in["active"] != true || in["sub"] != wantSubject || int64(in["exp"].(float64)) != rec.ExpiresAt.Unix() ||
			int64(in["iat"].(float64)) != rec.RequestedAt.Unix() {
			t.Errorf("%s: introspection %v, record expires %v", what, in, rec.ExpiresAt)
		}
	}
	check("first access token", storage.KindAccessToken, tok.AccessToken, ts.alice.ID)
	check("first refresh token", storage.KindRefreshToken, tok.RefreshToken, ts.alice.ID)

	status, fresh := ts.refresh(t, tok.RefreshToken)
	if status != 200 {
		t.Fatalf("refresh: HTTP %d %v", status, fresh)
	}
	check("refreshed access token", storage.KindAccessToken, fresh["access_token"].(string), ts.alice.ID)
	check("rotated refresh token", storage.KindRefreshToken, fresh["refresh_token"].(string), ts.alice.ID)
	// A refresh of the refreshed grant still carries the ID token claims.
	status, again := ts.refresh(t, fresh["refresh_token"].(string))
	if status != 200 {
		t.Fatalf("second refresh: HTTP %d %v", status, again)
	}
	idt, err := rp.verifier.Verify(ctx, again["id_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Email  string   `json:"email"`
		Groups []string `json:"groups"`
		SID    string   `json:"sid"`
		AMR    []string `json:"amr"`
		Auth   int64    `json:"auth_time"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != ts.alice.ID || claims.Email != "alice@example.org" || len(claims.Groups) != 2 || claims.SID == "" || len(claims.AMR) != 1 || claims.Auth == 0 {
		t.Errorf("ID token of the second refresh: sub %q, claims %+v", idt.Subject, claims)
	}

	// Client-credentials tokens are sealed, not stored: see
	// TestSealedClientCredentialsTokens.
}
