package provider_test

import (
	"html"
	"net/url"
	"testing"

	"github.com/smallsso/provider/provider/providertest"
)

// Cancel on the sign-out confirmation links to the client_uri of an openly
// registered client only when its host is one registration trusts for
// redirects (registration.allowed_redirect_hosts); else to /account. (A
// return address that is not registered makes /logout ask.)
func TestLogoutCancelOpenClientHome(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		hosts []string
		want  string
	}{
		{"untrusted host", nil, "/account"},
		{"other trusted host", []string{"app.example.org"}, "/account"},
		{"trusted host", []string{"*.example.net"}, "https://phish.example.net/login"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, withOpenRegistration(tc.hosts...))
			c := ts.register(t, map[string]any{"redirect_uris": []string{webRedirect}, "client_name": "Stranger",
				"client_uri": "https://phish.example.net/login"}, "")
			b := providertest.NewBrowser(ts.URL)
			s := signIn(t, ts, b, newRP(t, ts, c.ID, c.Secret, webRedirect, "openid"))
			page := get(t, b, logoutURL(ts, url.Values{"id_token_hint": {s.idToken}, "post_logout_redirect_uri": {"http://127.0.0.1:9/unregistered"}}))
			m := cancelLink.FindStringSubmatch(page.Body)
			if m == nil || html.UnescapeString(m[1]) != tc.want {
				t.Errorf("Cancel: %v, want %s:\n%s", m, tc.want, page.Body)
			}
		})
	}
}
