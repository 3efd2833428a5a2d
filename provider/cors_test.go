package provider_test

import (
	"github.com/smallsso/provider/storage"

	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/providertest"
)

const (
	spaOrigin  = "http://127.0.0.1:5556" // the origin of spaRedirect
	evilOrigin = "https://evil.example"
)

// corsTTL is how long the provider caches the allowed origins; tests that
// add a client at run time move the provider's clock past it.
const corsTTL = time.Hour

func newCORSServer(t *testing.T) *testServer {
	ts, _ := newCORSServerClock(t)
	return ts
}

// newCORSServerClock is newCORSServer on a clock the test moves.
func newCORSServerClock(t *testing.T) (*testServer, *testClock) {
	clock := &testClock{}
	ts := newTestServerDeps(t, func(d *provider.Deps) { d.Now = clock.Now },
		func(c *provider.Config) { c.CORSOriginsTTL = corsTTL })
	return ts, clock
}

// browserFetch sends what a browser sends for fetch() from origin, and
// returns the status and headers.
func browserFetch(t *testing.T, method, endpoint, origin string, header http.Header, form url.Values) (int, http.Header) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, endpoint, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// preflight sends a CORS preflight; headers are lower case and sorted, as
// browsers send them (Fetch standard, CORS-unsafe request-header names).
func preflight(t *testing.T, endpoint, origin, method string, headers ...string) (int, http.Header) {
	t.Helper()
	h := http.Header{"Access-Control-Request-Method": {method}}
	if len(headers) > 0 {
		h.Set("Access-Control-Request-Headers", strings.Join(headers, ","))
	}
	return browserFetch(t, http.MethodOptions, endpoint, origin, h, nil)
}

func varies(h http.Header, name string) bool {
	for _, v := range h.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), name) {
				return true
			}
		}
	}
	return false
}

// checkAllowed asserts an answer a browser would accept for origin, and no
// more than that: the exact origin, never *, and no credentials.
func checkAllowed(t *testing.T, what string, h http.Header, origin string) {
	t.Helper()
	if got := h.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != origin {
		t.Errorf("%s: Access-Control-Allow-Origin = %q, want exactly %q", what, got, origin)
	}
	if h.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("%s: Access-Control-Allow-Credentials is set; these endpoints take no cookies", what)
	}
	if !varies(h, "Origin") {
		t.Errorf("%s: Vary = %q, want Origin", what, h.Values("Vary"))
	}
}

func checkNoCORS(t *testing.T, what string, h http.Header) {
	t.Helper()
	for k := range h {
		if strings.HasPrefix(k, "Access-Control-Allow-") || k == "Access-Control-Expose-Headers" {
			t.Errorf("%s: %s = %q, want no CORS headers", what, k, h.Values(k))
		}
	}
}

func TestCORSPreflight(t *testing.T) {
	t.Parallel()
	ts := newCORSServer(t)
	for _, tc := range []struct {
		path, method string
		headers      []string
	}{
		{"/token", "POST", []string{"content-type"}},
		{"/revoke", "POST", []string{"content-type"}},
		{"/userinfo", "GET", []string{"authorization"}},
		{"/userinfo", "POST", []string{"authorization", "content-type"}},
		{"/jwks", "GET", nil},
		{"/.well-known/openid-configuration", "GET", nil},
	} {
		t.Run(tc.path+" "+tc.method, func(t *testing.T) {
			status, h := preflight(t, ts.URL+tc.path, spaOrigin, tc.method, tc.headers...)
			if status != http.StatusNoContent {
				t.Errorf("HTTP %d, want 204", status)
			}
			checkAllowed(t, "preflight", h, spaOrigin)
			if !slices.Contains(strings.Split(h.Get("Access-Control-Allow-Methods"), ", "), tc.method) {
				t.Errorf("Access-Control-Allow-Methods = %q, want %s", h.Get("Access-Control-Allow-Methods"), tc.method)
			}
			for _, want := range tc.headers {
				if !strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), strings.ToLower(want)) {
					t.Errorf("Access-Control-Allow-Headers = %q, want %s", h.Get("Access-Control-Allow-Headers"), want)
				}
			}
			if h.Get("Access-Control-Max-Age") == "" {
				t.Error("no Access-Control-Max-Age: every request would be preflighted")
			}
		})
	}

	t.Run("methods and headers not offered", func(t *testing.T) {
		_, h := preflight(t, ts.URL+"/token", spaOrigin, "DELETE")
		checkNoCORS(t, "DELETE", h)
		_, h = preflight(t, ts.URL+"/token", spaOrigin, "POST", "x-custom")
		checkNoCORS(t, "X-Custom header", h)
	})

	t.Run("plain OPTIONS", func(t *testing.T) {
		status, h := browserFetch(t, http.MethodOptions, ts.URL+"/token", "", nil, nil)
		if status != http.StatusNoContent || !strings.Contains(h.Get("Allow"), "POST") {
			t.Errorf("OPTIONS without preflight headers: HTTP %d Allow %q", status, h.Get("Allow"))
		}
	})
}

// A single-page app runs the code flow with PKCE and redeems the code with
// fetch() from its own origin.
func TestCORSTokenFromSPA(t *testing.T) {
	t.Parallel()
	ts := newCORSServer(t)
	rp := newRP(t, ts, "spa", "", spaRedirect, "openid")
	f := rp.authorize(t, providertest.NewBrowser(ts.URL), alicePass, "allow")
	form := url.Values{
		"grant_type": {"authorization_code"}, "code": {f.code(t, ts.URL)}, "redirect_uri": {spaRedirect},
		"client_id": {"spa"}, "code_verifier": {f.verifier},
	}
	status, h := browserFetch(t, http.MethodPost, ts.URL+"/token", spaOrigin, nil, form)
	if status != http.StatusOK {
		t.Fatalf("token: HTTP %d", status)
	}
	checkAllowed(t, "token", h, spaOrigin)

	// The app must be able to read errors too.
	status, h = browserFetch(t, http.MethodPost, ts.URL+"/token", spaOrigin, nil, form)
	if status != http.StatusBadRequest {
		t.Fatalf("redeeming the code twice: HTTP %d, want 400", status)
	}
	checkAllowed(t, "token error", h, spaOrigin)
}

func TestCORSDiscoveryAndJWKS(t *testing.T) {
	t.Parallel()
	ts := newCORSServer(t)
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server", "/jwks"} {
		status, h := browserFetch(t, http.MethodGet, ts.URL+path, spaOrigin, nil, nil)
		if status != http.StatusOK {
			t.Fatalf("%s: HTTP %d", path, status)
		}
		checkAllowed(t, path, h, spaOrigin)
		// These are cacheable: a shared cache must not hand the answer
		// without CORS headers to a browser, or the reverse.
		_, h = browserFetch(t, http.MethodGet, ts.URL+path, "", nil, nil)
		checkNoCORS(t, path+" without Origin", h)
		if !varies(h, "Origin") {
			t.Errorf("%s without Origin: Vary = %q, want Origin", path, h.Values("Vary"))
		}
	}
}

func TestCORSUserinfo(t *testing.T) {
	t.Parallel()
	ts := newCORSServer(t)
	status, h := browserFetch(t, http.MethodGet, ts.URL+"/userinfo", spaOrigin, http.Header{"Authorization": {"Bearer not-a-token"}}, nil)
	if status != http.StatusUnauthorized {
		t.Fatalf("userinfo with a bad token: HTTP %d", status)
	}
	checkAllowed(t, "userinfo", h, spaOrigin)
	if !strings.Contains(strings.ToLower(h.Get("Access-Control-Expose-Headers")), "www-authenticate") {
		t.Errorf("Access-Control-Expose-Headers = %q, want WWW-Authenticate readable by the app", h.Get("Access-Control-Expose-Headers"))
	}
	if h.Get("WWW-Authenticate") == "" {
		t.Error("no WWW-Authenticate on a 401")
	}
}

func TestCORSUnregisteredOrigin(t *testing.T) {
	t.Parallel()
	ts := newCORSServer(t)
	for _, origin := range []string{evilOrigin, "null", "http://127.0.0.1:5557", "https://127.0.0.1:5556"} {
		status, h := preflight(t, ts.URL+"/token", origin, "POST", "content-type")
		if status/100 != 2 {
			t.Errorf("%s preflight: HTTP %d", origin, status)
		}
		checkNoCORS(t, origin+" preflight", h)
		_, h = browserFetch(t, http.MethodPost, ts.URL+"/token", origin, nil, url.Values{"grant_type": {"client_credentials"}})
		checkNoCORS(t, origin+" POST /token", h)
		_, h = browserFetch(t, http.MethodGet, ts.URL+"/jwks", origin, nil, nil)
		checkNoCORS(t, origin+" GET /jwks", h)
		_, h = browserFetch(t, http.MethodGet, ts.URL+"/.well-known/openid-configuration", origin, nil, nil)
		checkNoCORS(t, origin+" GET discovery", h)
	}
}

// Introspection is for resource servers, not browsers: no CORS even for a
// registered origin.
func TestCORSNotOnIntrospection(t *testing.T) {
	t.Parallel()
	ts := newCORSServer(t)
	status, h := preflight(t, ts.URL+"/introspect", spaOrigin, "POST", "authorization")
	if status == http.StatusNoContent || status == http.StatusOK {
		t.Errorf("introspection preflight: HTTP %d", status)
	}
	checkNoCORS(t, "introspection preflight", h)
	_, h = browserFetch(t, http.MethodPost, ts.URL+"/introspect", spaOrigin, nil, url.Values{"token": {"x"}})
	checkNoCORS(t, "introspection", h)
	_, h = browserFetch(t, http.MethodGet, ts.URL+"/authorize", spaOrigin, nil, nil)
	checkNoCORS(t, "authorize", h)
}

// allowedAfterTTL moves the provider's clock past the origin cache's
// lifetime and checks that origin is honoured at the next request.
func allowedAfterTTL(t *testing.T, ts *testServer, clock *testClock, origin string) {
	t.Helper()
	clock.Advance(corsTTL)
	_, h := browserFetch(t, http.MethodGet, ts.URL+"/jwks", origin, nil, nil)
	checkAllowed(t, "after the origin cache expired", h, origin)
}

func TestCORSClientAddedAtRuntime(t *testing.T) {
	t.Parallel()
	ts, clock := newCORSServerClock(t)
	const origin = "http://127.0.0.1:7001"
	_, h := browserFetch(t, http.MethodGet, ts.URL+"/jwks", origin, nil, nil)
	checkNoCORS(t, "before the client exists", h)

	ts.addClient(t, clientspec.Spec{
		ID: "spa-late", ClientSettings: storage.ClientSettings{
			Public:       true,
			GrantTypes:   []string{"authorization_code"},
			RedirectURIs: []string{origin + "/cb", "https://port.example.org:443/cb", "com.example.app:/cb", "urn:ietf:wg:oauth:2.0:oob"},
		},
	})
	// The origins are cached until corsTTL has passed on the provider's clock.
	_, h = browserFetch(t, http.MethodGet, ts.URL+"/jwks", origin, nil, nil)
	checkNoCORS(t, "while the origin cache is fresh", h)
	allowedAfterTTL(t, ts, clock, origin)
	// The default port is not part of a serialised origin.
	_, h = browserFetch(t, http.MethodGet, ts.URL+"/jwks", "https://port.example.org", nil, nil)
	checkAllowed(t, "default port", h, "https://port.example.org")

	// And its preflight to the token endpoint passes now.
	_, h = preflight(t, ts.URL+"/token", origin, "POST", "content-type")
	checkAllowed(t, "preflight", h, origin)
}

func TestCORSAllowedOriginsReplaceDefault(t *testing.T) {
	t.Parallel()
	ts, clock := newCORSServerClock(t)
	ts.addClient(t, clientspec.Spec{
		ID: "spa-cdn", ClientSettings: storage.ClientSettings{
			Public:         true,
			GrantTypes:     []string{"authorization_code"},
			RedirectURIs:   []string{"https://app.example.org/callback"},
			AllowedOrigins: []string{"https://static.example.net"},
		},
	})
	allowedAfterTTL(t, ts, clock, "https://static.example.net")
	_, h := browserFetch(t, http.MethodGet, ts.URL+"/jwks", "https://app.example.org", nil, nil)
	checkNoCORS(t, "the redirect URI's origin once allowed_origins is set", h)
	// Other clients keep their defaults.
	_, h = browserFetch(t, http.MethodGet, ts.URL+"/jwks", spaOrigin, nil, nil)
	checkAllowed(t, "spa", h, spaOrigin)
}
