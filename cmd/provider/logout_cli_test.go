package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/smallsso/provider/storage/bolt"
)

// The logout settings of a client, from the command line and the config
// file, and the ones that cannot work refused with the setting named.
func TestClientsAddLogoutSettings(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), "")
	F := c.path
	runCLI(t, "", "clients", "add", "--config", F, "--id", "app", "--redirect-uri", "https://app.example.org/cb",
		"--post-logout-redirect-uri", "https://app.example.org/bye", "--post-logout-redirect-uri", "https://app.example.org/bye?a=1,2",
		"--backchannel-logout-uri", "https://api.example.org/backchannel",
		"--frontchannel-logout-uri", "https://app.example.org/frontchannel").ok(t)
	withStore(t, c, func(s *bolt.Store) {
		got, err := s.GetClient(t.Context(), "app")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.PostLogoutRedirectURIs, []string{"https://app.example.org/bye", "https://app.example.org/bye?a=1,2"}) ||
			got.BackchannelLogoutURI != "https://api.example.org/backchannel" || got.FrontchannelLogoutURI != "https://app.example.org/frontchannel" {
			t.Errorf("stored client: %+v", got)
		}
	})

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--post-logout-redirect-uri", "http://app.example.org/bye"}, `post-logout redirect URI "http://app.example.org/bye": http is only allowed on loopback`},
		{[]string{"--backchannel-logout-uri", "http://api.example.org/bc"}, `backchannel_logout_uri "http://api.example.org/bc": http is only allowed on loopback`},
		{[]string{"--frontchannel-logout-uri", "https://elsewhere.example.org/fc"}, "must have the scheme, host and port of a redirect URI"},
	} {
		args := append([]string{"clients", "add", "--config", F, "--id", "bad", "--redirect-uri", "https://app.example.org/cb"}, tc.args...)
		msg := runCLI(t, "", args...).fails(t, 1)
		if !strings.HasPrefix(msg, "provider: clients add: ") || !strings.Contains(msg, tc.want) {
			t.Errorf("%v: got %q, want it to say %q", tc.args, msg, tc.want)
		}
	}

	bad := writeConfig(t, freePort(t), `clients:
  - id: app
    redirect_uris: [https://app.example.org/cb]
    backchannel_logout_uri: ftp://api.example.org/bc
`)
	msg := runCLI(t, "", "users", "list", "--config", bad.path).fails(t, 1)
	if !strings.Contains(msg, "clients[0]") || !strings.Contains(msg, "backchannel_logout_uri") {
		t.Errorf("config error %q does not name clients[0] and backchannel_logout_uri", msg)
	}
}
