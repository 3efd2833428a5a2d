package provider_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/smallsso/provider/provider/admin"
	"github.com/smallsso/provider/provider/providertest"
)

// The whole life of a confidential client's grant, as a relying party sees
// it: code + PKCE → tokens → verified ID token → userinfo → refresh with
// rotation → reuse detection → revocation → introspection.
func TestAuthorizationCodeFlowEndToEnd(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	rp := newRP(t, ts, "web", "web-secret", webRedirect, "openid", "profile", "email", "groups", "offline_access")
	b := providertest.NewBrowser(ts.URL)

	f := rp.authorize(t, b, alicePass, "allow")
	tok, err := rp.oauth2.Exchange(ctx, f.code(t, ts.URL), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token although offline_access was granted")
	}

	// ID token: signature against the JWKS, iss, aud, exp (go-oidc), then
	// nonce, at_hash, auth_time and claims.
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	if idt.Nonce != f.nonce {
		t.Errorf("nonce = %q, want %q", idt.Nonce, f.nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	var claims struct {
		AuthTime      int64    `json:"auth_time"`
		Email         string   `json:"email"`
		EmailVerified bool     `json:"email_verified"`
		Name          string   `json:"name"`
		Username      string   `json:"preferred_username"`
		Groups        []string `json:"groups"`
		AtHash        string   `json:"at_hash"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.AuthTime == 0 || claims.AtHash == "" {
		t.Errorf("auth_time = %d, at_hash = %q: both must be set", claims.AuthTime, claims.AtHash)
	}
	if idt.Subject != ts.alice.ID || idt.Subject == "alice" {
		t.Errorf("sub = %q, want the stable ID %q (never the username)", idt.Subject, ts.alice.ID)
	}
	if claims.Email != "alice@example.org" || !claims.EmailVerified || claims.Name != "Alice Liddell" || claims.Username != "alice" || strings.Join(claims.Groups, ",") != "admins,staff" {
		t.Errorf("ID token claims = %+v", claims)
	}

	// Userinfo with the access token.
	ui, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if ui.Subject != idt.Subject || ui.Email != "alice@example.org" {
		t.Errorf("userinfo sub=%q email=%q", ui.Subject, ui.Email)
	}

	// Refresh rotates: a new refresh token, and the old one is retired.
	status, fresh := ts.refresh(t, tok.RefreshToken)
	if status != http.StatusOK {
		t.Fatalf("refresh: HTTP %d %v", status, fresh)
	}
	newRefresh, _ := fresh["refresh_token"].(string)
	newAccess, _ := fresh["access_token"].(string)
	if newRefresh == "" || newRefresh == tok.RefreshToken || newAccess == "" {
		t.Fatalf("refresh did not rotate: %v", fresh)
	}
	if _, ok := fresh["id_token"].(string); !ok {
		t.Error("refresh response has no id_token (OIDC Core §12.2)")
	}
	if ts.introspect(t, tok.AccessToken)["active"] != false {
		t.Error("the access token of the rotated refresh token is still active")
	}
	if ts.introspect(t, newAccess)["active"] != true {
		t.Error("the new access token is not active")
	}

	// Reusing the old refresh token fails and revokes the whole family.
	status, body := ts.refresh(t, tok.RefreshToken)
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("reuse of a rotated refresh token: HTTP %d %v, want 400 invalid_grant", status, body)
	}
	if status, body := ts.refresh(t, newRefresh); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("after reuse, the newest refresh token still works: HTTP %d %v", status, body)
	}
	if ts.introspect(t, newAccess)["active"] != false {
		t.Error("after reuse, the newest access token is still active")
	}

	// A second grant (consent remembered: no consent page) for revocation.
	f2 := rp.authorize(t, b, alicePass, "")
	tok2, err := rp.oauth2.Exchange(ctx, f2.code(t, ts.URL), oauth2.VerifierOption(f2.verifier))
	if err != nil {
		t.Fatalf("second exchange: %v", err)
	}
	intro := ts.introspect(t, tok2.AccessToken)
	if intro["active"] != true || intro["client_id"] != "web" || intro["sub"] != ts.alice.ID {
		t.Fatalf("introspection of a fresh token = %v", intro)
	}
	if s, _, body := postForm(t, ts.URL+"/revoke", url.Values{"token": {tok2.AccessToken}}, "web", "web-secret"); s != http.StatusOK {
		t.Fatalf("revoke: HTTP %d %v", s, body)
	}
	if ts.introspect(t, tok2.AccessToken)["active"] != false {
		t.Error("revoked access token is still active")
	}
	if _, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok2)); err == nil {
		t.Error("userinfo accepted a revoked access token")
	}
	// Revoking the refresh token ends the rest of the grant.
	if s, _, _ := postForm(t, ts.URL+"/revoke", url.Values{"token": {tok2.RefreshToken}, "token_type_hint": {"refresh_token"}}, "web", "web-secret"); s != http.StatusOK {
		t.Fatalf("revoke refresh: HTTP %d", s)
	}
	if status, _ := ts.refresh(t, tok2.RefreshToken); status == http.StatusOK {
		t.Error("revoked refresh token still works")
	}
}

// An authorization code is single-use; a second use fails and revokes the
// tokens the first use issued (RFC 6749 §4.1.2, RFC 9700 §4.2.4).
func TestAuthorizationCodeReuseRevokesTokens(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rp := newRP(t, ts, "web", "web-secret", webRedirect, "openid", "offline_access")
	f := rp.authorize(t, providertest.NewBrowser(ts.URL), alicePass, "allow")
	code := f.code(t, ts.URL)
	tok, err := rp.oauth2.Exchange(context.Background(), code, oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatal(err)
	}
	_, err = rp.oauth2.Exchange(context.Background(), code, oauth2.VerifierOption(f.verifier))
	var re *oauth2.RetrieveError
	if !asRetrieveError(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("second use of a code: %v, want invalid_grant", err)
	}
	if ts.introspect(t, tok.AccessToken)["active"] != false {
		t.Error("access token from the first use is still active")
	}
	if status, _ := ts.refresh(t, tok.RefreshToken); status == http.StatusOK {
		t.Error("refresh token from the first use still works")
	}
}

func TestClientCredentials(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	cc := clientcredentials.Config{ClientID: "svc", ClientSecret: "svc-secret", TokenURL: ts.URL + "/token", Scopes: []string{"api:read"}}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatalf("client_credentials: %v", err)
	}
	if tok.RefreshToken != "" {
		t.Error("client_credentials must not issue a refresh token")
	}
	status, _, intro := postForm(t, ts.URL+"/introspect", url.Values{"token": {tok.AccessToken}}, "svc", "svc-secret")
	if status != http.StatusOK || intro["active"] != true || intro["scope"] != "api:read" || intro["client_id"] != "svc" {
		t.Errorf("introspection: HTTP %d %v", status, intro)
	}

	// Many token requests reuse the verified secret (no full hash each time);
	// they must all still succeed.
	for i := 0; i < 5; i++ {
		if _, err := cc.Token(ctx); err != nil {
			t.Fatalf("repeat %d: %v", i, err)
		}
	}

	t.Run("introspection needs client authentication", func(t *testing.T) {
		status, _, body := postForm(t, ts.URL+"/introspect", url.Values{"token": {tok.AccessToken}}, "", "")
		if status != http.StatusUnauthorized || body["active"] != nil {
			t.Fatalf("unauthenticated introspection: HTTP %d %v, want 401 without an answer", status, body)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		bad := cc
		bad.ClientSecret = "not-the-secret"
		_, err := bad.Token(ctx)
		var re *oauth2.RetrieveError
		if !asRetrieveError(err, &re) || re.ErrorCode != "invalid_client" || re.Response.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong secret: %v, want 401 invalid_client", err)
		}
	})
	t.Run("scope not allowed", func(t *testing.T) {
		bad := cc
		bad.Scopes = []string{"admin"}
		_, err := bad.Token(ctx)
		var re *oauth2.RetrieveError
		if !asRetrieveError(err, &re) || re.ErrorCode != "invalid_scope" {
			t.Fatalf("unknown scope: %v, want invalid_scope", err)
		}
	})
	t.Run("grant not allowed for client", func(t *testing.T) {
		status, _, body := postForm(t, ts.URL+"/token", url.Values{"grant_type": {"client_credentials"}}, "web", "web-secret")
		if status != http.StatusBadRequest || body["error"] != "unauthorized_client" {
			t.Fatalf("web using client_credentials: HTTP %d %v", status, body)
		}
	})
}

func TestWrongRedirectURIShowsPageAndNeverRedirects(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rp := newRP(t, ts, "web", "web-secret", "http://127.0.0.1:5555/other", "openid")
	page, err := providertest.NewBrowser(ts.URL).Get(context.Background(), rp.oauth2.AuthCodeURL("some-state-123", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil {
		t.Fatal(err)
	}
	if page.Location != nil || page.Status != http.StatusBadRequest {
		t.Fatalf("HTTP %d, Location %v: want 400 and no redirect", page.Status, page.Location)
	}
	if !strings.Contains(page.Body, "invalid_request") || !strings.Contains(page.Header.Get("Content-Type"), "text/html") {
		t.Errorf("want an HTML page naming the error, got %s", page.Body)
	}
}

func TestDenyAtConsentSendsAccessDenied(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rp := newRP(t, ts, "web", "web-secret", webRedirect, "openid", "email")
	f := rp.authorize(t, providertest.NewBrowser(ts.URL), alicePass, "deny")
	q := f.redirect.Query()
	if q.Get("error") != "access_denied" || q.Get("state") != f.state || q.Get("code") != "" || q.Get("iss") != ts.URL {
		t.Fatalf("deny redirected with %v, want access_denied with state and iss (RFC 9207)", q)
	}
}

func TestLoginWithWrongPasswordShowsFormAgain(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rp := newRP(t, ts, "web", "web-secret", webRedirect, "openid")
	b := providertest.NewBrowser(ts.URL)
	ctx := context.Background()
	page, err := b.Get(ctx, rp.oauth2.AuthCodeURL("state-123456", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil {
		t.Fatal(err)
	}
	form, err := page.ParseForm()
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"alice", "nobody"} {
		again, err := b.Submit(ctx, page, form, url.Values{"username": {user}, "password": {"wrong"}})
		if err != nil {
			t.Fatal(err)
		}
		if again.Status != http.StatusUnauthorized || !strings.Contains(again.Body, "Incorrect username or password.") {
			t.Errorf("user %q with a wrong password: HTTP %d %s", user, again.Status, again.Body)
		}
		if _, err := again.ParseForm(); err != nil {
			t.Errorf("the login form is not shown again: %v", err)
		}
	}
}

func TestPublicClientNeedsPKCE(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rp := newRP(t, ts, "spa", "", spaRedirect, "openid", "profile", "offline_access")
	ctx := context.Background()
	b := providertest.NewBrowser(ts.URL)

	page, err := b.Get(ctx, rp.oauth2.AuthCodeURL("state-without-pkce"))
	if err != nil {
		t.Fatal(err)
	}
	if page.Location == nil || page.Location.Query().Get("error") != "invalid_request" {
		t.Fatalf("public client without PKCE: HTTP %d %v, want an invalid_request redirect", page.Status, page.Location)
	}

	page, err = b.Get(ctx, rp.oauth2.AuthCodeURL("state-plain-pkce", oauth2.SetAuthURLParam("code_challenge", strings.Repeat("a", 43)), oauth2.SetAuthURLParam("code_challenge_method", "plain")))
	if err != nil {
		t.Fatal(err)
	}
	if page.Location == nil || page.Location.Query().Get("error") == "" {
		t.Fatalf("plain PKCE: HTTP %d %v, want an error redirect", page.Status, page.Location)
	}

	// With S256 the public client completes the flow without a secret.
	f := rp.authorize(t, b, alicePass, "allow")
	tok, err := rp.oauth2.Exchange(ctx, f.code(t, ts.URL), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatalf("public client exchange: %v", err)
	}
	if _, err := rp.verifier.Verify(ctx, tok.Extra("id_token").(string)); err != nil {
		t.Fatal(err)
	}
	// A wrong verifier is refused.
	f2 := rp.authorize(t, b, alicePass, "allow")
	_, err = rp.oauth2.Exchange(ctx, f2.code(t, ts.URL), oauth2.VerifierOption(oauth2.GenerateVerifier()))
	var re *oauth2.RetrieveError
	if !asRetrieveError(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("wrong code_verifier: %v, want invalid_grant", err)
	}
}

func TestPromptNoneAndPromptLogin(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rp := newRP(t, ts, "web", "web-secret", webRedirect, "openid")
	ctx := context.Background()
	b := providertest.NewBrowser(ts.URL)
	none := oauth2.SetAuthURLParam("prompt", "none")

	page, err := b.Get(ctx, rp.oauth2.AuthCodeURL("state-none-1", none, oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil {
		t.Fatal(err)
	}
	if page.Location == nil || page.Location.Query().Get("error") != "login_required" || page.Location.Query().Get("iss") != ts.URL {
		t.Fatalf("prompt=none without a session: %v, want login_required with iss", page.Location)
	}

	rp.authorize(t, b, alicePass, "allow") // signs in and remembers consent
	f := rp.authorize(t, b, "", "", none)  // no form may be shown
	f.code(t, ts.URL)

	// prompt=login shows the login form although a session exists.
	page, err = b.Get(ctx, rp.oauth2.AuthCodeURL("state-login-1", oauth2.SetAuthURLParam("prompt", "login"), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil {
		t.Fatal(err)
	}
	if form, err := page.ParseForm(); err != nil || !form.Values.Has("password") {
		t.Fatalf("prompt=login did not show the login form: %v", err)
	}
}

func TestUserinfoErrors(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/userinfo", nil)
	status, h, _ := doJSON(t, req)
	if status != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") || strings.Contains(h.Get("WWW-Authenticate"), "error=") {
		t.Errorf("no token: HTTP %d, WWW-Authenticate %q", status, h.Get("WWW-Authenticate"))
	}
	req, _ = http.NewRequest(http.MethodGet, ts.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer not-a-token")
	status, h, body := doJSON(t, req)
	if status != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) || body["error"] != "invalid_token" {
		t.Errorf("bad token: HTTP %d, WWW-Authenticate %q, %v", status, h.Get("WWW-Authenticate"), body)
	}

	// A client-credentials token has no user and no openid scope.
	cc := clientcredentials.Config{ClientID: "svc", ClientSecret: "svc-secret", TokenURL: ts.URL + "/token"}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	status, h, _ = postForm(t, ts.URL+"/userinfo", url.Values{"access_token": {tok.AccessToken}}, "", "")
	if status != http.StatusForbidden || !strings.Contains(h.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Errorf("token without openid: HTTP %d %q", status, h.Get("WWW-Authenticate"))
	}
}

// Userinfo accepts the token in a POST body as well as the header.
func TestUserinfoPostBody(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rp := newRP(t, ts, "web", "web-secret", webRedirect, "openid", "email")
	f := rp.authorize(t, providertest.NewBrowser(ts.URL), alicePass, "allow")
	tok, err := rp.oauth2.Exchange(context.Background(), f.code(t, ts.URL), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatal(err)
	}
	status, _, body := postForm(t, ts.URL+"/userinfo", url.Values{"access_token": {tok.AccessToken}}, "", "")
	if status != http.StatusOK || body["sub"] != ts.alice.ID || body["email"] != "alice@example.org" || body["name"] != nil {
		t.Errorf("POST userinfo: HTTP %d %v (name must be absent without the profile scope)", status, body)
	}
}

// Malformed protocol requests get RFC 6749 error JSON, never a 500.
func TestMalformedTokenRequests(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	cases := []struct {
		name       string
		form       url.Values
		user, pass string
		status     int
		code       string
	}{
		{"no grant type", url.Values{}, "web", "web-secret", 400, "invalid_request"},
		{"unknown grant type", url.Values{"grant_type": {"magic"}}, "web", "web-secret", 400, "unsupported_grant_type"},
		{"password grant not enabled for the client", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePass}}, "web", "web-secret", 400, "unauthorized_client"},
		{"garbage code", url.Values{"grant_type": {"authorization_code"}, "code": {"garbage"}, "redirect_uri": {webRedirect}}, "web", "web-secret", 400, "invalid_grant"},
		{"garbage refresh token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x.y"}}, "web", "web-secret", 400, "invalid_grant"},
		{"unknown client", url.Values{"grant_type": {"client_credentials"}}, "nobody", "x", 401, "invalid_client"},
		{"no client authentication", url.Values{"grant_type": {"client_credentials"}}, "", "", 401, "invalid_client"},
		// A basic client may use post (clientauth_test.go); a public one has no secret to send.
		{"public client sending a secret", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "client_id": {"spa"}, "client_secret": {"spa-secret"}}, "", "", 401, "invalid_client"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, h, body := postForm(t, ts.URL+"/token", c.form, c.user, c.pass)
			if status != c.status || body["error"] != c.code {
				t.Errorf("HTTP %d %v, want %d %s", status, body, c.status, c.code)
			}
			if !strings.HasPrefix(h.Get("Content-Type"), "application/json") || h.Get("Cache-Control") != "no-store" {
				t.Errorf("headers: %v", h)
			}
			if d, _ := body["error_description"].(string); strings.Contains(d, ".go") || strings.Contains(d, "goroutine") {
				t.Errorf("description leaks internals: %q", d)
			}
		})
	}
}

// client_secret_post works for a client registered with it.
func TestClientSecretPost(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rp := newRP(t, ts, "post", "post-secret", webRedirect, "openid")
	rp.oauth2.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	f := rp.authorize(t, providertest.NewBrowser(ts.URL), alicePass, "allow")
	if _, err := rp.oauth2.Exchange(context.Background(), f.code(t, ts.URL), oauth2.VerifierOption(f.verifier)); err != nil {
		t.Fatalf("client_secret_post exchange: %v", err)
	}
}

func TestDiscoveryAndJWKS(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		status, _, doc := doJSON(t, req)
		if status != http.StatusOK || doc["issuer"] != ts.URL || doc["token_endpoint"] != ts.URL+"/token" {
			t.Fatalf("%s: HTTP %d %v", path, status, doc)
		}
		if got := doc["code_challenge_methods_supported"]; len(got.([]any)) != 1 || got.([]any)[0] != "S256" {
			t.Errorf("code_challenge_methods_supported = %v, want [S256]", got)
		}
		if got := doc["response_types_supported"]; len(got.([]any)) != 6 || got.([]any)[0] != "code" {
			t.Errorf("response_types_supported = %v, want code first and the implicit and hybrid ones", got)
		}
		wantGrants := []any{"authorization_code", "refresh_token", "client_credentials", "password", grantJWTBearer, "implicit"}
		if got, _ := doc["grant_types_supported"].([]any); !slices.Equal(got, wantGrants) {
			t.Errorf("grant_types_supported = %v, want %v", got, wantGrants)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/jwks", nil)
	status, _, set := doJSON(t, req)
	ks, _ := set["keys"].([]any)
	if status != http.StatusOK || len(ks) == 0 {
		t.Fatalf("jwks: HTTP %d %v", status, set)
	}
	for _, k := range ks {
		m := k.(map[string]any)
		if m["kid"] == "" || m["d"] != nil || m["p"] != nil {
			t.Errorf("JWKS key has no kid or leaks private parts: %v", m)
		}
	}
}

// Deleting a user ends their grants everywhere: introspection, userinfo,
// refresh, and their browser session.
func TestDeletedUserTokensStopWorking(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	rp := newRP(t, ts, "web", "web-secret", webRedirect, "openid", "offline_access")
	b := providertest.NewBrowser(ts.URL)
	f := rp.authorize(t, b, alicePass, "allow")
	tok, err := rp.oauth2.Exchange(ctx, f.code(t, ts.URL), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatal(err)
	}
	if err := (&admin.Local{Store: ts.Store}).DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if ts.introspect(t, tok.AccessToken)["active"] != false {
		t.Error("introspection says a deleted user's token is active")
	}
	if _, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
		t.Error("userinfo answered for a deleted user")
	}
	if status, body := ts.refresh(t, tok.RefreshToken); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("refresh for a deleted user: HTTP %d %v", status, body)
	}
	page, err := b.Get(ctx, rp.oauth2.AuthCodeURL("state-after-delete", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil {
		t.Fatal(err)
	}
	if form, err := page.ParseForm(); err != nil || !form.Values.Has("password") {
		t.Errorf("a deleted user's browser session still signs in: HTTP %d %v", page.Status, page.Location)
	}
}

// BenchmarkRefreshHTTP measures refresh-token rotation over HTTP: each
// worker chains its own rotated token, as a long-lived client does.
func BenchmarkRefreshHTTP(b *testing.B) {
	ts := newTestServer(b)
	rp := newRP(b, ts, "web", "web-secret", webRedirect, "openid", "offline_access")
	seeds := make(chan string, runtime.GOMAXPROCS(0))
	for range cap(seeds) {
		f := rp.authorize(b, providertest.NewBrowser(ts.URL), alicePass, "allow")
		tok, err := rp.oauth2.Exchange(context.Background(), f.code(b, ts.URL), oauth2.VerifierOption(f.verifier))
		if err != nil {
			b.Fatal(err)
		}
		seeds <- tok.RefreshToken
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rt := <-seeds
		for pb.Next() {
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode()
			req, _ := http.NewRequest(http.MethodPost, ts.URL+"/token", strings.NewReader(form))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("web", "web-secret")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			var body struct {
				RefreshToken string `json:"refresh_token"`
			}
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || body.RefreshToken == "" {
				b.Errorf("HTTP %d", resp.StatusCode)
				return
			}
			rt = body.RefreshToken
		}
	})
}
