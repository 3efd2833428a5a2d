package provider_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/smallsso/provider/provider"
)

// A host in outbound.allowed_hosts may reach private addresses, but
// loopback only when the listed entry itself names loopback: a name below
// a "*.corp.test" pattern, or a listed name, that resolves to 127.0.0.1
// is never dialled. Transition and reserved addresses are refused for
// registered clients whatever they are listed as.
func TestOutboundAllowedHostsLoopback(t *testing.T) {
	t.Parallel()
	rec := newNetRecorder()
	rec.names["evil.corp.test"] = []string{"127.0.0.1"}
	rec.names["evil6.corp.test"] = []string{"::1"}
	rec.names["wiki.corp.test"] = []string{"10.0.0.8"}
	rec.names["partner.test"] = []string{"127.0.0.1"}
	rec.names["six.test"] = []string{"2002:a00:5::1"}
	rec.names["teredo.test"] = []string{"2001:0:4136:e378::1"}
	rec.names["compat.test"] = []string{"::7f00:1"}
	rec.names["nat64.test"] = []string{"64:ff9b:1:7f00:1::"}
	rec.names["bench.test"] = []string{"198.18.0.1"}
	rec.names["reserved.test"] = []string{"240.0.0.1"}
	rec.names["localhost"] = []string{"127.0.0.1"}
	ts := newTestServerDeps(t, rec.deps, withRegistration(""), func(c *provider.Config) {
		c.Outbound.AllowedHosts = []string{"*.corp.test", "partner.test", "localhost"}
	})
	key := newClientKey(t, "k1", jose.RS256)
	fetchKeys := func(jwksURI string) {
		t.Helper()
		c := ts.register(t, map[string]any{
			"redirect_uris": []string{rpRedirect}, "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": jwksURI,
		}, "")
		form := url.Values{
			"grant_type": {"authorization_code"}, "code": {"bogus"}, "redirect_uri": {rpRedirect},
			"client_assertion_type": {assertionType}, "client_assertion": {key.sign(t, assertionClaims(ts, c.ID, time.Now()))},
		}
		status, _, body := postForm(t, ts.URL+"/token", form, "", "")
		if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Errorf("%s: HTTP %d %v, want invalid_client", jwksURI, status, body)
		}
		wantNoLeak(t, jwksURI, fmt.Sprint(body))
	}
	for _, host := range []string{"evil.corp.test", "evil6.corp.test", "partner.test", "six.test", "teredo.test", "compat.test", "nat64.test", "bench.test", "reserved.test"} {
		rec.reset()
		fetchKeys("https://" + host + "/jwks")
		rec.wantNoDial(t, host)
	}
	// A private address below the pattern is the operator's choice.
	rec.reset()
	fetchKeys("https://wiki.corp.test/jwks")
	rec.wantDialled(t, "wiki.corp.test", "10.0.0.8:443")
	// An entry that names loopback opens loopback (nothing listens on
	// port 1; only loopback is dialled).
	rec.reset()
	fetchKeys("http://localhost:1/jwks")
	rec.wantDialled(t, "localhost", "127.0.0.1:1")
}
