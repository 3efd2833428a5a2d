package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/smallsso/provider/storage/bolt"
)

// Every per-client setting the provider has can be given on the command
// line, and a setting that cannot work is refused in one line.
func TestClientsAddEverySetting(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, 18081, "")
	F := c.path
	runCLI(t, "", "clients", "add", "--config", F, "--id", "native", "--public",
		"--redirect-uri", "http://127.0.0.1/callback,urn:ietf:wg:oauth:2.0:oob,org.example.app:/cb",
		"--grant-type", "authorization_code,refresh_token", "--require-par",
		"--allowed-origin", "https://app.example.org", "--access-token-format", "jwt").ok(t)
	runCLI(t, "legacy-secret-0123456789\n", "clients", "add", "--config", F, "--id", "legacy", "--secret-stdin",
		"--grant-type", "password,refresh_token", "--scope", "read").ok(t)

	withStore(t, c, func(s *bolt.Store) {
		n, err := s.GetClient(t.Context(), "native")
		if err != nil {
			t.Fatal(err)
		}
		if !n.RequirePAR || n.AccessTokenFormat != "jwt" || !slices.Equal(n.AllowedOrigins, []string{"https://app.example.org"}) ||
			len(n.RedirectURIs) != 3 {
			t.Errorf("native: %+v", n)
		}
		l, err := s.GetClient(t.Context(), "legacy")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(l.GrantTypes, []string{"password", "refresh_token"}) || !slices.Equal(l.Scopes, []string{"read"}) {
			t.Errorf("legacy: %+v", l)
		}
	})

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--public", "--grant-type", "password"}, "the password grant needs a confidential client"},
		{[]string{"--access-token-format", "paseto"}, `access_token_format "paseto" must be opaque or jwt`},
		{[]string{"--allowed-origin", "https://app.example.org/path"}, "must be an origin"},
		{[]string{"--redirect-uri", "http://app.example.org/cb"}, "http is only allowed on loopback"},
	} {
		args := append([]string{"clients", "add", "--config", F, "--id", "bad", "--redirect-uri", "http://127.0.0.1:9/cb"}, tc.args...)
		msg := runCLI(t, "", args...).fails(t, 1)
		if !strings.HasPrefix(msg, "provider: clients add: ") || !strings.Contains(msg, tc.want) {
			t.Errorf("%v: got %q, want it to say %q", tc.args, msg, tc.want)
		}
	}
}
