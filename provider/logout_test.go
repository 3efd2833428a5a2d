package provider_test

import (
	"github.com/smallsso/provider/storage"

	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/providertest"
)

const (
	byeURI      = "http://127.0.0.1:5555/bye"
	byeQueryURI = "http://127.0.0.1:5555/bye?app=web"
)

// logoutClient registers a client that may use every logout feature, with
// the given back- and front-channel URIs (either may be empty).
func logoutClient(t *testing.T, ts *testServer, id, backchannel, frontchannel string) *rp {
	t.Helper()
	redirect := webRedirect
	if frontchannel != "" {
		// The front-channel URI must share the redirect URI's origin.
		u, _ := url.Parse(frontchannel)
		redirect = u.Scheme + "://" + u.Host + "/callback"
	}
	ts.addClient(t, clientspec.Spec{
		ID: id, Secret: id + "-secret", ClientSettings: storage.ClientSettings{
			RedirectURIs:                      []string{redirect},
			GrantTypes:                        []string{"authorization_code", "refresh_token"},
			Scopes:                            []string{"openid", "offline_access"},
			PostLogoutRedirectURIs:            []string{byeURI, byeQueryURI},
			BackchannelLogoutURI:              backchannel,
			BackchannelLogoutSessionRequired:  backchannel != "",
			FrontchannelLogoutURI:             frontchannel,
			FrontchannelLogoutSessionRequired: frontchannel != "",
		},
	})
	return newRP(t, ts, id, id+"-secret", redirect, "openid", "offline_access")
}

// signedIn is what a relying party keeps after a sign-in.
type signedIn struct {
	idToken string
	claims  map[string]any
	refresh string
}

func signIn(t *testing.T, ts *testServer, b *providertest.Browser, r *rp) signedIn {
	t.Helper()
	f := r.authorize(t, b, alicePass, "allow")
	tok, err := r.oauth2.Exchange(context.Background(), f.code(t, ts.URL), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if _, err := r.verifier.Verify(context.Background(), raw); err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	return signedIn{idToken: raw, claims: jwtClaims(t, raw), refresh: tok.RefreshToken}
}

// jwtClaims decodes a JWS payload without verifying it.
func jwtClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", raw)
	}
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func logoutURL(ts *testServer, params url.Values) string {
	if len(params) == 0 {
		return ts.URL + "/logout"
	}
	return ts.URL + "/logout?" + params.Encode()
}

// promptNone asks for a silent sign-in and returns the error code the
// client gets back ("" on success).
func promptNone(t *testing.T, b *providertest.Browser, r *rp) string {
	t.Helper()
	state := randomString()
	loc, err := b.SignIn(context.Background(), r.oauth2.AuthCodeURL(state, oauth2.SetAuthURLParam("prompt", "none")), "", "", "")
	if err != nil {
		t.Fatalf("prompt=none: %v", err)
	}
	q := loc.Query()
	if q.Get("state") != state || q.Has("code") == (q.Get("error") != "") {
		t.Fatalf("prompt=none redirect %s", loc)
	}
	return q.Get("error")
}

func get(t *testing.T, b *providertest.Browser, u string) *providertest.Page {
	t.Helper()
	page, err := b.Get(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	return page
}

func TestLogoutSIDClaim(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	b := providertest.NewBrowser(ts.URL)
	one := logoutClient(t, ts, "one", "", "")
	two := logoutClient(t, ts, "two", "", "")

	s1 := signIn(t, ts, b, one)
	sid, _ := s1.claims["sid"].(string)
	if len(sid) < 32 {
		t.Fatalf("ID token sid = %q, want a random session ID", s1.claims["sid"])
	}
	// Single sign-on to a second client: the same browser session.
	if s2 := signIn(t, ts, b, two); s2.claims["sid"] != sid {
		t.Errorf("second client's sid = %v, want %q", s2.claims["sid"], sid)
	}
	// A refreshed ID token keeps the sid.
	status, _, body := postForm(t, ts.URL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {s1.refresh}}, "one", "one-secret")
	if status != http.StatusOK {
		t.Fatalf("refresh: HTTP %d %v", status, body)
	}
	raw, _ := body["id_token"].(string)
	if got := jwtClaims(t, raw)["sid"]; got != sid {
		t.Errorf("refreshed ID token sid = %v, want %q", got, sid)
	}
	// Another browser is another session.
	if s3 := signIn(t, ts, providertest.NewBrowser(ts.URL), one); s3.claims["sid"] == sid {
		t.Error("two browsers share a sid")
	}
	// A new sign-in in the same browser starts a new session.
	f := one.authorize(t, b, alicePass, "allow", oauth2.SetAuthURLParam("prompt", "login"))
	tok, err := one.oauth2.Exchange(context.Background(), f.code(t, ts.URL), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = tok.Extra("id_token").(string)
	if got := jwtClaims(t, raw)["sid"]; got == sid || got == nil {
		t.Errorf("sid after a fresh login = %v, want a new one", got)
	}
}

func TestLogoutWithHintRedirects(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	r := logoutClient(t, ts, "lo", "", "")
	for _, tc := range []struct {
		name, target, state, want string
	}{
		{"state", byeURI, "st-" + strings.Repeat("x", 128), byeURI + "?state=st-" + strings.Repeat("x", 128)},
		{"no state", byeURI, "", byeURI},
		{"registered query kept", byeQueryURI, "s1", "http://127.0.0.1:5555/bye?app=web&state=s1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := providertest.NewBrowser(ts.URL)
			s := signIn(t, ts, b, r)
			params := url.Values{"id_token_hint": {s.idToken}, "post_logout_redirect_uri": {tc.target}}
			if tc.state != "" {
				params.Set("state", tc.state)
			}
			page := get(t, b, logoutURL(ts, params))
			if page.Location == nil || page.Location.String() != tc.want {
				t.Fatalf("logout: HTTP %d, Location %v, want a redirect to %s", page.Status, page.Location, tc.want)
			}
			if e := promptNone(t, b, r); e != "login_required" {
				t.Errorf("prompt=none after logout: error %q, want login_required", e)
			}
		})
	}

	t.Run("POST", func(t *testing.T) {
		b := providertest.NewBrowser(ts.URL)
		s := signIn(t, ts, b, r)
		form := url.Values{"id_token_hint": {s.idToken}, "post_logout_redirect_uri": {byeURI}, "state": {"p"}}
		resp, err := b.HTTP.PostForm(ts.URL+"/logout", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != byeURI+"?state=p" {
			t.Fatalf("POST logout: HTTP %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if e := promptNone(t, b, r); e != "login_required" {
			t.Errorf("prompt=none after logout: %q", e)
		}
	})

	t.Run("cross-site POST", func(t *testing.T) {
		// A browser sends no SameSite=Lax cookie with another site's form
		// POST: the provider turns it into a GET navigation, which has it.
		b := providertest.NewBrowser(ts.URL)
		s := signIn(t, ts, b, r)
		form := url.Values{"id_token_hint": {s.idToken}, "post_logout_redirect_uri": {byeURI}, "state": {"x"}}
		noCookies := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noCookies.PostForm(ts.URL+"/logout", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := resp.Location()
		if resp.StatusCode != http.StatusSeeOther || err != nil || loc.Path != "/logout" || loc.Query().Encode() != form.Encode() {
			t.Fatalf("cookieless POST: HTTP %d Location %v", resp.StatusCode, loc)
		}
		page := get(t, b, loc.String())
		if page.Location == nil || page.Location.String() != byeURI+"?state=x" {
			t.Fatalf("after the GET: HTTP %d Location %v", page.Status, page.Location)
		}
		if e := promptNone(t, b, r); e != "login_required" {
			t.Errorf("prompt=none after logout: %q", e)
		}
	})

	t.Run("already signed out", func(t *testing.T) {
		b := providertest.NewBrowser(ts.URL)
		s := signIn(t, ts, b, r)
		params := url.Values{"id_token_hint": {s.idToken}, "post_logout_redirect_uri": {byeURI}, "state": {"a"}}
		get(t, b, logoutURL(ts, params))
		// Again, from a browser with no session: nothing to ask, back to the client.
		page := get(t, b, logoutURL(ts, params))
		if page.Location == nil || page.Location.String() != byeURI+"?state=a" {
			t.Fatalf("second logout: HTTP %d Location %v", page.Status, page.Location)
		}
	})
}

// Requests that must not redirect, and those that must not even sign out.
func TestLogoutRefusals(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	r := logoutClient(t, ts, "lo", "", "")
	logoutClient(t, ts, "other", "", "")

	foreign, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	active, err := ts.Keys.Active("RS256")
	if err != nil {
		t.Fatal(err)
	}
	sign := func(key any, kid string, claims map[string]any) string {
		t.Helper()
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(claims)
		jws, err := s.Sign(body)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := jws.CompactSerialize()
		return out
	}
	unsigned := func(raw string) string {
		parts := strings.Split(raw, ".")
		return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + "."
	}

	// Hints that prove nothing: an error page, no redirect, still signed in.
	for _, tc := range []struct {
		name string
		hint func(s signedIn) string
	}{
		{"alg none", func(s signedIn) string { return unsigned(s.idToken) }},
		{"foreign key", func(s signedIn) string { return sign(foreign, active.ID, s.claims) }},
		{"foreign key, no kid", func(s signedIn) string { return sign(foreign, "", s.claims) }},
		{"payload changed", func(s signedIn) string {
			parts := strings.Split(s.idToken, ".")
			c := s.claims
			c["sub"] = "someone-else"
			body, _ := json.Marshal(c)
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(body) + "." + parts[2]
		}},
		{"our key, other issuer", func(s signedIn) string {
			c := s.claims
			c["iss"] = "https://elsewhere.example"
			return sign(active.Signer, active.ID, c)
		}},
		{"suite-style hint", func(s signedIn) string {
			return sign(foreign, "k1", map[string]any{"iss": "lo", "aud": ts.URL, "sub": "SubjectID", "exp": time.Now().Add(time.Hour).Unix()})
		}},
		{"garbage", func(signedIn) string { return "not-a-jwt" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := providertest.NewBrowser(ts.URL)
			s := signIn(t, ts, b, r)
			page := get(t, b, logoutURL(ts, url.Values{"id_token_hint": {tc.hint(s)}, "post_logout_redirect_uri": {byeURI}, "state": {"x"}}))
			if page.Location != nil || page.Status != http.StatusBadRequest || !strings.Contains(page.Body, "still signed in") {
				t.Fatalf("HTTP %d Location %v, want a 400 error page", page.Status, page.Location)
			}
			if e := promptNone(t, b, r); e != "" {
				t.Errorf("a refused logout signed the person out (prompt=none: %s)", e)
			}
		})
	}

	// client_id that contradicts the hint, or names no client.
	for _, tc := range []struct{ name, clientID string }{{"client_id mismatch", "other"}, {"unknown client_id", "nobody"}} {
		t.Run(tc.name, func(t *testing.T) {
			b := providertest.NewBrowser(ts.URL)
			s := signIn(t, ts, b, r)
			params := url.Values{"client_id": {tc.clientID}, "post_logout_redirect_uri": {byeURI}}
			if tc.clientID == "other" {
				params.Set("id_token_hint", s.idToken)
			}
			page := get(t, b, logoutURL(ts, params))
			if page.Location != nil || page.Status != http.StatusBadRequest {
				t.Fatalf("HTTP %d Location %v, want 400", page.Status, page.Location)
			}
			if e := promptNone(t, b, r); e != "" {
				t.Errorf("still signed in expected, prompt=none: %s", e)
			}
		})
	}

	// A valid hint with an unusable post_logout_redirect_uri: the person
	// is asked, then signed out and shown the page, never redirected.
	for _, target := range []string{"http://127.0.0.1:5555/elsewhere", byeURI + "?foo=bar", byeURI + "/"} {
		t.Run("unregistered "+target, func(t *testing.T) {
			b := providertest.NewBrowser(ts.URL)
			s := signIn(t, ts, b, r)
			page := get(t, b, logoutURL(ts, url.Values{"id_token_hint": {s.idToken}, "post_logout_redirect_uri": {target}, "state": {"x"}}))
			if page.Location != nil || page.Status != http.StatusOK || !strings.Contains(page.Body, "Sign out of Test Org?") ||
				!strings.Contains(page.Body, "not registered") {
				t.Fatalf("HTTP %d Location %v body %q", page.Status, page.Location, page.Body)
			}
			form, err := page.ParseForm()
			if err != nil {
				t.Fatal(err)
			}
			done, err := b.Submit(context.Background(), page, form, url.Values{"confirm": {"yes"}})
			if err != nil {
				t.Fatal(err)
			}
			if done.Location != nil || done.Status != http.StatusOK || !strings.Contains(done.Body, "You are signed out") ||
				!strings.Contains(done.Body, "not registered") {
				t.Fatalf("after confirming: HTTP %d Location %v", done.Status, done.Location)
			}
			if e := promptNone(t, b, r); e != "login_required" {
				t.Errorf("prompt=none after logout: %q", e)
			}
		})
	}
}

func TestLogoutConfirmation(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	r := logoutClient(t, ts, "lo", "", "")
	ctx := context.Background()

	for _, tc := range []struct {
		name       string
		params     url.Values
		wantTarget string
	}{
		{"no params", nil, ""},
		{"only state", url.Values{"state": {"s"}}, ""},
		{"no hint", url.Values{"post_logout_redirect_uri": {byeURI}, "state": {"s"}}, ""},
		{"client_id", url.Values{"client_id": {"lo"}, "post_logout_redirect_uri": {byeURI}, "state": {"s"}, "ui_locales": {"de"}}, byeURI + "?state=s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := providertest.NewBrowser(ts.URL)
			signIn(t, ts, b, r)
			page := get(t, b, logoutURL(ts, tc.params))
			question := "Sign out of Test Org?"
			if tc.params.Get("ui_locales") == "de" { // the pages speak the request's ui_locales
				question = "Von Test Org abmelden?"
			}
			if page.Location != nil || page.Status != http.StatusOK || !strings.Contains(page.Body, question) {
				t.Fatalf("HTTP %d Location %v: want the confirmation page", page.Status, page.Location)
			}
			if e := promptNone(t, b, r); e != "" {
				t.Fatalf("asking signed the person out already (prompt=none: %s)", e)
			}
			form, err := page.ParseForm()
			if err != nil {
				t.Fatal(err)
			}
			// A forged confirmation (another site cannot read the CSRF cookie).
			forged, err := b.Submit(ctx, page, form, url.Values{"csrf": {strings.Repeat("A", 43)}, "confirm": {"yes"}})
			if err != nil {
				t.Fatal(err)
			}
			if forged.Status != http.StatusForbidden {
				t.Fatalf("forged confirmation: HTTP %d", forged.Status)
			}
			if e := promptNone(t, b, r); e != "" {
				t.Fatalf("a forged confirmation signed the person out (prompt=none: %s)", e)
			}

			done, err := b.Submit(ctx, page, form, url.Values{"confirm": {"yes"}})
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantTarget == "" {
				if done.Location != nil || done.Status != http.StatusOK || !strings.Contains(done.Body, "You are signed out") {
					t.Fatalf("after confirming: HTTP %d Location %v", done.Status, done.Location)
				}
			} else if done.Location == nil || done.Location.String() != tc.wantTarget {
				t.Fatalf("after confirming: HTTP %d Location %v, want %s", done.Status, done.Location, tc.wantTarget)
			}
			if e := promptNone(t, b, r); e != "login_required" {
				t.Errorf("prompt=none after logout: %q", e)
			}
		})
	}

	t.Run("hint of another session", func(t *testing.T) {
		old := providertest.NewBrowser(ts.URL)
		s := signIn(t, ts, old, r)
		b := providertest.NewBrowser(ts.URL)
		signIn(t, ts, b, r)
		page := get(t, b, logoutURL(ts, url.Values{"id_token_hint": {s.idToken}, "post_logout_redirect_uri": {byeURI}}))
		if page.Status != http.StatusOK || !strings.Contains(page.Body, "Sign out of Test Org?") || !strings.Contains(page.Body, "lo asks to sign you out") {
			t.Fatalf("HTTP %d Location %v: want the confirmation page naming the client", page.Status, page.Location)
		}
	})

	t.Run("not signed in", func(t *testing.T) {
		b := providertest.NewBrowser(ts.URL)
		page := get(t, b, logoutURL(ts, nil))
		if page.Status != http.StatusOK || !strings.Contains(page.Body, "You are signed out") {
			t.Fatalf("HTTP %d: want the signed-out page", page.Status)
		}
	})
}

// backchannelRP records the logout tokens POSTed to it.
type backchannelRP struct {
	srv   *httptest.Server
	mu    sync.Mutex
	forms []url.Values
	ctype []string
}

func newBackchannelRP(t *testing.T, delay time.Duration) *backchannelRP {
	bc := &backchannelRP{}
	bc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.ParseForm() != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		bc.mu.Lock()
		bc.forms = append(bc.forms, r.PostForm)
		bc.ctype = append(bc.ctype, r.Header.Get("Content-Type"))
		bc.mu.Unlock()
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
		}
		w.Header().Set("Cache-Control", "no-store")
	}))
	t.Cleanup(bc.srv.Close)
	return bc
}

func (bc *backchannelRP) received() ([]url.Values, []string) {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	return slices.Clone(bc.forms), slices.Clone(bc.ctype)
}

// checkLogoutToken verifies a logout token as Back-Channel Logout 1.0
// §2.6 asks a client to: signature by a key of the JWKS (by kid), typ,
// iss, aud, iat, exp, jti, events, sub and sid, and no nonce.
func checkLogoutToken(t *testing.T, ts *testServer, raw, clientID string, idToken map[string]any) map[string]any {
	t.Helper()
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatalf("logout token: %v", err)
	}
	h := jws.Signatures[0].Header
	if h.ExtraHeaders[jose.HeaderType] != "logout+jwt" {
		t.Errorf("typ = %v, want logout+jwt", h.ExtraHeaders[jose.HeaderType])
	}
	resp, err := http.Get(ts.URL + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q: %d keys in the JWKS", h.KeyID, len(keys))
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("logout token signature: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	now := float64(time.Now().Unix())
	iat, _ := c["iat"].(float64)
	exp, _ := c["exp"].(float64)
	switch {
	case c["iss"] != ts.URL:
		t.Errorf("iss = %v", c["iss"])
	case c["aud"] != clientID && !slices.Contains(anySlice(c["aud"]), any(clientID)):
		t.Errorf("aud = %v, want %s", c["aud"], clientID)
	case iat == 0 || iat > now+5 || iat < now-60:
		t.Errorf("iat = %v", c["iat"])
	case exp <= now || exp > now+300:
		t.Errorf("exp = %v: want a short lifetime", c["exp"])
	case c["jti"] == nil || c["jti"] == "":
		t.Error("no jti")
	case c["nonce"] != nil:
		t.Error("a logout token must not have a nonce")
	case c["sub"] != idToken["sub"]:
		t.Errorf("sub = %v, want %v", c["sub"], idToken["sub"])
	case c["sid"] != idToken["sid"] || c["sid"] == nil:
		t.Errorf("sid = %v, want the ID token's %v", c["sid"], idToken["sid"])
	}
	events, _ := json.Marshal(c["events"])
	if string(events) != `{"http://schemas.openid.net/event/backchannel-logout":{}}` {
		t.Errorf("events = %s", events)
	}
	return c
}

func anySlice(v any) []any { s, _ := v.([]any); return s }

func TestBackchannelLogout(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	bc1, bc2 := newBackchannelRP(t, 0), newBackchannelRP(t, 0)
	one := logoutClient(t, ts, "one", bc1.srv.URL+"/bc?x=1", "")
	two := logoutClient(t, ts, "two", bc2.srv.URL+"/bc", "")
	idle := newBackchannelRP(t, 0)
	logoutClient(t, ts, "idle", idle.srv.URL+"/bc", "") // never signed in here

	b := providertest.NewBrowser(ts.URL)
	s1 := signIn(t, ts, b, one)
	s2 := signIn(t, ts, b, two)
	signIn(t, ts, b, one) // again: recorded once, told once

	page := get(t, b, logoutURL(ts, url.Values{"id_token_hint": {s1.idToken}, "post_logout_redirect_uri": {byeURI}, "state": {"z"}}))
	if page.Location == nil || page.Location.String() != byeURI+"?state=z" {
		t.Fatalf("logout: HTTP %d Location %v", page.Status, page.Location)
	}
	// Delivered before the redirect was sent.
	for _, c := range []struct {
		bc     *backchannelRP
		id     string
		claims map[string]any
	}{{bc1, "one", s1.claims}, {bc2, "two", s2.claims}} {
		forms, ctypes := c.bc.received()
		if len(forms) != 1 {
			t.Fatalf("client %s got %d back-channel requests, want 1", c.id, len(forms))
		}
		if ctypes[0] != "application/x-www-form-urlencoded" || len(forms[0]) != 1 {
			t.Errorf("client %s: Content-Type %q, form %v: want only logout_token", c.id, ctypes[0], forms[0])
		}
		checkLogoutToken(t, ts, forms[0].Get("logout_token"), c.id, c.claims)
	}
	if forms, _ := idle.received(); len(forms) != 0 {
		t.Error("a client that never signed in through the session was told")
	}
	if e := promptNone(t, b, one); e != "login_required" {
		t.Errorf("prompt=none after logout: %q", e)
	}
	// The logout token is not an ID token: refused as a hint.
	forms, _ := bc1.received()
	signIn(t, ts, b, one)
	hinted := get(t, b, logoutURL(ts, url.Values{"id_token_hint": {forms[0].Get("logout_token")}}))
	if hinted.Status != http.StatusBadRequest {
		t.Errorf("logout token as id_token_hint: HTTP %d, want 400", hinted.Status)
	}
}

// A client verifies logout tokens as it verifies its ID tokens: with the
// algorithm it registered.
func TestBackchannelLogoutTokenAlgorithm(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	bc := newBackchannelRP(t, 0)
	ts.addClient(t, clientspec.Spec{
		ID: "es", Secret: "es-secret", ClientSettings: storage.ClientSettings{
			RedirectURIs:             []string{webRedirect},
			Scopes:                   []string{"openid"},
			IDTokenSignedResponseAlg: "ES256",
			BackchannelLogoutURI:     bc.srv.URL + "/bc",
		},
	})
	b := providertest.NewBrowser(ts.URL)
	f := newRP(t, ts, "es", "es-secret", webRedirect, "openid").authorize(t, b, alicePass, "allow")
	status, _, body := postForm(t, ts.URL+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {f.code(t, ts.URL)},
		"redirect_uri": {webRedirect}, "code_verifier": {f.verifier}}, "es", "es-secret")
	if status != http.StatusOK {
		t.Fatalf("token: HTTP %d %v", status, body)
	}
	idToken, _ := body["id_token"].(string)
	get(t, b, logoutURL(ts, url.Values{"id_token_hint": {idToken}}))
	forms, _ := bc.received()
	if len(forms) != 1 {
		t.Fatalf("%d back-channel requests", len(forms))
	}
	raw := forms[0].Get("logout_token")
	checkLogoutToken(t, ts, raw, "es", jwtClaims(t, idToken))
	if jws, _ := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256}); jws == nil {
		t.Error("the logout token is not ES256 like the client's ID tokens")
	}
}

// A client that does not answer holds the person's logout up for a few
// seconds at most.
func TestBackchannelLogoutSlowClient(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	slow := newBackchannelRP(t, time.Minute)
	r := logoutClient(t, ts, "slow", slow.srv.URL+"/bc", "")
	b := providertest.NewBrowser(ts.URL)
	s := signIn(t, ts, b, r)
	start := time.Now()
	page := get(t, b, logoutURL(ts, url.Values{"id_token_hint": {s.idToken}, "post_logout_redirect_uri": {byeURI}}))
	if took := time.Since(start); took > 6*time.Second {
		t.Errorf("logout took %v with an unresponsive client", took)
	}
	if page.Location == nil || page.Location.String() != byeURI {
		t.Fatalf("logout: HTTP %d Location %v", page.Status, page.Location)
	}
	if forms, _ := slow.received(); len(forms) != 1 {
		t.Errorf("slow client got %d requests", len(forms))
	}
	if e := promptNone(t, b, r); e != "login_required" {
		t.Errorf("prompt=none after logout: %q", e)
	}
}

// frontchannelPage is what the signed-out page asks the browser to do.
type frontchannelPage struct {
	iframes []string
	next    string
	scripts []string
}

func parseFrontchannelPage(t *testing.T, body string) frontchannelPage {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var p frontchannelPage
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			attrs := map[string]string{}
			for _, a := range n.Attr {
				attrs[a.Key] = a.Val
			}
			switch {
			case n.Data == "iframe":
				p.iframes = append(p.iframes, attrs["src"])
				if _, hidden := attrs["hidden"]; !hidden {
					t.Errorf("iframe %s is not hidden", attrs["src"])
				}
			case n.Data == "a" && attrs["id"] == "continue":
				p.next = attrs["href"]
			case n.Data == "script":
				if n.FirstChild != nil {
					t.Error("inline script: the CSP allows none")
				}
				p.scripts = append(p.scripts, attrs["src"])
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return p
}

func TestFrontchannelLogout(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	fc1 := "http://127.0.0.1:5561/fc?keep=1"
	fc2 := "http://localhost:5562/frontchannel_logout"
	one := logoutClient(t, ts, "one", "", fc1)
	two := logoutClient(t, ts, "two", "", fc2)
	plain := logoutClient(t, ts, "plain", "", "")

	b := providertest.NewBrowser(ts.URL)
	s1 := signIn(t, ts, b, one)
	signIn(t, ts, b, two)
	signIn(t, ts, b, plain)
	sid := s1.claims["sid"].(string)

	page := get(t, b, logoutURL(ts, url.Values{"id_token_hint": {s1.idToken}, "post_logout_redirect_uri": {byeURI}, "state": {"fs"}}))
	if page.Location != nil || page.Status != http.StatusOK {
		t.Fatalf("HTTP %d Location %v: want the signed-out page with iframes", page.Status, page.Location)
	}
	fp := parseFrontchannelPage(t, page.Body)
	if len(fp.iframes) != 2 {
		t.Fatalf("iframes = %v, want one per client with a frontchannel_logout_uri", fp.iframes)
	}
	for i, want := range []string{"http://127.0.0.1:5561/fc", "http://localhost:5562/frontchannel_logout"} {
		u, err := url.Parse(fp.iframes[i])
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if u.Scheme+"://"+u.Host+u.Path != want || q.Get("iss") != ts.URL || q.Get("sid") != sid {
			t.Errorf("iframe %d = %s, want %s with iss=%s and sid=%s", i, fp.iframes[i], want, ts.URL, sid)
		}
		if i == 0 && q.Get("keep") != "1" {
			t.Errorf("iframe %s lost the URI's own query", fp.iframes[i])
		}
	}
	if fp.next != byeURI+"?state=fs" {
		t.Errorf("continue link = %q, want %s?state=fs", fp.next, byeURI)
	}
	if len(fp.scripts) != 1 || !strings.HasSuffix(fp.scripts[0], "/static/logout.js") {
		t.Errorf("scripts = %v", fp.scripts)
	}
	csp := page.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-src http://127.0.0.1:5561 http://localhost:5562") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP = %q: want frame-src for exactly the clients' origins", csp)
	}
	js := get(t, b, ts.URL+"/static/logout.js")
	if js.Status != http.StatusOK || !strings.Contains(js.Body, "continue") {
		t.Errorf("logout.js: HTTP %d", js.Status)
	}
	if e := promptNone(t, b, one); e != "login_required" {
		t.Errorf("prompt=none after logout: %q", e)
	}

	// Without a post_logout_redirect_uri: iframes, and nowhere to continue.
	s := signIn(t, ts, b, one)
	page = get(t, b, logoutURL(ts, url.Values{"id_token_hint": {s.idToken}}))
	fp = parseFrontchannelPage(t, page.Body)
	if len(fp.iframes) != 1 || fp.next != "" || len(fp.scripts) != 0 {
		t.Errorf("page without redirect: %+v", fp)
	}
	if csp := page.Header.Get("Content-Security-Policy"); !strings.HasSuffix(csp, "frame-src http://127.0.0.1:5561") {
		t.Errorf("CSP = %q", csp)
	}
	// A page with no iframes keeps the strict policy.
	page = get(t, b, logoutURL(ts, nil))
	if strings.Contains(page.Header.Get("Content-Security-Policy"), "frame-src") {
		t.Errorf("frame-src on a page without iframes: %q", page.Header.Get("Content-Security-Policy"))
	}
}

func TestLogoutDiscovery(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	resp, err := http.Get(ts.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["end_session_endpoint"] != ts.URL+"/logout" {
		t.Errorf("end_session_endpoint = %v", doc["end_session_endpoint"])
	}
	for _, k := range []string{"backchannel_logout_supported", "backchannel_logout_session_supported", "frontchannel_logout_supported", "frontchannel_logout_session_supported"} {
		if doc[k] != true {
			t.Errorf("%s = %v, want true", k, doc[k])
		}
	}
}
