package clientspec_test

import (
	"github.com/smallsso/provider/storage"

	"strings"
	"testing"

	"github.com/smallsso/provider/provider/clientspec"
)

func TestClientLogoutSettingsValidated(t *testing.T) {
	t.Parallel()
	base := clientspec.Spec{ID: "c", Secret: "s", ClientSettings: storage.ClientSettings{RedirectURIs: []string{"https://app.example.org/cb"}}}
	for _, tc := range []struct {
		name string
		edit func(*clientspec.Spec)
		want string // "" = valid
	}{
		{"all https", func(c *clientspec.Spec) {
			c.PostLogoutRedirectURIs = []string{"https://app.example.org/bye", "org.example.app:/bye", "http://127.0.0.1:8080/bye"}
			c.BackchannelLogoutURI, c.BackchannelLogoutSessionRequired = "https://api.example.org/bc", true
			c.FrontchannelLogoutURI, c.FrontchannelLogoutSessionRequired = "https://app.example.org/fc?x=1", true
		}, ""},
		{"loopback http", func(c *clientspec.Spec) {
			c.RedirectURIs = []string{"http://localhost:9000/cb"}
			c.BackchannelLogoutURI = "http://[::1]:9001/bc"
			c.FrontchannelLogoutURI = "http://localhost:9000/fc"
		}, ""},
		{"post-logout http", func(c *clientspec.Spec) { c.PostLogoutRedirectURIs = []string{"http://app.example.org/bye"} }, "http is only allowed on loopback"},
		{"post-logout fragment", func(c *clientspec.Spec) { c.PostLogoutRedirectURIs = []string{"https://app.example.org/bye#x"} }, "fragment"},
		{"post-logout relative", func(c *clientspec.Spec) { c.PostLogoutRedirectURIs = []string{"/bye"} }, "absolute"},
		{"post-logout oob", func(c *clientspec.Spec) { c.PostLogoutRedirectURIs = []string{"urn:ietf:wg:oauth:2.0:oob"} }, "nowhere to return"},
		{"backchannel http", func(c *clientspec.Spec) { c.BackchannelLogoutURI = "http://api.example.org/bc" }, "http is only allowed on loopback"},
		{"backchannel scheme", func(c *clientspec.Spec) { c.BackchannelLogoutURI = "org.example.app:/bc" }, "backchannel_logout_uri"},
		{"backchannel fragment", func(c *clientspec.Spec) { c.BackchannelLogoutURI = "https://api.example.org/bc#" }, "fragment"},
		{"backchannel session without uri", func(c *clientspec.Spec) { c.BackchannelLogoutSessionRequired = true }, "needs a backchannel_logout_uri"},
		{"frontchannel other origin", func(c *clientspec.Spec) { c.FrontchannelLogoutURI = "https://other.example.org/fc" }, "scheme, host and port of a redirect URI"},
		{"frontchannel http", func(c *clientspec.Spec) { c.FrontchannelLogoutURI = "http://app.example.org/fc" }, "http is only allowed on loopback"},
		{"frontchannel session without uri", func(c *clientspec.Spec) { c.FrontchannelLogoutSessionRequired = true }, "needs a frontchannel_logout_uri"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := base
			tc.edit(&spec)
			_, err := spec.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want it to say %q", err, tc.want)
			}
		})
	}
}

// The CLI, the config and registration all validate through Spec, so each
// refuses a redirect URI pattern: matching is exact.
func TestRedirectURIWildcardsRefused(t *testing.T) {
	t.Parallel()
	for _, uri := range []string{"https://*.example.org/cb", "https://app.example.org/*"} {
		spec := clientspec.Spec{ID: "c", Secret: "s", ClientSettings: storage.ClientSettings{RedirectURIs: []string{uri}}}
		if _, err := spec.Validate(); err == nil || !strings.Contains(err.Error(), "wildcard") {
			t.Errorf("%s: error %v, want a wildcard refusal", uri, err)
		}
	}
	ok := clientspec.Spec{ID: "c", Secret: "s", ClientSettings: storage.ClientSettings{RedirectURIs: []string{"https://app.example.org/cb?x=*"}}}
	if _, err := ok.Validate(); err != nil {
		t.Errorf("a * in the query is not a pattern: %v", err)
	}
}
