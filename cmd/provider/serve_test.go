package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/providertest"
	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/bolt"
)

const (
	appSecret   = "app-secret-for-tests-only"
	appCallback = "http://127.0.0.1:1/callback" // never contacted: the browser stops at the redirect
)

// appConfig declares one confidential client and one user.
const appConfig = `clients:
  - id: app
    secret: ` + appSecret + `
    name: Test App
    redirect_uris: [` + appCallback + `]
    grant_types: [authorization_code, refresh_token]
    scopes: [openid, profile, email, offline_access]
    token_endpoint_auth_method: client_secret_basic
users:
  - username: alice
    password: alice-password-for-tests
    email: alice@example.org
    email_verified: true
    name: Alice Example
`

// relyingParty is a client application using golang.org/x/oauth2 and
// go-oidc against the provider, with its own connection pool.
type relyingParty struct {
	ctx      context.Context // carries the HTTP client for oauth2 and go-oidc
	issuer   string
	oauth    oauth2.Config
	provider *oidc.Provider
}

func newRelyingParty(t *testing.T, issuer, clientID, secret, redirect string, scopes ...string) *relyingParty {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)
	ctx := oidc.ClientContext(t.Context(), hc)
	p, err := oidc.NewProvider(ctx, issuer) // discovery; checks the issuer matches
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader // client_secret_basic
	return &relyingParty{ctx: ctx, issuer: issuer, provider: p, oauth: oauth2.Config{
		ClientID: clientID, ClientSecret: secret, Endpoint: ep, RedirectURL: redirect, Scopes: scopes,
	}}
}

// signIn runs the authorization code flow with PKCE S256 through a fresh
// browser and returns the tokens.
func (rp *relyingParty) signIn(t *testing.T, username, password string) *oauth2.Token {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	state := "state-" + oauth2.GenerateVerifier()[:16]
	authURL := rp.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))
	loc, err := providertest.NewBrowser(rp.issuer).SignIn(rp.ctx, authURL, username, password, "allow")
	if err != nil {
		t.Fatalf("sign in as %s: %v", username, err)
	}
	q := loc.Query()
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != rp.oauth.RedirectURL {
		t.Fatalf("redirected to %s, want %s", loc, rp.oauth.RedirectURL)
	}
	if q.Get("error") != "" || q.Get("code") == "" || q.Get("state") != state {
		t.Fatalf("redirect back to the client: %s", loc)
	}
	tok, err := rp.oauth.Exchange(rp.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange code: %v", err)
	}
	return tok
}

// refresh uses a refresh token once.
func (rp *relyingParty) refresh(t *testing.T, refreshToken string) *oauth2.Token {
	t.Helper()
	tok, err := rp.oauth.TokenSource(rp.ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	return tok
}

func idToken(t *testing.T, tok *oauth2.Token) string {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatalf("token response has no id_token")
	}
	return raw
}

// verify checks an ID token the way a relying party does, with a verifier
// built from a fresh discovery (so no cached keys).
func verify(t *testing.T, issuer, clientID, raw string) *oidc.IDToken {
	t.Helper()
	rp := newRelyingParty(t, issuer, clientID, "", "")
	idt, err := rp.provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(rp.ctx, raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	return idt
}

// kidOf reads the kid from a JWT's header.
func kidOf(t *testing.T, raw string) string {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("parse JWT: %v", err)
	}
	if len(tok.Headers) != 1 || tok.Headers[0].KeyID == "" {
		t.Fatalf("JWT headers %+v: want one with a kid", tok.Headers)
	}
	return tok.Headers[0].KeyID
}

// jwksKIDs fetches the key IDs published at the JWKS URI from discovery.
func jwksKIDs(t *testing.T, issuer string) []string {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	var disc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	getJSON(t, hc, issuer+"/.well-known/openid-configuration", &disc)
	var set jose.JSONWebKeySet
	getJSON(t, hc, disc.JWKSURI, &set)
	var kids []string
	for _, k := range set.Keys {
		if !k.IsPublic() || (k.Use != "sig" && k.Use != "") {
			t.Errorf("JWKS key %s: public %v, use %q", k.KeyID, k.IsPublic(), k.Use)
		}
		kids = append(kids, k.KeyID)
	}
	slices.Sort(kids)
	return kids
}

func getJSON(t *testing.T, hc *http.Client, u string, v any) {
	t.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

type introspection struct {
	Active   bool   `json:"active"`
	ClientID string `json:"client_id"`
	Sub      string `json:"sub"`
	Scope    string `json:"scope"`
}

// introspect asks POST /introspect (RFC 7662) about token, authenticating
// as the client with client_secret_basic.
func introspect(t *testing.T, issuer, clientID, secret, token string) introspection {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, issuer+"/introspect",
		strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("introspect: HTTP %d", resp.StatusCode)
	}
	var out introspection
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("introspect: %v", err)
	}
	return out
}

// TestAdminWhileServing runs the user and client commands while a server
// holds the database, so they go through its admin socket.
func TestAdminWhileServing(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	c := writeConfig(t, port, appConfig)
	F := c.path
	startServer(t, c)

	// The server holds the lock: the CLI cannot open the file itself.
	if s, err := bolt.Open(c.bolt, bolt.Options{Timeout: 100 * time.Millisecond}); !errors.Is(err, bolt.ErrLocked) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("open database while serving: %v, want ErrLocked", err)
	}

	// A second server on the same database refuses to start.
	msg := runCLI(t, "", "serve", "--config", F).fails(t, 1)
	if !strings.HasPrefix(msg, "provider: serve: database ") || !strings.Contains(msg, "already running") {
		t.Errorf("second serve: %q", msg)
	}

	out := runCLI(t, "", "users", "add", "--config", F, "--username", "dave", "--email", "dave@example.org",
		"--name", "Dave D", "--groups", "staff").ok(t)
	m := regexp.MustCompile(`^added user dave \(sub (\S+)\)\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("users add printed %q", out)
	}
	daveSub := m[1]
	davePassword := shownOnce(t, out, "password: ")

	runCLI(t, "erin-password\n", "users", "add", "--username", "erin", "--password-stdin", "--config", F).ok(t)

	t.Run("errors through the socket read as locally", func(t *testing.T) {
		msg := runCLI(t, "long-enough-password\n", "users", "add", "--config", F, "--username", "dave", "--password-stdin").fails(t, 1)
		if want := `provider: users add: user "dave" already exists`; msg != want {
			t.Errorf("got %q, want %q", msg, want)
		}
		msg = runCLI(t, "", "users", "delete", "nobody", "--config", F).fails(t, 1)
		if want := `provider: users delete: user "nobody" does not exist`; msg != want {
			t.Errorf("got %q, want %q", msg, want)
		}
		msg = runCLI(t, "", "clients", "add", "--config", F, "--id", "bad", "--redirect-uri", appCallback, "--grant-type", "urn:ietf:params:oauth:grant-type:device_code").fails(t, 1)
		if !strings.HasPrefix(msg, "provider: clients add: ") || !strings.Contains(msg, `grant type "urn:ietf:params:oauth:grant-type:device_code" is not supported`) {
			t.Errorf("got %q", msg)
		}
	})

	t.Run("users list", func(t *testing.T) {
		out := runCLI(t, "", "users", "list", "--config", F).ok(t)
		for _, name := range []string{"alice", "dave", "erin"} {
			if !hasLine(out, name) {
				t.Errorf("users list lacks %s:\n%s", name, out)
			}
		}
		if d := strings.Join(line(t, out, "dave"), " "); !strings.Contains(d, "dave@example.org") || !strings.Contains(d, "staff") || !strings.Contains(d, daveSub) {
			t.Errorf("dave's line: %q", d)
		}
		out = runCLI(t, "", "users", "list", "--config", F, "--json").ok(t)
		var users []storage.User
		if err := json.Unmarshal([]byte(out), &users); err != nil || len(users) != 3 {
			t.Fatalf("users list --json: %v, %d users\n%s", err, len(users), out)
		}
		if strings.Contains(out, "argon2") {
			t.Errorf("users list --json through the socket shows password hashes")
		}

		runCLI(t, "", "users", "delete", "erin", "--config", F).ok(t)
		if out := runCLI(t, "", "users", "list", "--config", F).ok(t); hasLine(out, "erin") {
			t.Errorf("erin listed after delete:\n%s", out)
		}

		// Names that are not path-safe still work through the socket.
		for _, name := range []string{"a/b", ".."} {
			runCLI(t, "password-"+name+"\n", "users", "add", "--config", F, "--username", name, "--password-stdin").ok(t)
			runCLI(t, "new-password\n", "users", "set-password", name, "--config", F, "--password-stdin").ok(t)
			runCLI(t, "", "users", "delete", name, "--config", F).ok(t)
		}
	})

	t.Run("new user signs in", func(t *testing.T) {
		rp := newRelyingParty(t, c.issuer, "app", appSecret, appCallback, oidc.ScopeOpenID, "profile", "email")
		tok := rp.signIn(t, "dave", davePassword)
		idt, err := rp.provider.Verifier(&oidc.Config{ClientID: "app"}).Verify(rp.ctx, idToken(t, tok))
		if err != nil {
			t.Fatal(err)
		}
		if idt.Subject != daveSub {
			t.Errorf("signed in as sub %s, want dave's %s", idt.Subject, daveSub)
		}

		// A wrong password is refused with the login page again.
		authURL := rp.oauth.AuthCodeURL("state-wrong-password", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
		if loc, err := providertest.NewBrowser(c.issuer).SignIn(rp.ctx, authURL, "dave", davePassword+"x", "allow"); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("sign in with a wrong password: redirect %v, err %v; want the login page with 401", loc, err)
		}
	})

	t.Run("clients add and list", func(t *testing.T) {
		const cb = "http://127.0.0.1:1/cli-callback"
		out := runCLI(t, "", "clients", "add", "--config", F, "--id", "cli-app", "--name", "CLI App",
			"--redirect-uri", cb, "--scope", "openid,email").ok(t)
		if !strings.HasPrefix(out, "added client cli-app\n") {
			t.Errorf("clients add printed %q", out)
		}
		secret := shownOnce(t, out, "client secret: ")

		out = runCLI(t, "", "clients", "list", "--config", F).ok(t)
		if a := line(t, out, "app"); !slices.Contains(a, "config") {
			t.Errorf("app's line: %v, want source config", a)
		}
		if a := line(t, out, "cli-app"); !slices.Contains(a, "cli") || !slices.Contains(a, cb) {
			t.Errorf("cli-app's line: %v", a)
		}

		// The printed secret works at the token endpoint of the running server.
		rp := newRelyingParty(t, c.issuer, "cli-app", secret, cb, oidc.ScopeOpenID, "email")
		tok := rp.signIn(t, "dave", davePassword)
		if _, err := rp.provider.Verifier(&oidc.Config{ClientID: "cli-app"}).Verify(rp.ctx, idToken(t, tok)); err != nil {
			t.Error(err)
		}

		runCLI(t, "", "clients", "delete", "cli-app", "--config", F).ok(t)
		if out := runCLI(t, "", "clients", "list", "--config", F).ok(t); hasLine(out, "cli-app") {
			t.Errorf("cli-app listed after delete:\n%s", out)
		}
	})
}

// TestRestartAndRotation checks that tokens survive a restart and that a
// key rotation made with the CLI reaches a running server.
func TestRestartAndRotation(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	c := writeConfig(t, port, appConfig)
	scopes := []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess}

	srv := startServer(t, c)
	rp := newRelyingParty(t, c.issuer, "app", appSecret, appCallback, scopes...)
	tok := rp.signIn(t, "alice", "alice-password-for-tests")
	if tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("want access and refresh tokens, got %+v", tok)
	}
	oldID := idToken(t, tok)
	idt, err := rp.provider.Verifier(&oidc.Config{ClientID: "app"}).Verify(rp.ctx, oldID)
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Email string `json:"email"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject == "" || claims.Email != "alice@example.org" {
		t.Errorf("ID token: sub %q, email %q", idt.Subject, claims.Email)
	}
	oldKID := kidOf(t, oldID)
	oldKIDs := jwksKIDs(t, c.issuer)
	if len(oldKIDs) != len(clientspec.SigningAlgorithms) || !slices.Contains(oldKIDs, oldKID) {
		t.Fatalf("JWKS before restart: %v, want one key per algorithm, %s among them", oldKIDs, oldKID)
	}
	srv.stop(t)

	srv = startServer(t, c)
	t.Run("after restart", func(t *testing.T) {
		if kids := jwksKIDs(t, c.issuer); !slices.Equal(kids, oldKIDs) {
			t.Errorf("JWKS after restart: %v, want the same keys %v", kids, oldKIDs)
		}
		if got := verify(t, c.issuer, "app", oldID); got.Subject != idt.Subject {
			t.Errorf("old ID token sub %s, want %s", got.Subject, idt.Subject)
		}
		in := introspect(t, c.issuer, "app", appSecret, tok.AccessToken)
		if !in.Active || in.ClientID != "app" || in.Sub != idt.Subject {
			t.Errorf("introspect access token after restart: %+v, want active for app and %s", in, idt.Subject)
		}
		if in := introspect(t, c.issuer, "app", appSecret, "not-a-token"); in.Active {
			t.Errorf("introspect of garbage: %+v, want inactive", in)
		}
	})

	rp = newRelyingParty(t, c.issuer, "app", appSecret, appCallback, scopes...)
	refreshed := rp.refresh(t, tok.RefreshToken)
	if refreshed.RefreshToken == "" || refreshed.RefreshToken == tok.RefreshToken {
		t.Errorf("refresh after restart: refresh token not rotated")
	}
	if refreshed.AccessToken == "" || refreshed.AccessToken == tok.AccessToken {
		t.Errorf("refresh after restart: no new access token")
	}
	if in := introspect(t, c.issuer, "app", appSecret, refreshed.AccessToken); !in.Active {
		t.Errorf("introspect refreshed access token: %+v", in)
	}

	// Rotate with the CLI while the server runs.
	out := runCLI(t, "", "keys", "rotate", "--config", c.path).ok(t)
	m := regexp.MustCompile(`(?m)^new active RS256 key (\S+)$`).FindStringSubmatch(out)
	if m == nil || strings.Count(out, "\n") != len(clientspec.SigningAlgorithms) {
		t.Fatalf("keys rotate printed %q", out)
	}
	newKID := m[1]
	want := slices.Clone(oldKIDs)
	for _, f := range regexp.MustCompile(`(?m)key (\S+)$`).FindAllStringSubmatch(out, -1) {
		want = append(want, f[1])
	}
	slices.Sort(want)
	// The server checks its key manifest on every read in tests
	// (keysReloadInterval), so its next JWKS already has the new keys.
	if kids := jwksKIDs(t, c.issuer); !slices.Equal(kids, want) {
		t.Fatalf("JWKS after rotation: %v, want %v", kids, want)
	}

	// New ID tokens are signed with the new key; old ones still verify.
	again := rp.refresh(t, refreshed.RefreshToken)
	newID := idToken(t, again)
	if kid := kidOf(t, newID); kid != newKID {
		t.Errorf("ID token after rotation has kid %s, want %s", kid, newKID)
	}
	if got := verify(t, c.issuer, "app", newID); got.Subject != idt.Subject {
		t.Errorf("new ID token sub %s, want %s", got.Subject, idt.Subject)
	}
	verify(t, c.issuer, "app", oldID)

	fresh := rp.signIn(t, "alice", "alice-password-for-tests")
	if kid := kidOf(t, idToken(t, fresh)); kid != newKID {
		t.Errorf("ID token of a new sign-in has kid %s, want %s", kid, newKID)
	}

	out = runCLI(t, "", "keys", "list", "--config", c.path).ok(t)
	if k := line(t, out, newKID); k[2] != "active" {
		t.Errorf("keys list: new key %v", k)
	}
	if k := line(t, out, oldKID); k[2] != "retired" {
		t.Errorf("keys list: old key %v", k)
	}

	// Once the server has stopped, the CLI opens the database itself again.
	srv.stop(t)
	if out := runCLI(t, "", "users", "list", "--config", c.path).ok(t); !hasLine(out, "alice") {
		t.Errorf("users list after the server stopped:\n%s", out)
	}
}

// TestBrokenKeyManifest checks that a server whose key manifest is broken
// under it keeps serving its keys and says so in its log.
func TestBrokenKeyManifest(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), "")
	srv := startServer(t, c)
	kids := jwksKIDs(t, c.issuer)
	if len(kids) != len(clientspec.SigningAlgorithms) {
		t.Fatalf("JWKS of a fresh server: %v, want one key per algorithm", kids)
	}

	// Replace the manifest the way an editor would: a new file renamed over it.
	manifest := filepath.Join(c.keys, "keys.json")
	writeFile(t, manifest+".tmp", "{not json")
	if err := os.Rename(manifest+".tmp", manifest); err != nil {
		t.Fatal(err)
	}
	// The server checks its key manifest on every read in tests
	// (keysReloadInterval): this read finds it broken, logs that and
	// still serves the loaded keys.
	if got := jwksKIDs(t, c.issuer); !slices.Equal(got, kids) {
		t.Errorf("JWKS with a broken manifest: %v, want the loaded keys %v", got, kids)
	}
	if !strings.Contains(srv.stderr.String(), "keys: reload failed") {
		t.Fatalf("no reload failure in the server log after a read of the broken manifest:\n%s", srv.stderr.String())
	}
	if got := jwksKIDs(t, c.issuer); !slices.Equal(got, kids) {
		t.Errorf("JWKS with a broken manifest, read again: %v, want the loaded keys %v", got, kids)
	}
}
