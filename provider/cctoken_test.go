package provider_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/storage"
)

// A client-credentials token is sealed, not stored, and still behaves as
// a stored one: introspection answers for it, revocation ends it, a
// deleted client's token is inactive, and an edited one is nothing.
func TestSealedClientCredentialsTokens(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	cc := clientcredentials.Config{ClientID: "svc", ClientSecret: "svc-secret", TokenURL: ts.URL + "/token", Scopes: []string{"api:read"}}
	introspect := func(token string) map[string]any {
		t.Helper()
		status, _, body := postForm(t, ts.URL+"/introspect", url.Values{"token": {token}}, "svc", "svc-secret")
		if status != http.StatusOK {
			t.Fatalf("introspect: HTTP %d %v", status, body)
		}
		return body
	}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.AccessToken, "cct_") {
		t.Fatalf("token %q is not sealed", tok.AccessToken[:10])
	}
	for _, kind := range storage.TokenKinds {
		if recs, err := ts.Store.ListSubjectTokens(ctx, kind, "svc"); err != nil || len(recs) != 0 {
			t.Errorf("%s records of svc: %d, %v; want none stored", kind, len(recs), err)
		}
	}
	info := introspect(tok.AccessToken)
	if info["active"] != true || info["client_id"] != "svc" || info["scope"] != "api:read" || info["sub"] != "svc" {
		t.Errorf("introspection: %v", info)
	}
	if exp, _ := info["exp"].(float64); int64(exp) != tok.Expiry.Unix() && int64(exp) != tok.Expiry.Unix()+1 && int64(exp) != tok.Expiry.Unix()-1 {
		t.Errorf("introspection exp %v, token response expiry %v", info["exp"], tok.Expiry)
	}

	// Edited: one character of the sealed part changed.
	raw := []byte(tok.AccessToken)
	raw[len(raw)/2] ^= 1
	if info := introspect(string(raw)); info["active"] != false {
		t.Errorf("edited token: %v, want inactive", info)
	}
	// Another token of the same client stays active after the first is revoked.
	other, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	status, _, body := postForm(t, ts.URL+"/revoke", url.Values{"token": {tok.AccessToken}}, "svc", "svc-secret")
	if status != http.StatusOK {
		t.Fatalf("revoke: HTTP %d %v", status, body)
	}
	if info := introspect(tok.AccessToken); info["active"] != false {
		t.Errorf("revoked token: %v, want inactive", info)
	}
	if info := introspect(other.AccessToken); info["active"] != true {
		t.Errorf("the client's other token after a revocation: %v, want active", info)
	}
	// Another client cannot revoke it (RFC 7009 §2.1).
	status, _, _ = postForm(t, ts.URL+"/revoke", url.Values{"token": {other.AccessToken}}, "web", "web-secret")
	if info := introspect(other.AccessToken); info["active"] != true {
		t.Errorf("after another client's revocation (HTTP %d): %v, want active", status, info)
	}
	// Its client deleted, the token is nothing (web may introspect any
	// client's tokens).
	if info := ts.introspect(t, other.AccessToken); info["active"] != true {
		t.Fatalf("web introspecting svc's token: %v, want active", info)
	}
	if err := ts.Store.DeleteClient(ctx, "svc"); err != nil {
		t.Fatal(err)
	}
	status, _, body = postForm(t, ts.URL+"/introspect", url.Values{"token": {other.AccessToken}}, "web", "web-secret")
	if status != http.StatusOK || body["active"] != false {
		t.Errorf("token of a deleted client: HTTP %d %v, want inactive", status, body)
	}
}

// A client deleted and added again under the same ID does not get the old
// client's sealed tokens back.
func TestSealedTokenOfARecreatedClient(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	spec := clientspec.Spec{ID: "svc2", Secret: "svc2-secret-0123456789", ClientSettings: storage.ClientSettings{
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"api:read"},
	}}
	ts.addClient(t, spec)
	cc := clientcredentials.Config{ClientID: "svc2", ClientSecret: spec.Secret, TokenURL: ts.URL + "/token", Scopes: []string{"api:read"}}
	old, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info := ts.introspect(t, old.AccessToken); info["active"] != true {
		t.Fatalf("token before: %v", info)
	}
	if err := ts.Store.DeleteClient(ctx, "svc2"); err != nil {
		t.Fatal(err)
	}
	ts.addClient(t, spec)
	if info := ts.introspect(t, old.AccessToken); info["active"] != false {
		t.Errorf("the old client's token after the ID was registered again: %v, want inactive", info)
	}
	fresh, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info := ts.introspect(t, fresh.AccessToken); info["active"] != true {
		t.Errorf("the new client's token: %v, want active", info)
	}
}
