package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/smallsso/provider/storage/bolt"
)

// Implicit and hybrid response types and request objects, from the
// command line and the config file.
func TestClientsAddFlowsSettings(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, 18082, "")
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &priv.PublicKey, KeyID: "ro", Use: "sig"}}})
	jwks := filepath.Join(c.dir, "ro.json")
	writeFile(t, jwks, string(set))

	runCLI(t, "", "clients", "add", "--config", c.path, "--id", "spa", "--public",
		"--redirect-uri", "https://spa.example.org/cb", "--grant-type", "implicit",
		"--response-type", "token id_token").ok(t)
	runCLI(t, "", "clients", "add", "--config", c.path, "--id", "hybrid",
		"--redirect-uri", "https://app.example.org/cb", "--grant-type", "authorization_code,implicit",
		"--response-type", "code,code id_token", "--jwks-file", jwks, "--request-object-alg", "RS256",
		"--request-uri", "https://app.example.org/requests/a.jwt", "--request-uri", "https://app.example.org/requests/b,c.jwt").ok(t)
	withStore(t, c, func(s *bolt.Store) {
		spa, err := s.GetClient(t.Context(), "spa")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(spa.ResponseTypes, []string{"id_token token"}) || !slices.Equal(spa.GrantTypes, []string{"implicit"}) {
			t.Errorf("spa: %+v", spa)
		}
		h, err := s.GetClient(t.Context(), "hybrid")
		if err != nil {
			t.Fatal(err)
		}
		if h.RequestObjectSigningAlg != "RS256" || !slices.Equal(h.ResponseTypes, []string{"code", "code id_token"}) ||
			!slices.Equal(h.RequestURIs, []string{"https://app.example.org/requests/a.jwt", "https://app.example.org/requests/b,c.jwt"}) {
			t.Errorf("hybrid: %+v", h)
		}
	})

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--response-type", "id_token"}, `response type "id_token" needs the implicit grant`},
		{[]string{"--grant-type", "implicit", "--response-type", "token"}, `response type "token" is not supported`},
		{[]string{"--request-uri", "http://app.example.org/r.jwt"}, "must be https"},
		{[]string{"--request-object-alg", "RS256"}, "needs the client's public keys"},
	} {
		args := append([]string{"clients", "add", "--config", c.path, "--id", "bad", "--redirect-uri", "https://app.example.org/cb"}, tc.args...)
		msg := runCLI(t, "", args...).fails(t, 1)
		if !strings.HasPrefix(msg, "provider: clients add: ") || !strings.Contains(msg, tc.want) {
			t.Errorf("%v: got %q, want it to say %q", tc.args, msg, tc.want)
		}
	}

	// The config file says which client is wrong.
	bad := filepath.Join(c.dir, "bad.yaml")
	writeFile(t, bad, "issuer: http://127.0.0.1:8080\nstorage:\n  bolt: "+c.dir+"/other.db\nkeys:\n  dir: "+c.keys+
		"\nclients:\n  - id: spa\n    public: true\n    redirect_uris: [https://spa.example.org/cb]\n    grant_types: [authorization_code, implicit]\n")
	msg := runCLI(t, "", "clients", "list", "--config", bad).fails(t, 1)
	if !strings.Contains(msg, "clients[0]") || !strings.Contains(msg, "the implicit grant is used only through response_types") {
		t.Errorf("config error: %q", msg)
	}
}
