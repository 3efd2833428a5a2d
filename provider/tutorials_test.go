package provider_test

// One test per tutorial client the project started from (../shared/seeds):
// each sends exactly what that client sends, and expects what it expects.

import (
	"github.com/smallsso/provider/storage"

	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/providertest"
)

// Seed 000: a Python CLI opens the browser at /authorize (no scope, no
// PKCE, a 40-character state), catches the code on its own local HTTPS
// server at a bare origin, and posts client_id, client_secret, grant_type,
// redirect_uri and code in the body.
func TestTutorialLocalHTTPSCallbackServer(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	type result struct {
		status int
		body   map[string]any
	}
	results := make(chan result, 1)
	var redirect string
	callback := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := r.URL.Query().Get("code")
		if code == "" {
			http.Error(w, "failed to get authorization code.", http.StatusBadRequest)
			return
		}
		resp, err := http.PostForm(ts.URL+"/token", url.Values{
			"client_id": {"mautic"}, "client_secret": {"mautic-secret-0123456789"}, "grant_type": {"authorization_code"},
			"redirect_uri": {redirect}, "code": {code},
		})
		if err != nil {
			results <- result{status: -1}
			return
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		results <- result{resp.StatusCode, body}
		w.WriteHeader(http.StatusOK)
	}))
	defer callback.Close()
	redirect = callback.URL // https://127.0.0.1:port, no path
	ts.addClient(t, clientspec.Spec{ID: "mautic", Secret: "mautic-secret-0123456789", ClientSettings: storage.ClientSettings{
		TokenEndpointAuthMethod: "client_secret_post",
		RedirectURIs:            []string{redirect},
	}})

	authURL := ts.URL + "/authorize?" + url.Values{
		"client_id": {"mautic"}, "grant_type": {"authorization_code"}, "redirect_uri": {redirect},
		"response_type": {"code"}, "state": {strings.Repeat("aZ3", 13) + "q"},
	}.Encode()
	loc, err := providertest.NewBrowser(ts.URL).SignIn(context.Background(), authURL, "alice", alicePass, "allow")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(loc.String(), redirect+"?") {
		t.Fatalf("redirected to %s, want the local server %s", loc, redirect)
	}
	// The browser lands on the local server, which does the exchange.
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // like verify=False
	resp, err := insecure.Get(loc.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := <-results
	if got.status != http.StatusOK || got.body["access_token"] == nil || got.body["token_type"] != "bearer" {
		t.Fatalf("token exchange from the callback server: HTTP %d %v", got.status, got.body)
	}
}

// RFC 8252 native app: a public client with PKCE whose callback server
// listens on a random loopback port, using golang.org/x/oauth2.
func TestTutorialNativeLoopbackCallbackWithPKCE(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	nativeClient(ts, t, "desktop", "http://127.0.0.1/callback")
	tokens := make(chan *oauth2.Token, 1)
	var conf oauth2.Config
	verifier := oauth2.GenerateVerifier()
	callback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := conf.Exchange(r.Context(), r.URL.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Errorf("exchange: %v", err)
			tokens <- nil
			return
		}
		tokens <- tok
		io.WriteString(w, "You can close this window.")
	}))
	defer callback.Close()
	conf = oauth2.Config{ClientID: "desktop", RedirectURL: callback.URL + "/callback", Scopes: []string{"openid", "profile"},
		Endpoint: oauth2.Endpoint{AuthURL: ts.URL + "/authorize", TokenURL: ts.URL + "/token", AuthStyle: oauth2.AuthStyleInParams}}

	loc, err := providertest.NewBrowser(ts.URL).SignIn(context.Background(), conf.AuthCodeURL("native-state-123", oauth2.S256ChallengeOption(verifier)), "alice", alicePass, "allow")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(loc.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	tok := <-tokens
	if tok == nil || tok.AccessToken == "" || tok.RefreshToken == "" || tok.Extra("id_token") == nil {
		t.Fatalf("token %+v", tok)
	}
	// x/oauth2 refreshes a public client with client_id in the body.
	fresh, err := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil || fresh.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh: %v (rotated: %v)", err, fresh != nil && fresh.RefreshToken != tok.RefreshToken)
	}
}

// Seed 001: requests-oauthlib with the out-of-band redirect. The person
// copies the code from the page; fetch_token sends it with HTTP Basic
// client authentication; auto-refresh later posts client_id and
// client_secret in the body, and every refresh rotates the token.
func TestTutorialRequestsOAuthlibOOB(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	const oob, secret = "urn:ietf:wg:oauth:2.0:oob", "oauthlib-secret-0123456789"
	ts.addClient(t, clientspec.Spec{ID: "oauthlib_app", Secret: secret, ClientSettings: storage.ClientSettings{
		RedirectURIs: []string{oob},
		GrantTypes:   []string{"authorization_code", "refresh_token"},
		Scopes:       []string{"read"},
	}})

	// session.authorization_url: response_type, client_id, redirect_uri,
	// scope and a 30-character state.
	authURL := ts.URL + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {"oauthlib_app"},
		"redirect_uri": {oob}, "scope": {"read"}, "state": {"Yf3kQ2vN8xT1mL6pR0sW4bZ7cH9jD5"}}.Encode()
	page, err := providertest.NewBrowser(ts.URL).SignInPage(context.Background(), authURL, "alice", alicePass, "allow")
	if err != nil {
		t.Fatal(err)
	}
	code := page.InputValue("code")
	if code == "" {
		t.Fatalf("no code on the page: HTTP %d %.300s", page.Status, page.Body)
	}

	// fetch_token(TOKEN_URL, client_secret=..., code=...)
	status, _, tok := postForm(t, ts.URL+"/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {oob}, "client_id": {"oauthlib_app"},
	}, "oauthlib_app", secret)
	if status != http.StatusOK || tok["refresh_token"] == nil || tok["scope"] != "read" || tok["token_type"] != "bearer" {
		t.Fatalf("fetch_token: HTTP %d %v", status, tok)
	}

	// auto_refresh_url + auto_refresh_kwargs={client_id, client_secret};
	// token_updater saves each new token.
	first := tok["refresh_token"].(string)
	refreshToken := first
	for i := range 2 {
		status, _, fresh := postForm(t, ts.URL+"/token", url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}, "scope": {"read"},
			"client_id": {"oauthlib_app"}, "client_secret": {secret},
		}, "", "")
		if status != http.StatusOK || fresh["refresh_token"] == nil || fresh["refresh_token"] == refreshToken {
			t.Fatalf("refresh %d: HTTP %d %v", i+1, status, fresh)
		}
		refreshToken = fresh["refresh_token"].(string)
	}
	// A spent refresh token is refused, and its reuse revokes the grant:
	// the latest one dies with it (RFC 9700 §4.14.2).
	if status, old := ts.refreshAs(t, "oauthlib_app", secret, first); status != http.StatusBadRequest || old["error"] != "invalid_grant" {
		t.Fatalf("spent refresh token: HTTP %d %v", status, old)
	}
	if status, latest := ts.refreshAs(t, "oauthlib_app", secret, refreshToken); status != http.StatusBadRequest || latest["error"] != "invalid_grant" {
		t.Fatalf("latest refresh token after reuse of a spent one: HTTP %d %v", status, latest)
	}
}

// Seeds 002 and 003: curl and requests against the token endpoint with
// the password grant and HTTP Basic client authentication, then Bearer
// calls; and the error for a call without the Authorization header.
func TestTutorialPasswordGrantWithBasicAuth(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	secret := ts.addClient(t, clientspec.Spec{ID: "authlib", Secret: "authlib-secret-0123456789",
		ClientSettings: storage.ClientSettings{GrantTypes: []string{"password", "refresh_token"}, Scopes: []string{"openid", "profile"}}})

	// requests.post(url, auth=HTTPBasicAuth(id, secret), data=form_data)
	status, _, tok := postForm(t, ts.URL+"/token", url.Values{
		"grant_type": {"password"}, "username": {"alice"}, "password": {alicePass}, "scope": {"openid profile"},
	}, "authlib", secret)
	if status != http.StatusOK || tok["access_token"] == nil || tok["refresh_token"] == nil || tok["expires_in"] == nil {
		t.Fatalf("password grant: HTTP %d %v", status, tok)
	}

	// curl -u id:secret -F grant_type=password -F username=... (multipart).
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range map[string]string{"grant_type": "password", "username": "alice", "password": alicePass, "scope": "openid profile"} {
		mw.WriteField(k, v)
	}
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/token", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.SetBasicAuth("authlib", secret)
	if status, _, body := doJSON(t, req); status != http.StatusOK || body["access_token"] == nil {
		t.Fatalf("curl -F: HTTP %d %v", status, body)
	}

	// requests.get(api, auth=OAuth2Auth(token)): Bearer in the header.
	req, _ = http.NewRequest(http.MethodGet, ts.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok["access_token"].(string))
	if status, _, me := doJSON(t, req); status != http.StatusOK || me["sub"] != ts.alice.ID || me["preferred_username"] != "alice" {
		t.Fatalf("userinfo with the token: HTTP %d %v", status, me)
	}
	// Without the header: 401 and a WWW-Authenticate challenge.
	req, _ = http.NewRequest(http.MethodGet, ts.URL+"/userinfo", nil)
	status, h, _ := doJSON(t, req)
	if status != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("no Authorization header: HTTP %d, WWW-Authenticate %q", status, h.Get("WWW-Authenticate"))
	}

	// Seed 003: each refresh gives a new refresh token.
	status, fresh := ts.refreshAs(t, "authlib", secret, tok["refresh_token"].(string))
	if status != http.StatusOK || fresh["refresh_token"] == tok["refresh_token"] {
		t.Fatalf("refresh: HTTP %d %v", status, fresh)
	}
}

// Seed 002/003: client credentials with HTTP Basic, scopes limited to the
// client's registration.
func TestTutorialClientCredentials(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	secret := ts.addClient(t, clientspec.Spec{ID: "batch", Secret: "batch-secret-0123456789",
		ClientSettings: storage.ClientSettings{GrantTypes: []string{"client_credentials"}, Scopes: []string{"reports:read"}, Audience: []string{"https://reports.example"}}})
	status, _, tok := postForm(t, ts.URL+"/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"reports:read"},
		"audience": {"https://reports.example"}}, "batch", secret)
	if status != http.StatusOK || tok["scope"] != "reports:read" || tok["refresh_token"] != nil {
		t.Fatalf("HTTP %d %v", status, tok)
	}
	info := ts.introspect(t, tok["access_token"].(string))
	if info["active"] != true || info["sub"] != "batch" || info["client_id"] != "batch" {
		t.Fatalf("introspection %v", info)
	}
	if aud, _ := info["aud"].([]any); len(aud) != 1 || aud[0] != "https://reports.example" {
		t.Errorf("aud %v", info["aud"])
	}
	for _, c := range []struct{ name, field, value, code string }{
		{"scope it was not given", "scope", "reports:write", "invalid_scope"},
		{"audience it was not given", "audience", "https://billing.example", "invalid_request"},
	} {
		status, _, body := postForm(t, ts.URL+"/token", url.Values{"grant_type": {"client_credentials"}, c.field: {c.value}}, "batch", secret)
		if status != http.StatusBadRequest || body["error"] != c.code {
			t.Errorf("%s: HTTP %d %v, want %s", c.name, status, body, c.code)
		}
	}
}

func (ts *testServer) refreshAs(t *testing.T, clientID, secret, refreshToken string) (int, map[string]any) {
	t.Helper()
	status, _, body := postForm(t, ts.URL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}, clientID, secret)
	return status, body
}

// Seed 004: a Vue single-page app signs the person in and calls its
// FastAPI backend with `Authorization: Bearer`; the backend verifies the
// JWT access token offline. Against this provider the SPA is a public
// client (code + PKCE from the browser, so CORS on /token) with
// access_token_format jwt, and the backend checks the token with go-jose
// against /jwks and its own audience.
func TestTutorialVueSPAWithJWTBackend(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	const origin, redirect, api = "http://127.0.0.1:5173", "http://127.0.0.1:5173/callback", "https://api.example.org"
	ts.addClient(t, clientspec.Spec{ID: "vue-spa", ClientSettings: storage.ClientSettings{
		Public:            true,
		RedirectURIs:      []string{redirect},
		GrantTypes:        []string{"authorization_code", "refresh_token"},
		Scopes:            []string{"openid", "profile"},
		Audience:          []string{api},
		AccessTokenFormat: "jwt",
	}})

	verifier := oauth2.GenerateVerifier()
	auth := authURL(ts, "vue-spa", redirect, verifier, url.Values{"scope": {"openid profile"}, "resource": {api}})
	loc, err := providertest.NewBrowser(ts.URL).SignIn(context.Background(), auth, "alice", alicePass, "allow")
	if err != nil {
		t.Fatal(err)
	}
	// The SPA's fetch() of the token endpoint, preflight first.
	if status, h := preflight(t, ts.URL+"/token", origin, http.MethodPost, "content-type"); status >= 300 || h.Get("Access-Control-Allow-Origin") != origin {
		t.Fatalf("preflight: HTTP %d %v", status, h)
	}
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/token", strings.NewReader(url.Values{
		"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "client_id": {"vue-spa"},
		"redirect_uri": {redirect}, "code_verifier": {verifier},
	}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	status, h, tok := doJSON(t, req)
	if status != http.StatusOK || h.Get("Access-Control-Allow-Origin") != origin {
		t.Fatalf("token from the SPA: HTTP %d ACAO %q %v", status, h.Get("Access-Control-Allow-Origin"), tok)
	}

	// The backend: offline verification only, no call to the provider
	// beyond the (cacheable) JWKS.
	claims := verifyAccessToken(t, ts, tok["access_token"].(string))
	if !claims.Audience.Contains(api) || claims.Subject != ts.alice.ID || claims.ClientID != "vue-spa" || claims.Scope != "openid profile" {
		t.Fatalf("claims %+v", claims)
	}
}

// Seed 002: the authorization code flow typed into a browser:
// /authorize?response_type=code&client_id=…&scope=profile, with no
// redirect_uri (the client has one) and no state; the code is read from
// the address bar and exchanged with curl -u.
func TestTutorialBrowserFlowWithoutState(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	const redirect = "http://127.0.0.1:5000/callback"
	secret := ts.addClient(t, clientspec.Spec{ID: "curl-app", Secret: "curl-app-secret-0123456789", ClientSettings: storage.ClientSettings{
		RedirectURIs: []string{redirect},
		GrantTypes:   []string{"authorization_code"},
		Scopes:       []string{"profile"},
	}})
	loc, err := providertest.NewBrowser(ts.URL).SignIn(context.Background(),
		ts.URL+"/authorize?response_type=code&client_id=curl-app&scope=profile", "alice", alicePass, "allow")
	if err != nil {
		t.Fatal(err)
	}
	if q := loc.Query(); !strings.HasPrefix(loc.String(), redirect+"?") || q.Get("code") == "" || q.Has("state") || q.Get("iss") != ts.URL {
		t.Fatalf("redirect %s: want a code, iss, and no state", loc)
	}
	status, _, tok := postForm(t, ts.URL+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {redirect}}, "curl-app", secret)
	if status != http.StatusOK || tok["scope"] != "profile" {
		t.Fatalf("exchange: HTTP %d %v", status, tok)
	}

	// Errors carry no state either (here: a scope the client lacks).
	page, err := providertest.NewBrowser(ts.URL).Get(context.Background(), ts.URL+"/authorize?response_type=code&client_id=curl-app&scope=admin")
	if err != nil {
		t.Fatal(err)
	}
	if page.Location == nil || page.Location.Query().Get("error") != "invalid_scope" || page.Location.Query().Has("state") {
		t.Fatalf("error redirect %v", page.Location)
	}
}
