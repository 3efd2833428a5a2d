package provider_test

import (
	"github.com/smallsso/provider/storage"

	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/providertest"
)

// netRecorder is the provider's outbound resolver and dialer in tests:
// names resolve from a fixed table (nothing is looked up for real), every
// address the provider asks to dial is recorded, and only loopback is
// really dialled. Even with the guard broken, no packet leaves the
// machine; the record shows what the guard let through.
type netRecorder struct {
	names map[string][]string
	mu    sync.Mutex
	dials []string
}

func newNetRecorder() *netRecorder {
	return &netRecorder{names: map[string][]string{
		"internal.test": {"10.0.0.5"},
		"meta.test":     {"169.254.169.254"},
		"v6.test":       {"fd00::1"},
		"lo.test":       {"127.0.0.1"},
		"cgnat.test":    {"100.64.0.9"},
		"partner.test":  {"10.0.0.9"},
		"mapped.test":   {"::ffff:192.168.1.1"},
	}}
}

func (n *netRecorder) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, a := range n.names[host] {
		out = append(out, netip.MustParseAddr(a))
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}

func (n *netRecorder) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	n.mu.Lock()
	n.dials = append(n.dials, address)
	n.mu.Unlock()
	return loopbackOnlyDial(ctx, network, address)
}

func (n *netRecorder) dialled() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.dials)
}

// reset forgets the dials recorded so far.
func (n *netRecorder) reset() {
	n.mu.Lock()
	n.dials = nil
	n.mu.Unlock()
}

func (n *netRecorder) deps(d *provider.Deps) {
	d.OutboundResolver = n
	d.OutboundDial = n.Dial
}

// wantNoDial fails when the guard let any address through.
func (n *netRecorder) wantNoDial(t *testing.T, what string) {
	t.Helper()
	if d := n.dialled(); len(d) > 0 {
		t.Errorf("%s: the provider tried to connect to %v", what, d)
	}
}

// wantDialled asserts the guard let address through (the test dialer then
// refused it).
func (n *netRecorder) wantDialled(t *testing.T, what, address string) {
	t.Helper()
	if !slices.Contains(n.dialled(), address) {
		t.Errorf("%s: dialled %v, want an attempt at %s", what, n.dialled(), address)
	}
}

// wantNoLeak asserts an error shown to a client says nothing of what the
// provider met on the network.
func wantNoLeak(t *testing.T, what, body string) {
	t.Helper()
	for _, s := range []string{"10.0.0", "169.254", "fd00", "127.0.0.1:1", "refuse", "dial", "lookup", "no such host", "HTTP", "status", "not allowed", "connect"} {
		if strings.Contains(body, s) {
			t.Errorf("%s: the error tells the client %q: %s", what, s, body)
		}
	}
}

const rpRedirect = "https://rp.example.org/cb"

// A registered client may not name private, loopback (other than for
// local development), link-local, multicast or unspecified addresses in
// the URLs the provider calls; the registration is refused at once when
// the URL names one literally.
func TestRegistrationRefusesPrivateAddresses(t *testing.T) {
	t.Parallel()
	rec := newNetRecorder()
	ts := newTestServerDeps(t, rec.deps, withRegistration(""))
	bad := []string{
		"https://10.0.0.5/x", "https://172.16.3.4/x", "https://192.168.1.1/x", "https://100.64.0.1/x",
		"https://[fd00::1]/x", "https://[::ffff:10.0.0.5]/x", "https://169.254.169.254/latest/meta-data/",
		"https://[fe80::1]/x", "https://224.0.0.1/x", "https://0.0.0.0/x", "https://[::]/x",
		// Loopback, but the client's redirect URIs are not all loopback.
		"http://127.0.0.1:1/x", "http://localhost:9/x", "http://[::1]:8/x",
	}
	for _, field := range []string{"jwks_uri", "backchannel_logout_uri", "request_uris"} {
		for _, u := range bad {
			md := map[string]any{"redirect_uris": []string{rpRedirect}, field: u}
			if field == "request_uris" {
				md[field] = []string{u}
			}
			status, _, body := sendJSON(t, http.MethodPost, ts.URL+"/register", md, "")
			if status != http.StatusBadRequest || body["error"] != "invalid_client_metadata" {
				t.Errorf("%s %s: HTTP %d %v, want invalid_client_metadata", field, u, status, body)
			}
		}
	}
	// Local development: on a loopback issuer, a client whose redirect
	// URIs are all loopback may name loopback, and nothing private.
	for _, u := range []string{"http://127.0.0.1:1/x", "http://localhost:9/x"} {
		ts.register(t, map[string]any{"redirect_uris": []string{webRedirect}, "jwks_uri": u}, "")
	}
	status, _, body := sendJSON(t, http.MethodPost, ts.URL+"/register", map[string]any{"redirect_uris": []string{webRedirect}, "jwks_uri": "https://10.0.0.5/x"}, "")
	if status != http.StatusBadRequest || body["error"] != "invalid_client_metadata" {
		t.Errorf("loopback client, private jwks_uri: HTTP %d %v", status, body)
	}
	rec.wantNoDial(t, "registration")
}

// On an issuer that is not loopback, no registered client may name
// loopback, whatever its redirect URIs.
func TestRegistrationLoopbackOnlyForLoopbackIssuer(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withRegistration(""), func(c *provider.Config) { c.Issuer = "https://sso.example.org" })
	status, _, body := sendJSON(t, http.MethodPost, ts.srv.URL+"/register", map[string]any{"redirect_uris": []string{webRedirect}, "jwks_uri": "http://127.0.0.1:1/x"}, "")
	if status != http.StatusBadRequest || body["error"] != "invalid_client_metadata" {
		t.Errorf("HTTP %d %v, want invalid_client_metadata", status, body)
	}
}

// Names are checked where it counts: at connect time, on the addresses
// they resolve to. A registered client's jwks_uri, request_uri and
// back-channel logout URI that resolve to private, link-local or loopback
// addresses are never dialled, and the client learns only that the URL
// could not be used.
func TestRegisteredURLsNeverReachPrivateAddresses(t *testing.T) {
	t.Parallel()
	rec := newNetRecorder()
	ts := newTestServerDeps(t, rec.deps, withRegistration(""), func(c *provider.Config) {
		c.Outbound.AllowedHosts = []string{"partner.test"}
	})
	key := newClientKey(t, "k1", jose.RS256)
	tokenWithAssertion := func(id string) (int, map[string]any, string) {
		form := url.Values{
			"grant_type": {"authorization_code"}, "code": {"bogus"}, "redirect_uri": {rpRedirect},
			"client_assertion_type": {assertionType}, "client_assertion": {key.sign(t, assertionClaims(ts, id, time.Now()))},
		}
		status, _, body := postForm(t, ts.URL+"/token", form, "", "")
		return status, body, fmt.Sprint(body)
	}

	t.Run("jwks_uri", func(t *testing.T) {
		for _, host := range []string{"internal.test", "meta.test", "v6.test", "lo.test", "cgnat.test", "mapped.test"} {
			rec.reset()
			c := ts.register(t, map[string]any{
				"redirect_uris": []string{rpRedirect}, "token_endpoint_auth_method": "private_key_jwt",
				"jwks_uri": "https://" + host + "/jwks",
			}, "")
			status, body, raw := tokenWithAssertion(c.ID)
			if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
				t.Errorf("%s: HTTP %d %v, want invalid_client", host, status, body)
			}
			wantNoLeak(t, host, raw)
			rec.wantNoDial(t, host)
		}
	})

	t.Run("allowed_hosts", func(t *testing.T) {
		rec.reset()
		c := ts.register(t, map[string]any{
			"redirect_uris": []string{rpRedirect}, "token_endpoint_auth_method": "private_key_jwt",
			"jwks_uri": "https://partner.test/jwks",
		}, "")
		tokenWithAssertion(c.ID)
		rec.wantDialled(t, "allowed host", "10.0.0.9:443")
	})

	t.Run("operator client", func(t *testing.T) {
		rec.reset()
		ts.addClient(t, clientspec.Spec{
			ID: "op-private", ClientSettings: storage.ClientSettings{
				RedirectURIs:            []string{rpRedirect},
				TokenEndpointAuthMethod: "private_key_jwt",
				JWKSURI:                 "https://internal.test/jwks",
				GrantTypes:              []string{"authorization_code"},
				Scopes:                  []string{"openid"},
			},
		})
		tokenWithAssertion("op-private")
		rec.wantDialled(t, "operator client", "10.0.0.5:443")
		rec.reset()
		ts.addClient(t, clientspec.Spec{
			ID: "op-meta", ClientSettings: storage.ClientSettings{
				RedirectURIs:            []string{rpRedirect},
				TokenEndpointAuthMethod: "private_key_jwt",
				JWKSURI:                 "https://meta.test/jwks",
				GrantTypes:              []string{"authorization_code"},
				Scopes:                  []string{"openid"},
			},
		})
		tokenWithAssertion("op-meta")
		rec.wantNoDial(t, "operator client, link-local")
	})

	t.Run("request_uri", func(t *testing.T) {
		for _, host := range []string{"internal.test", "meta.test", "v6.test", "lo.test"} {
			rec.reset()
			reqURI := "https://" + host + "/request.jwt"
			c := ts.register(t, map[string]any{"redirect_uris": []string{rpRedirect}, "token_endpoint_auth_method": "none", "request_uris": []string{reqURI}}, "")
			q := url.Values{
				"client_id": {c.ID}, "redirect_uri": {rpRedirect}, "response_type": {"code"}, "scope": {"openid"},
				"state": {"s"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())},
				"code_challenge_method": {"S256"}, "request_uri": {reqURI},
			}
			page := get(t, providertest.NewBrowser(ts.URL), ts.URL+"/authorize?"+q.Encode())
			if page.Location == nil || page.Location.Query().Get("error") != "invalid_request_uri" {
				t.Fatalf("%s: HTTP %d Location %v, want invalid_request_uri", host, page.Status, page.Location)
			}
			if d := page.Location.Query().Get("error_description"); !strings.Contains(d, "could not be used") {
				t.Errorf("%s: error_description %q", host, d)
			}
			wantNoLeak(t, host, page.Location.String())
			rec.wantNoDial(t, host)
		}
	})

	t.Run("backchannel_logout_uri", func(t *testing.T) {
		rec.reset()
		c := ts.register(t, map[string]any{
			"redirect_uris": []string{rpRedirect}, "token_endpoint_auth_method": "none",
			"backchannel_logout_uri": "https://internal.test/bc",
		}, "")
		b := providertest.NewBrowser(ts.URL)
		newRP(t, ts, c.ID, "", rpRedirect, "openid").authorize(t, b, alicePass, "allow")
		web := signIn(t, ts, b, newRP(t, ts, "web", "web-secret", webRedirect, "openid"))
		page := get(t, b, logoutURL(ts, url.Values{"id_token_hint": {web.idToken}}))
		if page.Status != http.StatusOK {
			t.Fatalf("logout: HTTP %d", page.Status)
		}
		rec.wantNoDial(t, "back-channel logout")
	})

	t.Run("fosite's PAR key fetch", func(t *testing.T) {
		// fosite verifies a request object pushed to /par itself, and
		// fetches the client's jwks_uri for it: through the guard, with
		// the client's policy.
		par := func(id, secret string) (int, map[string]any) {
			obj := key.sign(t, map[string]any{
				"iss": id, "aud": ts.URL, "client_id": id, "response_type": "code", "scope": "openid",
				"redirect_uri": rpRedirect, "exp": time.Now().Add(time.Minute).Unix(),
			})
			form := url.Values{
				"client_id": {id}, "response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {rpRedirect}, "request": {obj},
				"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"},
			}
			status, _, body := postForm(t, ts.URL+"/par", form, id, secret)
			return status, body
		}
		rec.reset()
		c := ts.register(t, map[string]any{"redirect_uris": []string{rpRedirect}, "jwks_uri": "https://internal.test/jwks"}, "")
		status, body := par(c.ID, c.Secret)
		if status < 400 || status >= 500 {
			t.Errorf("registered client: HTTP %d %v, want a 4xx", status, body)
		}
		wantNoLeak(t, "PAR", fmt.Sprint(body))
		rec.wantNoDial(t, "registered client's request object at /par")

		rec.reset()
		ts.addClient(t, clientspec.Spec{
			ID: "op-par", Secret: "op-par-secret-0123456789", ClientSettings: storage.ClientSettings{
				RedirectURIs: []string{rpRedirect},
				JWKSURI:      "https://internal.test/par-jwks",
				GrantTypes:   []string{"authorization_code"},
				Scopes:       []string{"openid"},
			},
		})
		par("op-par", "op-par-secret-0123456789")
		rec.wantDialled(t, "operator client's request object at /par", "10.0.0.5:443")
	})

	for _, a := range rec.dialled() {
		if a != "10.0.0.5:443" && a != "10.0.0.9:443" {
			t.Errorf("unexpected dial %s", a)
		}
	}
}
