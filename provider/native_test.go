package provider_test

// Native apps (RFC 8252): loopback redirects on any port, private-use URI
// schemes, and the out-of-band code page for clients that opt in.

import (
	"github.com/smallsso/provider/storage"

	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/providertest"
)

func nativeClient(ts *testServer, t *testing.T, id string, redirects ...string) {
	ts.addClient(t, clientspec.Spec{ID: id, ClientSettings: storage.ClientSettings{
		Public:       true,
		RedirectURIs: redirects,
		GrantTypes:   []string{"authorization_code", "refresh_token"},
		Scopes:       []string{"openid", "profile"},
	}})
}

func authURL(ts *testServer, clientID, redirect, verifier string, extra url.Values) string {
	q := url.Values{
		"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect},
		"scope": {"openid"}, "state": {"state-of-" + clientID},
	}
	if verifier != "" {
		q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(verifier))
		q.Set("code_challenge_method", "S256")
	}
	for k, v := range extra {
		q[k] = v
	}
	return ts.URL + "/authorize?" + q.Encode()
}

// RFC 8252 §7.3: the port of a loopback redirect is chosen at run time, so
// it is not part of the match; everything else is.
func TestLoopbackRedirectAnyPort(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	nativeClient(ts, t, "cli", "http://127.0.0.1/callback", "http://[::1]/callback")
	ctx := context.Background()

	for _, redirect := range []string{"http://127.0.0.1:49152/callback", "http://127.0.0.1:8/callback", "http://[::1]:61000/callback"} {
		verifier := oauth2.GenerateVerifier()
		loc, err := providertest.NewBrowser(ts.URL).SignIn(ctx, authURL(ts, "cli", redirect, verifier, nil), "alice", alicePass, "allow")
		if err != nil {
			t.Fatalf("%s: %v", redirect, err)
		}
		if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirect || loc.Query().Get("code") == "" {
			t.Fatalf("redirected to %s, want %s with a code", loc, redirect)
		}
		status, _, body := postForm(t, ts.URL+"/token", url.Values{
			"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "client_id": {"cli"},
			"redirect_uri": {redirect}, "code_verifier": {verifier},
		}, "", "")
		if status != http.StatusOK || body["access_token"] == nil {
			t.Fatalf("%s: token exchange: HTTP %d %v", redirect, status, body)
		}
	}

	// A different path, host name or scheme is a different redirect URI:
	// the person sees an error page and is not sent anywhere.
	for _, redirect := range []string{
		"http://127.0.0.1:49152/other", "http://127.0.0.1:49152/callback/x", "http://localhost:49152/callback",
		"https://127.0.0.1:49152/callback", "http://127.0.0.2:49152/callback",
	} {
		page, err := providertest.NewBrowser(ts.URL).Get(ctx, authURL(ts, "cli", redirect, oauth2.GenerateVerifier(), nil))
		if err != nil {
			t.Fatal(err)
		}
		if page.Location != nil || page.Status != http.StatusBadRequest || !strings.Contains(page.Body, "invalid") {
			t.Errorf("%s: HTTP %d, location %v, want an error page", redirect, page.Status, page.Location)
		}
	}
}

// A public client without PKCE is refused before anyone signs in.
func TestNativeClientWithoutPKCE(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	nativeClient(ts, t, "cli", "http://127.0.0.1/callback")
	page, err := providertest.NewBrowser(ts.URL).Get(context.Background(), authURL(ts, "cli", "http://127.0.0.1:5000/callback", "", nil))
	if err != nil {
		t.Fatal(err)
	}
	if page.Location == nil {
		t.Fatalf("HTTP %d, want an error redirect", page.Status)
	}
	if q := page.Location.Query(); q.Get("error") != "invalid_request" || !strings.Contains(q.Get("error_description"), "PKCE") || q.Get("state") != "state-of-cli" {
		t.Fatalf("redirect %s, want invalid_request about PKCE with state", page.Location)
	}
}

// RFC 8252 §7.1: an app's private-use scheme is redirected to like any URI.
func TestPrivateUseSchemeRedirect(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	const redirect = "org.example.app:/oauth2redirect"
	nativeClient(ts, t, "mobile", redirect)
	verifier := oauth2.GenerateVerifier()
	loc, err := providertest.NewBrowser(ts.URL).SignIn(context.Background(), authURL(ts, "mobile", redirect, verifier, nil), "alice", alicePass, "allow")
	if err != nil {
		t.Fatal(err)
	}
	if loc.Scheme != "org.example.app" || loc.Path != "/oauth2redirect" || loc.Query().Get("code") == "" {
		t.Fatalf("redirect %s", loc)
	}
	status, _, body := postForm(t, ts.URL+"/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "client_id": {"mobile"},
		"redirect_uri": {redirect}, "code_verifier": {verifier},
	}, "", "")
	if status != http.StatusOK {
		t.Fatalf("token exchange: HTTP %d %v", status, body)
	}
}

// The out-of-band URN shows the code on a page with a copy button, for a
// client that registered it; for any other client it is an unregistered
// redirect URI.
func TestOOBCodePage(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	secret := ts.addClient(t, clientspec.Spec{ID: "script", Secret: "script-secret-0123456789",
		ClientSettings: storage.ClientSettings{
			RedirectURIs: []string{"urn:ietf:wg:oauth:2.0:oob"},
			GrantTypes:   []string{"authorization_code", "refresh_token"},
			Scopes:       []string{"read"},
		}})
	ctx := context.Background()

	page, err := providertest.NewBrowser(ts.URL).SignInPage(ctx, authURL(ts, "script", "urn:ietf:wg:oauth:2.0:oob", "", url.Values{"scope": {"read"}}), "alice", alicePass, "allow")
	if err != nil {
		t.Fatal(err)
	}
	code := page.InputValue("code")
	if page.Status != http.StatusOK || page.Location != nil || code == "" {
		t.Fatalf("HTTP %d, location %v, code %q: %.300s", page.Status, page.Location, code, page.Body)
	}
	if !strings.Contains(page.Body, `id="copy"`) || !strings.Contains(page.Body, "/static/copy.js") {
		t.Error("the code page has no copy button")
	}
	if cc := page.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q on a page carrying a code", cc)
	}
	status, _, body := postForm(t, ts.URL+"/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"urn:ietf:wg:oauth:2.0:oob"},
	}, "script", secret)
	if status != http.StatusOK || body["access_token"] == nil || body["refresh_token"] == nil {
		t.Fatalf("token exchange: HTTP %d %v", status, body)
	}

	// The copy script is served, under the CSP that allows only our scripts.
	js, err := http.Get(ts.URL + "/static/copy.js")
	if err != nil {
		t.Fatal(err)
	}
	js.Body.Close()
	if js.StatusCode != http.StatusOK {
		t.Errorf("copy.js: HTTP %d", js.StatusCode)
	}
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}

	// Denying shows the error on a page: there is nowhere to redirect.
	page, err = providertest.NewBrowser(ts.URL).SignInPage(ctx, authURL(ts, "script", "urn:ietf:wg:oauth:2.0:oob", "", url.Values{"scope": {"read"}, "prompt": {"consent"}}), "alice", alicePass, "deny")
	if err != nil {
		t.Fatal(err)
	}
	if page.Location != nil || !strings.Contains(page.Body, "access_denied") {
		t.Errorf("deny: HTTP %d location %v, want an error page with access_denied", page.Status, page.Location)
	}

	// The web client never registered the URN.
	page, err = providertest.NewBrowser(ts.URL).Get(ctx, authURL(ts, "web", "urn:ietf:wg:oauth:2.0:oob", oauth2.GenerateVerifier(), nil))
	if err != nil {
		t.Fatal(err)
	}
	if page.Status != http.StatusBadRequest || page.Location != nil || page.InputValue("code") != "" {
		t.Errorf("OOB for a client without it: HTTP %d, location %v", page.Status, page.Location)
	}
}
