package main

import (
	"strings"
	"testing"

	"github.com/smallsso/provider/storage/bolt"
)

// Issue 11 item 5: `introspect: any` is an operator's setting, from the
// command line and the config file; any other value is refused, naming the
// setting.
func TestClientIntrospectSetting(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, 18191, "")
	F := c.path
	runCLI(t, "", "clients", "add", "--config", F, "--id", "rs", "--grant-type", "client_credentials", "--introspect", "any").ok(t)
	runCLI(t, "", "clients", "add", "--config", F, "--id", "plain", "--grant-type", "client_credentials").ok(t)
	withStore(t, c, func(s *bolt.Store) {
		for id, want := range map[string]string{"rs": "any", "plain": ""} {
			cl, err := s.GetClient(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if cl.Introspect != want {
				t.Errorf("%s: stored introspect %q, want %q", id, cl.Introspect, want)
			}
		}
	})
	msg := runCLI(t, "", "clients", "add", "--config", F, "--id", "bad", "--grant-type", "client_credentials", "--introspect", "all").fails(t, 1)
	if !strings.Contains(msg, "introspect") || !strings.Contains(msg, `"all"`) {
		t.Errorf("--introspect all: %q, want the setting and the value", msg)
	}
	msg = runCLI(t, "", "clients", "add", "--config", F, "--id", "spa", "--public", "--redirect-uri", "http://127.0.0.1:9/cb", "--introspect", "any").fails(t, 1)
	if !strings.Contains(msg, "introspect") || !strings.Contains(msg, "public") {
		t.Errorf("--public --introspect any: %q", msg)
	}

	bad := writeConfig(t, 18192, `clients:
  - id: rs
    secret: rs-secret-0123456789abcdef
    grant_types: [client_credentials]
    introspect: everything
`)
	msg = runCLI(t, "", "users", "list", "--config", bad.path).fails(t, 1)
	for _, want := range []string{"clients[0]", "introspect", `"everything"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not contain %q", msg, want)
		}
	}
	good := writeConfig(t, 18193, `clients:
  - id: rs
    secret: rs-secret-0123456789abcdef
    grant_types: [client_credentials]
    introspect: any
`)
	runCLI(t, "", "users", "list", "--config", good.path).ok(t)
}
