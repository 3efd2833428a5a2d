package main

import (
	"strings"
	"testing"

	"github.com/smallsso/provider/storage/bolt"
)

// The per-client signing algorithms, from the command line and the config
// file; "none" and unknown algorithms are refused, naming the setting.
func TestClientSigningAlgorithms(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, 18082, "")
	F := c.path
	runCLI(t, "", "clients", "add", "--config", F, "--id", "signed", "--redirect-uri", "http://127.0.0.1:9/cb",
		"--id-token-alg", "ES256", "--userinfo-alg", "EdDSA").ok(t)
	withStore(t, c, func(s *bolt.Store) {
		cl, err := s.GetClient(t.Context(), "signed")
		if err != nil {
			t.Fatal(err)
		}
		if cl.IDTokenSignedResponseAlg != "ES256" || cl.UserinfoSignedResponseAlg != "EdDSA" {
			t.Errorf("stored id_token alg %q, userinfo alg %q", cl.IDTokenSignedResponseAlg, cl.UserinfoSignedResponseAlg)
		}
	})

	for _, tc := range []struct{ flag, alg, key string }{
		{"--id-token-alg", "none", "id_token_signed_response_alg"},
		{"--id-token-alg", "HS256", "id_token_signed_response_alg"},
		{"--userinfo-alg", "none", "userinfo_signed_response_alg"},
		{"--userinfo-alg", "RS384", "userinfo_signed_response_alg"},
	} {
		msg := runCLI(t, "", "clients", "add", "--config", F, "--id", "bad", "--redirect-uri", "http://127.0.0.1:9/cb", tc.flag, tc.alg).fails(t, 1)
		if !strings.HasPrefix(msg, "provider: clients add: ") || !strings.Contains(msg, tc.key) || !strings.Contains(msg, `"`+tc.alg+`"`) ||
			!strings.Contains(msg, "RS256, PS256, ES256, EdDSA") {
			t.Errorf("%s %s: got %q, want the setting, the value and the supported algorithms", tc.flag, tc.alg, msg)
		}
	}

	t.Run("config file", func(t *testing.T) {
		bad := writeConfig(t, 18083, `clients:
  - id: app
    redirect_uris: [http://127.0.0.1:9/cb]
    id_token_signed_response_alg: none
`)
		msg := runCLI(t, "", "users", "list", "--config", bad.path).fails(t, 1)
		for _, want := range []string{"clients[0]", "id_token_signed_response_alg", `"none"`, "always signed"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%q does not contain %q", msg, want)
			}
		}
		good := writeConfig(t, 18084, `clients:
  - id: app
    secret: app-secret-0123456789abcdef
    redirect_uris: [http://127.0.0.1:9/cb]
    id_token_signed_response_alg: PS256
    userinfo_signed_response_alg: RS256
`)
		runCLI(t, "", "users", "list", "--config", good.path).ok(t)
	})
}
