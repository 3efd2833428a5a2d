package provider_test

import (
	"github.com/smallsso/provider/storage"

	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/providertest"
)

const (
	apiAudience     = "https://api.example.org"
	reportsAudience = "https://reports.example.org"
)

// accessClaims are the RFC 9068 §2.2 claims as a resource server reads them.
type accessClaims struct {
	jwt.Claims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	AuthTime int64  `json:"auth_time"`
}

// fetchJWKS gets the provider's public keys over HTTP, as a resource server
// would.
func fetchJWKS(t *testing.T, ts *testServer) jose.JSONWebKeySet {
	t.Helper()
	resp, err := http.Get(ts.URL + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatalf("jwks: %v", err)
	}
	return set
}

// verifyAccessToken checks raw offline, the RFC 9068 §4 way: a JWS of type
// at+jwt signed by a key in the provider's JWKS, from this issuer, not
// expired, and carrying every required claim.
func verifyAccessToken(t *testing.T, ts *testServer, raw string) accessClaims {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatalf("access token %.20q… is not a JWS: %v", raw, err)
	}
	h := tok.Headers[0]
	if typ := h.ExtraHeaders[jose.HeaderType]; typ != "at+jwt" {
		t.Errorf("typ = %v, want at+jwt (RFC 9068 §2.1)", typ)
	}
	set := fetchJWKS(t, ts)
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q is not in the JWKS", h.KeyID)
	}
	var c accessClaims
	var all map[string]any
	if err := tok.Claims(keys[0], &c, &all); err != nil {
		t.Fatalf("signature does not verify against the JWKS: %v", err)
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: ts.URL, Time: time.Now()}, 5*time.Second); err != nil {
		t.Errorf("claims: %v", err)
	}
	for _, k := range []string{"iss", "exp", "aud", "sub", "client_id", "iat", "jti"} {
		if _, ok := all[k]; !ok {
			t.Errorf("required claim %q is missing: %v", k, all)
		}
	}
	// fosite sets exp (rounded to the second) when the handler runs, iat is
	// taken (truncated) when the token is signed: on a loaded machine a
	// few seconds may pass in between, so allow that much either way.
	if life := c.Expiry.Time().Sub(c.IssuedAt.Time()); life < time.Hour-5*time.Second || life > time.Hour+time.Second {
		t.Errorf("exp - iat = %v, want the access token lifespan 1h", life)
	}
	return c
}

func addJWTServiceClient(t *testing.T, ts *testServer, id string, audience ...string) string {
	t.Helper()
	return ts.addClient(t, clientspec.Spec{
		ID: id, Secret: id + "-secret", ClientSettings: storage.ClientSettings{
			GrantTypes:        []string{"client_credentials"},
			Scopes:            []string{"api:read", "api:write"},
			Audience:          audience,
			AccessTokenFormat: "jwt",
		},
	})
}

func clientCredentials(t *testing.T, ts *testServer, id, secret string, form url.Values) (int, map[string]any) {
	t.Helper()
	form.Set("grant_type", "client_credentials")
	status, _, body := postForm(t, ts.URL+"/token", form, id, secret)
	return status, body
}

func TestJWTAccessTokenClientCredentials(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	secret := addJWTServiceClient(t, ts, "jwtsvc", apiAudience, reportsAudience)

	cases := []struct {
		name    string
		form    url.Values
		wantAud []string
	}{
		{"resource", url.Values{"scope": {"api:read"}, "resource": {apiAudience}}, []string{apiAudience}},
		{"audience", url.Values{"scope": {"api:read"}, "audience": {reportsAudience}}, []string{reportsAudience}},
		{"both", url.Values{"scope": {"api:read"}, "audience": {reportsAudience}, "resource": {apiAudience}}, []string{reportsAudience, apiAudience}},
		{"several resources", url.Values{"scope": {"api:read"}, "resource": {apiAudience, reportsAudience + "/v2"}}, []string{apiAudience, reportsAudience + "/v2"}},
		// Several registered audiences and none asked for: the client_id.
		{"no audience", url.Values{"scope": {"api:read"}}, []string{"jwtsvc"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := clientCredentials(t, ts, "jwtsvc", secret, tc.form)
			if status != http.StatusOK {
				t.Fatalf("token: HTTP %d %v", status, body)
			}
			raw, _ := body["access_token"].(string)
			c := verifyAccessToken(t, ts, raw)
			if c.Subject != "jwtsvc" || c.ClientID != "jwtsvc" {
				t.Errorf("sub = %q, client_id = %q: a client_credentials token's subject is the client (RFC 9068 §2.2)", c.Subject, c.ClientID)
			}
			if !slices.Equal([]string(c.Audience), tc.wantAud) {
				t.Errorf("aud = %v, want %v", c.Audience, tc.wantAud)
			}
			if c.Scope != "api:read" || c.ID == "" || c.AuthTime != 0 {
				t.Errorf("scope = %q, jti = %q, auth_time = %d", c.Scope, c.ID, c.AuthTime)
			}
			// Still a stored token: introspection knows it.
			intro := ts.introspect(t, raw)
			if intro["active"] != true || intro["client_id"] != "jwtsvc" || intro["scope"] != "api:read" {
				t.Errorf("introspection = %v", intro)
			}
		})
	}

	t.Run("single registered audience is the default", func(t *testing.T) {
		secret := addJWTServiceClient(t, ts, "jwtone", apiAudience)
		status, body := clientCredentials(t, ts, "jwtone", secret, url.Values{"scope": {"api:write"}})
		if status != http.StatusOK {
			t.Fatalf("token: HTTP %d %v", status, body)
		}
		c := verifyAccessToken(t, ts, body["access_token"].(string))
		if !slices.Equal([]string(c.Audience), []string{apiAudience}) {
			t.Errorf("aud = %v, want the one registered audience", c.Audience)
		}
	})

	t.Run("two tokens differ in jti", func(t *testing.T) {
		_, b1 := clientCredentials(t, ts, "jwtsvc", secret, url.Values{"scope": {"api:read"}})
		_, b2 := clientCredentials(t, ts, "jwtsvc", secret, url.Values{"scope": {"api:read"}})
		c1 := verifyAccessToken(t, ts, b1["access_token"].(string))
		c2 := verifyAccessToken(t, ts, b2["access_token"].(string))
		if c1.ID == c2.ID {
			t.Errorf("jti %q repeated", c1.ID)
		}
	})
}

// A client without access_token_format keeps fosite's opaque tokens.
func TestOpaqueAccessTokenIsNotJWT(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	status, body := clientCredentials(t, ts, "svc", "svc-secret", url.Values{"scope": {"api:read"}})
	if status != http.StatusOK {
		t.Fatalf("token: HTTP %d %v", status, body)
	}
	raw, _ := body["access_token"].(string)
	if strings.Count(raw, ".") == 2 {
		t.Errorf("opaque client got a JWT-shaped token %.20q…", raw)
	}
	if _, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256}); err == nil {
		t.Error("opaque token parses as a JWS")
	}
	if ts.introspect(t, raw)["active"] != true {
		t.Error("opaque token is not active")
	}
}

func addJWTWebClient(t *testing.T, ts *testServer) *rp {
	t.Helper()
	secret := ts.addClient(t, clientspec.Spec{
		ID: "jwtweb", Secret: "jwtweb-secret", ClientSettings: storage.ClientSettings{
			RedirectURIs:      []string{webRedirect},
			GrantTypes:        []string{"authorization_code", "refresh_token"},
			Scopes:            []string{"openid", "profile", "offline_access"},
			Audience:          []string{apiAudience},
			AccessTokenFormat: "jwt",
		},
	})
	return newRP(t, ts, "jwtweb", secret, webRedirect, "openid", "profile", "offline_access")
}

// userJWT signs alice in for the jwtweb client and returns its tokens.
func userJWT(t *testing.T, ts *testServer, rp *rp, opts ...oauth2.AuthCodeOption) *oauth2.Token {
	t.Helper()
	b := providertest.NewBrowser(ts.URL)
	f := rp.authorize(t, b, alicePass, "allow", opts...)
	tok, err := rp.oauth2.Exchange(context.Background(), f.code(t, ts.URL), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok
}

func TestJWTAccessTokenAuthorizationCodeAndRefresh(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	rp := addJWTWebClient(t, ts)
	tok := userJWT(t, ts, rp, oauth2.SetAuthURLParam("resource", apiAudience))

	c := verifyAccessToken(t, ts, tok.AccessToken)
	if c.Subject != ts.alice.ID || c.ClientID != "jwtweb" {
		t.Errorf("sub = %q (want alice's %q), client_id = %q", c.Subject, ts.alice.ID, c.ClientID)
	}
	if !slices.Equal([]string(c.Audience), []string{apiAudience}) {
		t.Errorf("aud = %v, want the resource %q", c.Audience, apiAudience)
	}
	scopes := strings.Fields(c.Scope)
	slices.Sort(scopes)
	if !slices.Equal(scopes, []string{"offline_access", "openid", "profile"}) {
		t.Errorf("scope = %q", c.Scope)
	}
	if c.AuthTime == 0 || time.Since(time.Unix(c.AuthTime, 0)) > time.Minute {
		t.Errorf("auth_time = %d, want the sign-in time", c.AuthTime)
	}

	// The ID token's at_hash covers the JWT, and userinfo takes it.
	idt, err := rp.verifier.Verify(ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	ui, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || ui.Subject != ts.alice.ID {
		t.Fatalf("userinfo with a JWT access token: %v %+v", err, ui)
	}
	if intro := ts.introspect(t, tok.AccessToken); intro["active"] != true || intro["sub"] != ts.alice.ID {
		t.Errorf("introspection = %v", intro)
	}

	// Our own ID token is a JWT signed with the same key, but not an access
	// token: typ and the stored record both say no.
	if ts.introspect(t, tok.Extra("id_token").(string))["active"] != false {
		t.Error("the ID token introspects as an active token")
	}
	if status := userinfoStatus(t, ts, tok.Extra("id_token").(string)); status != http.StatusUnauthorized {
		t.Errorf("userinfo with the ID token: HTTP %d, want 401", status)
	}

	// Refresh gives a new JWT with the same subject and audience, and
	// retires the old access token.
	status, _, fresh := postForm(t, ts.URL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, "jwtweb", "jwtweb-secret")
	if status != http.StatusOK {
		t.Fatalf("refresh: HTTP %d %v", status, fresh)
	}
	newAccess, _ := fresh["access_token"].(string)
	c2 := verifyAccessToken(t, ts, newAccess)
	if c2.ID == c.ID || newAccess == tok.AccessToken {
		t.Error("refresh returned the same access token")
	}
	if c2.Subject != ts.alice.ID || !slices.Equal([]string(c2.Audience), []string{apiAudience}) || c2.AuthTime != c.AuthTime {
		t.Errorf("refreshed claims sub=%q aud=%v auth_time=%d, want %q %v %d", c2.Subject, c2.Audience, c2.AuthTime, ts.alice.ID, apiAudience, c.AuthTime)
	}
	if rt, _ := fresh["refresh_token"].(string); strings.Count(rt, ".") == 2 {
		t.Error("the refresh token is a JWT; refresh tokens stay opaque")
	}
	if ts.introspect(t, tok.AccessToken)["active"] != false {
		t.Error("the access token of the rotated refresh token is still active")
	}
	if ts.introspect(t, newAccess)["active"] != true {
		t.Error("the refreshed JWT is not active")
	}
}

func TestJWTAccessTokenRevokedIsInactive(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	secret := addJWTServiceClient(t, ts, "jwtsvc", apiAudience)
	status, body := clientCredentials(t, ts, "jwtsvc", secret, url.Values{"scope": {"api:read"}})
	if status != http.StatusOK {
		t.Fatalf("token: HTTP %d %v", status, body)
	}
	raw := body["access_token"].(string)
	if ts.introspect(t, raw)["active"] != true {
		t.Fatal("fresh JWT is not active")
	}
	// Another client cannot revoke it (RFC 7009 §2.1)...
	postForm(t, ts.URL+"/revoke", url.Values{"token": {raw}}, "svc", "svc-secret")
	if ts.introspect(t, raw)["active"] != true {
		t.Fatal("revocation by another client took effect")
	}
	// ...its own client can.
	if s, _, b := postForm(t, ts.URL+"/revoke", url.Values{"token": {raw}, "token_type_hint": {"access_token"}}, "jwtsvc", secret); s != http.StatusOK {
		t.Fatalf("revoke: HTTP %d %v", s, b)
	}
	if ts.introspect(t, raw)["active"] != false {
		t.Error("revoked JWT introspects as active")
	}
}

func TestJWTAccessTokenAudienceNotAllowed(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	secret := addJWTServiceClient(t, ts, "jwtsvc", apiAudience)
	cases := []struct {
		name string
		form url.Values
		want string
	}{
		{"audience", url.Values{"audience": {"https://evil.example"}}, "invalid_request"},
		{"resource", url.Values{"resource": {"https://evil.example"}}, "invalid_target"},
		{"resource beside an allowed one", url.Values{"resource": {apiAudience, "https://evil.example"}}, "invalid_target"},
		{"relative resource", url.Values{"resource": {"api"}}, "invalid_target"},
		{"resource with fragment", url.Values{"resource": {apiAudience + "/#x"}}, "invalid_target"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("scope", "api:read")
			status, body := clientCredentials(t, ts, "jwtsvc", secret, tc.form)
			if status != http.StatusBadRequest || body["error"] != tc.want {
				t.Errorf("HTTP %d %v, want 400 %s", status, body, tc.want)
			}
			if _, ok := body["access_token"]; ok {
				t.Error("a token was issued")
			}
		})
	}
	t.Run("wrong client secret still wins", func(t *testing.T) {
		status, body := clientCredentials(t, ts, "jwtsvc", "wrong", url.Values{"resource": {"https://evil.example"}})
		if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Errorf("HTTP %d %v, want 401 invalid_client", status, body)
		}
	})

	// At the authorization endpoint the error goes back to the client,
	// before anyone is asked to sign in.
	t.Run("authorize", func(t *testing.T) {
		rp := addJWTWebClient(t, ts)
		u := rp.oauth2.AuthCodeURL("st4te", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("resource", "https://evil.example"))
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noFollow.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || resp.StatusCode/100 != 3 || !strings.HasPrefix(loc.String(), webRedirect) {
			t.Fatalf("HTTP %d Location %q, want a redirect to the client", resp.StatusCode, resp.Header.Get("Location"))
		}
		if q := loc.Query(); q.Get("error") != "invalid_target" || q.Get("state") != "st4te" || q.Get("iss") != ts.URL {
			t.Errorf("redirect query = %v, want error=invalid_target with state and iss", q)
		}
	})
}

// A JWT whose payload was edited keeps its signature, which is the storage
// key, so the record is found: the signature check must still refuse it.
func TestJWTAccessTokenTampered(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rp := addJWTWebClient(t, ts)
	tok := userJWT(t, ts, rp)
	if status := userinfoStatus(t, ts, tok.AccessToken); status != http.StatusOK {
		t.Fatalf("userinfo with the untouched token: HTTP %d", status)
	}

	forged := editPayload(t, tok.AccessToken, func(c map[string]any) { c["sub"] = "someone-else" })
	if ts.introspect(t, forged)["active"] != false {
		t.Error("a JWT with an edited sub introspects as active")
	}
	if status := userinfoStatus(t, ts, forged); status != http.StatusUnauthorized {
		t.Errorf("userinfo with an edited JWT: HTTP %d, want 401", status)
	}
	widened := editPayload(t, tok.AccessToken, func(c map[string]any) { c["scope"] = "openid profile email offline_access" })
	if ts.introspect(t, widened)["active"] != false {
		t.Error("a JWT with widened scope introspects as active")
	}
	// The header is signed too: a token cannot claim another type.
	retyped := editHeader(t, tok.AccessToken, func(h map[string]any) { h["typ"] = "JWT" })
	if ts.introspect(t, retyped)["active"] != false {
		t.Error("a JWT with an edited header introspects as active")
	}
	// Nor can a JWT-shaped token borrow an opaque token's storage key.
	status, body := clientCredentials(t, ts, "svc", "svc-secret", url.Values{"scope": {"api:read"}})
	if status != http.StatusOK {
		t.Fatalf("opaque token: HTTP %d %v", status, body)
	}
	opaque := body["access_token"].(string)
	parts := strings.Split(tok.AccessToken, ".")
	borrowed := parts[0] + "." + parts[1] + "." + opaque[strings.LastIndexByte(opaque, '.')+1:]
	for name, bad := range map[string]string{"borrowed signature": borrowed, "empty signature": parts[0] + "." + parts[1] + ".", "dots": ".."} {
		if ts.introspect(t, bad)["active"] != false {
			t.Errorf("%s introspects as active", name)
		}
		if status := userinfoStatus(t, ts, bad); status != http.StatusUnauthorized {
			t.Errorf("userinfo with %s: HTTP %d, want 401", name, status)
		}
	}
	// And the original is still fine.
	if ts.introspect(t, tok.AccessToken)["active"] != true {
		t.Error("the untouched token is no longer active")
	}
}

func editPayload(t *testing.T, raw string, edit func(map[string]any)) string {
	return editPart(t, raw, 1, edit)
}

func editHeader(t *testing.T, raw string, edit func(map[string]any)) string {
	return editPart(t, raw, 0, edit)
}

func editPart(t *testing.T, raw string, i int, edit func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, _ = json.Marshal(m)
	parts[i] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func userinfoStatus(t *testing.T, ts *testServer, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	status, _, _ := doJSON(t, req)
	return status
}
