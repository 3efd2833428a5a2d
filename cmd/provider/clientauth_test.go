package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/smallsso/provider/storage/bolt"
)

// ecClientKey is a client's P-256 key and its public set as JSON.
func ecClientKey(t *testing.T, kid string) (*ecdsa.PrivateKey, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: kid, Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return k, string(raw)
}

// assertionToken asks issuer for a client_credentials token, authenticating
// clientID with an assertion signed by key (a []byte for HS256).
func assertionToken(t *testing.T, issuer, clientID string, alg jose.SignatureAlgorithm, key any) (int, map[string]any) {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	assertion, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: clientID, Subject: clientID, Audience: jwt.Audience{issuer + "/token"}, ID: rand.Text(),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
	resp, err := http.PostForm(issuer+"/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// Clients authenticating with assertions, declared in the config (inline
// key set as a mapping or a JSON string, key set file) and added with the
// CLI with and without a running server, all work against `serve`.
func TestAssertionClients(t *testing.T) {
	t.Parallel()
	yamlKey, yamlSet := ecClientKey(t, "yaml")
	strKey, strSet := ecClientKey(t, "str")
	fileKey, fileSet := ecClientKey(t, "file")
	cliKey, cliSet := ecClientKey(t, "cli")
	yamlSecret := strings.Repeat("y", 40)
	c := writeConfig(t, freePort(t), `clients:
  - id: yaml-pk
    token_endpoint_auth_method: private_key_jwt
    grant_types: [client_credentials]
    jwks: `+yamlSet+`
  - id: str-pk
    token_endpoint_auth_method: private_key_jwt
    grant_types: [client_credentials]
    jwks: '`+strSet+`'
  - id: file-pk
    token_endpoint_auth_method: private_key_jwt
    token_endpoint_auth_signing_alg: ES256
    grant_types: [client_credentials]
    jwks_file: file-pk.json
  - id: yaml-sjwt
    token_endpoint_auth_method: client_secret_jwt
    secret: `+yamlSecret+`
    grant_types: [client_credentials]
`)
	writeFile(t, filepath.Join(c.dir, "file-pk.json"), fileSet)
	cliJWKS := filepath.Join(c.dir, "cli.json")
	writeFile(t, cliJWKS, cliSet)
	F := c.path

	cliSecret := strings.Repeat("c", 40)
	out := runCLI(t, cliSecret+"\n", "clients", "add", "--config", F, "--id", "cli-sjwt", "--auth-method", "client_secret_jwt",
		"--secret-stdin", "--grant-type", "client_credentials").ok(t)
	if out != "added client cli-sjwt\n" {
		t.Errorf("clients add printed %q", out)
	}
	out = runCLI(t, "", "clients", "add", "--config", F, "--id", "gen-sjwt", "--auth-method", "client_secret_jwt",
		"--auth-signing-alg", "HS512", "--grant-type", "client_credentials").ok(t)
	genSecret := shownOnce(t, out, "client secret: ")
	out = runCLI(t, "", "clients", "add", "--config", F, "--id", "cli-pk", "--auth-method", "private_key_jwt",
		"--jwks-file", cliJWKS, "--auth-signing-alg", "ES256", "--grant-type", "client_credentials").ok(t)
	if out != "added client cli-pk\n" {
		t.Errorf("clients add printed %q, want no secret", out)
	}

	for _, bad := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"short\n", []string{"--auth-method", "client_secret_jwt", "--secret-stdin"}, "at least 32 bytes"},
		{cliSecret + "\n", []string{"--auth-method", "private_key_jwt", "--secret-stdin", "--jwks-file", cliJWKS}, "has no secret"},
		{"", []string{"--auth-method", "private_key_jwt"}, "jwks or jwks_uri"},
		{"", []string{"--auth-method", "private_key_jwt", "--jwks-uri", "http://keys.example/jwks"}, "https"},
		{"", []string{"--auth-method", "private_key_jwt", "--jwks-file", cliJWKS, "--auth-signing-alg", "HS256"}, "does not fit"},
		{"", []string{"--auth-method", "private_key_jwt", "--jwks-file", filepath.Join(c.dir, "missing.json")}, "--jwks-file"},
	} {
		args := append([]string{"clients", "add", "--config", F, "--id", "bad", "--grant-type", "client_credentials"}, bad.args...)
		if msg := runCLI(t, bad.stdin, args...).fails(t, 1); !strings.Contains(msg, bad.want) {
			t.Errorf("%v: %q does not mention %q", bad.args, msg, bad.want)
		}
	}

	withStore(t, c, func(s *bolt.Store) {
		rec, err := s.GetClient(t.Context(), "cli-sjwt")
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(rec)
		if len(rec.SecretSealed) == 0 || rec.SecretHash != "" || strings.Contains(string(raw), cliSecret) {
			t.Errorf("stored cli-sjwt: %s, want the secret sealed only", raw)
		}
		pk, err := s.GetClient(t.Context(), "cli-pk")
		if err != nil {
			t.Fatal(err)
		}
		if pk.JWKS != cliSet || pk.SecretHash != "" || pk.TokenEndpointAuthSigningAlg != "ES256" {
			t.Errorf("stored cli-pk: %+v", pk)
		}
	})
	if out := runCLI(t, "", "clients", "list", "--config", F, "--json").ok(t); strings.Contains(out, "secret_sealed") || strings.Contains(out, "secret_hash") {
		t.Errorf("clients list shows secret material:\n%s", out)
	}

	startServer(t, c)
	// Added through the running server's admin socket.
	liveSecret := strings.Repeat("l", 40)
	runCLI(t, liveSecret+"\n", "clients", "add", "--config", F, "--id", "live-sjwt", "--auth-method", "client_secret_jwt",
		"--secret-stdin", "--grant-type", "client_credentials").ok(t)

	for _, tc := range []struct {
		id  string
		alg jose.SignatureAlgorithm
		key any
	}{
		{"yaml-pk", jose.ES256, yamlKey},
		{"str-pk", jose.ES256, strKey},
		{"file-pk", jose.ES256, fileKey},
		{"cli-pk", jose.ES256, cliKey},
		{"yaml-sjwt", jose.HS256, []byte(yamlSecret)},
		{"cli-sjwt", jose.HS256, []byte(cliSecret)},
		{"gen-sjwt", jose.HS512, []byte(genSecret)},
		{"live-sjwt", jose.HS256, []byte(liveSecret)},
	} {
		if status, body := assertionToken(t, c.issuer, tc.id, tc.alg, tc.key); status != http.StatusOK || body["access_token"] == nil {
			t.Errorf("%s: HTTP %d %v", tc.id, status, body)
		}
	}
	if status, body := assertionToken(t, c.issuer, "cli-pk", jose.ES256, yamlKey); status != http.StatusUnauthorized {
		t.Errorf("cli-pk with another client's key: HTTP %d %v", status, body)
	}
}

func TestAssertionClientConfigErrors(t *testing.T) {
	t.Parallel()
	_, set := ecClientKey(t, "k")
	dir := t.TempDir()
	base := "issuer: http://127.0.0.1:8080\nstorage:\n  bolt: " + dir + "/provider.db\nkeys:\n  dir: " + dir + "/keys\nclients:\n  - id: c\n    grant_types: [client_credentials]\n"
	for _, tt := range []struct {
		name, client string
		want         []string
	}{
		{"jwks and jwks_file", "    token_endpoint_auth_method: private_key_jwt\n    jwks: " + set + "\n    jwks_file: k.json\n", []string{"clients[0]", "jwks or jwks_file"}},
		{"missing jwks_file", "    token_endpoint_auth_method: private_key_jwt\n    jwks_file: nope.json\n", []string{"clients[0].jwks_file", "nope.json"}},
		{"jwks a list", "    token_endpoint_auth_method: private_key_jwt\n    jwks: [1, 2]\n", []string{"jwks must be a JSON Web Key Set"}},
		{"secret_jwt with a hash", "    token_endpoint_auth_method: client_secret_jwt\n    secret_hash: $2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy\n", []string{"clients[0]", "secret_hash cannot"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml")
			writeFile(t, path, base+tt.client)
			msg := runCLI(t, "", "clients", "list", "--config", path).failsConfig(t, path)
			if strings.Contains(msg, "\n") {
				t.Errorf("more than one problem:\n%s", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q does not contain %q", msg, w)
				}
			}
		})
	}
}
