package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/smallsso/provider/provider/admin"
	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/bolt"
)

const jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// testKey is an issuer's signing key and its public key set as JSON.
type testKey struct {
	priv crypto.Signer
	kid  string
	alg  jose.SignatureAlgorithm
	jwks string
}

func newTestKey(t *testing.T, alg jose.SignatureAlgorithm, kid string) testKey {
	t.Helper()
	var priv crypto.Signer
	var err error
	if alg == jose.ES256 {
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: priv.Public(), KeyID: kid, Algorithm: string(alg), Use: "sig"}}}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{priv: priv, kid: kid, alg: alg, jwks: string(b)}
}

func (k testKey) privateJWKS(t *testing.T) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.priv, KeyID: k.kid, Algorithm: string(k.alg)}}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assertion is a JWT bearer assertion of iss about sub for the token
// endpoint of issuer.
func (k testKey) assertion(t *testing.T, issuer, iss, sub string) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	raw, err := jwt.Signed(s).Claims(jwt.Claims{
		Issuer: iss, Subject: sub, Audience: jwt.Audience{issuer + "/token"}, ID: rand.Text(),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(2 * time.Minute)),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestTrustCommands(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, 18080, "")
	F := c.path
	key := newTestKey(t, jose.RS256, "ci-1")
	jwksPath := filepath.Join(c.dir, "ci-jwks.json")
	writeFile(t, jwksPath, key.jwks)

	out := runCLI(t, "", "trust", "add", "--config", F, "--issuer", "https://ci.example.org", "--subject", "deploy-bot",
		"--jwks-file", jwksPath, "--scope", "deploy,read", "--scope", "audit", "--max-lifetime", "5m").ok(t)
	m := regexp.MustCompile(`^added trusted issuer https://ci.example.org \(id (\S+)\)\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("trust add printed %q", out)
	}
	ciID := m[1]

	out = runCLI(t, "", "trust", "add", "--config", F, "--issuer", "https://idp.partner.example", "--any-subject",
		"--jwks-uri", "https://idp.partner.example/jwks.json").ok(t)
	partnerID := regexp.MustCompile(`\(id (\S+)\)`).FindStringSubmatch(out)[1]
	if partnerID == ciID {
		t.Fatal("two entries got the same ID")
	}

	withStore(t, c, func(s *bolt.Store) {
		ti, err := s.GetTrustedIssuer(t.Context(), ciID)
		if err != nil {
			t.Fatal(err)
		}
		if ti.Issuer != "https://ci.example.org" || ti.Subject != "deploy-bot" || ti.AnySubject || ti.JWKS == "" || ti.JWKSURI != "" ||
			!slices.Equal(ti.Scopes, []string{"deploy", "read", "audit"}) || ti.MaxLifetime != 5*time.Minute || ti.Source != "cli" {
			t.Errorf("stored %+v", ti)
		}
		p, err := s.GetTrustedIssuer(t.Context(), partnerID)
		if err != nil {
			t.Fatal(err)
		}
		if !p.AnySubject || p.Subject != "" || p.JWKSURI != "https://idp.partner.example/jwks.json" || p.MaxLifetime != time.Hour {
			t.Errorf("stored %+v, want any subject, the jwks_uri and the default max lifetime 1h", p)
		}
	})

	t.Run("refused", func(t *testing.T) {
		privPath := filepath.Join(c.dir, "private.json")
		writeFile(t, privPath, key.privateJWKS(t))
		tests := []struct {
			name string
			args []string
			want string
		}{
			{"duplicate", []string{"--issuer", "https://ci.example.org", "--subject", "deploy-bot", "--jwks-file", jwksPath},
				`provider: trust add: trusted issuer "https://ci.example.org" for subject "deploy-bot" already exists`},
			{"relative issuer", []string{"--issuer", "ci.example.org", "--subject", "x", "--jwks-file", jwksPath},
				`provider: trust add: issuer: "ci.example.org" must be an absolute URI`},
			{"private key", []string{"--issuer", "https://x.example", "--subject", "x", "--jwks-file", privPath},
				`provider: trust add: jwks: key "ci-1" is not a public key`},
			{"not a key set", []string{"--issuer", "https://x.example", "--subject", "x", "--jwks-file", F},
				`provider: trust add: jwks: not a JSON Web Key Set`},
			{"http jwks_uri", []string{"--issuer", "https://x.example", "--subject", "x", "--jwks-uri", "http://x.example/jwks"},
				`provider: trust add: jwks_uri: "http://x.example/jwks" must be an https URL`},
			{"max lifetime too long", []string{"--issuer", "https://x.example", "--subject", "x", "--jwks-file", jwksPath, "--max-lifetime", "48h"},
				`provider: trust add: max_lifetime: 48h0m0s must be more than 0 and at most 24h0m0s`},
			{"bad scope", []string{"--issuer", "https://x.example", "--subject", "x", "--jwks-file", jwksPath, "--scope", `a\b`},
				`provider: trust add: scopes: "a\\b" is not a valid scope token`},
			{"missing jwks file", []string{"--issuer", "https://x.example", "--subject", "x", "--jwks-file", filepath.Join(c.dir, "nope.json")},
				`provider: trust add: --jwks-file: open `},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				msg := runCLI(t, "", append([]string{"trust", "add", "--config", F}, tt.args...)...).fails(t, 1)
				if !strings.HasPrefix(msg, tt.want) {
					t.Errorf("got %q, want it to start with %q", msg, tt.want)
				}
			})
		}
	})

	t.Run("usage errors", func(t *testing.T) {
		tests := []struct {
			name string
			args []string
			want string
		}{
			{"no issuer", []string{"--subject", "x", "--jwks-file", jwksPath}, "provider: trust add: --issuer is required"},
			{"no subject", []string{"--issuer", "https://x.example", "--jwks-file", jwksPath}, "provider: trust add: give either --subject or --any-subject"},
			{"both subjects", []string{"--issuer", "https://x.example", "--subject", "x", "--any-subject", "--jwks-file", jwksPath}, "provider: trust add: give either --subject or --any-subject"},
			{"no keys", []string{"--issuer", "https://x.example", "--subject", "x"}, "provider: trust add: give either --jwks-file or --jwks-uri"},
			{"both keys", []string{"--issuer", "https://x.example", "--subject", "x", "--jwks-file", jwksPath, "--jwks-uri", "https://x.example/j"}, "provider: trust add: give either --jwks-file or --jwks-uri"},
			{"bad duration", []string{"--issuer", "https://x.example", "--subject", "x", "--jwks-file", jwksPath, "--max-lifetime", "soon"}, `provider: trust add: invalid argument "soon"`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				msg := runCLI(t, "", append([]string{"trust", "add", "--config", F}, tt.args...)...).fails(t, 2)
				if !strings.HasPrefix(msg, tt.want) {
					t.Errorf("got %q, want it to start with %q", msg, tt.want)
				}
			})
		}
		if msg := runCLI(t, "", "trust").fails(t, 2); msg != "provider: trust: missing command (add, list, delete)" {
			t.Errorf("got %q", msg)
		}
		if msg := runCLI(t, "", "trust", "delete", "--config", F).fails(t, 2); msg != "provider: trust delete: expects one trusted issuer ID" {
			t.Errorf("got %q", msg)
		}
	})

	t.Run("list", func(t *testing.T) {
		out := runCLI(t, "", "trust", "list", "--config", F).ok(t)
		if !strings.HasPrefix(out, "ID") || strings.Count(out, "\n") != 3 {
			t.Errorf("trust list:\n%s", out)
		}
		if l := line(t, out, ciID); !slices.Equal(l, []string{ciID, "https://ci.example.org", "deploy-bot", "jwks", "deploy,read,audit", "5m0s", "cli"}) {
			t.Errorf("ci's line: %v", l)
		}
		if l := line(t, out, partnerID); !slices.Equal(l, []string{partnerID, "https://idp.partner.example", "*", "https://idp.partner.example/jwks.json", "-", "1h0m0s", "cli"}) {
			t.Errorf("partner's line: %v", l)
		}

		out = runCLI(t, "", "trust", "list", "--config", F, "--json").ok(t)
		var all []struct {
			ID, JWKS    string
			MaxLifetime string `json:"max_lifetime"`
		}
		if err := json.Unmarshal([]byte(out), &all); err != nil || len(all) != 2 {
			t.Fatalf("trust list --json: %v\n%s", err, out)
		}
		// max_lifetime is a duration as the config writes it, not nanoseconds.
		if all[0].ID != ciID || all[0].JWKS == "" || all[0].MaxLifetime != "5m0s" || all[1].ID != partnerID || all[1].MaxLifetime != "1h0m0s" {
			t.Errorf("trust list --json: %+v", all)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if out := runCLI(t, "", "trust", "delete", ciID, "--config", F).ok(t); out != "deleted trusted issuer "+ciID+"\n" {
			t.Errorf("delete printed %q", out)
		}
		if out := runCLI(t, "", "trust", "list", "--config", F).ok(t); hasLine(out, ciID) || !hasLine(out, partnerID) {
			t.Errorf("after deleting %s:\n%s", ciID, out)
		}
		msg := runCLI(t, "", "trust", "delete", ciID, "--config", F).fails(t, 1)
		if want := `provider: trust delete: trusted issuer "` + ciID + `" does not exist`; msg != want {
			t.Errorf("got %q, want %q", msg, want)
		}
	})
}

// trustConfig declares three trusted issuers, one for each way of giving
// the keys, and a client allowed the grant.
func trustConfig(partnerKeys string) string {
	return `clients:
  - id: bearer-app
    secret: bearer-app-secret
    grant_types: [` + jwtBearerGrant + `]
    scopes: [deploy, read]
trusted_issuers:
  - issuer: https://ci.example.org
    subject: deploy-bot
    jwks_file: ci-jwks.json
    scopes: [deploy]
    max_lifetime: 5m
  - issuer: https://idp.partner.example
    any_subject: true
    jwks: ` + partnerKeys + `
    scopes: [read]
  - issuer: https://jobs.example.org
    subject: nightly
    jwks_uri: https://jobs.example.org/jwks.json
`
}

func TestTrustedIssuersConfig(t *testing.T) {
	t.Parallel()
	ci := newTestKey(t, jose.RS256, "ci-1")
	partner := newTestKey(t, jose.ES256, "p-1")
	port := freePort(t)
	// The partner's key set is written as a YAML mapping (JSON is YAML).
	c := writeConfig(t, port, trustConfig(partner.jwks))
	writeFile(t, filepath.Join(c.dir, "ci-jwks.json"), ci.jwks)

	cfg, err := loadConfig(c.path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.TrustedIssuers) != 3 || cfg.TrustedIssuers[0].JWKSFile != "" || cfg.TrustedIssuers[0].JWKS == "" {
		t.Fatalf("loaded %+v, want jwks_file read into jwks", cfg.TrustedIssuers)
	}
	var doc, want any
	if err := json.Unmarshal([]byte(cfg.TrustedIssuers[1].JWKS), &doc); err != nil {
		t.Fatalf("the YAML mapping did not become JSON: %v", err)
	}
	json.Unmarshal([]byte(partner.jwks), &want)
	if b1, _ := json.Marshal(doc); string(b1) != func() string { b, _ := json.Marshal(want); return string(b) }() {
		t.Errorf("jwks mapping read as %s, want %s", b1, partner.jwks)
	}

	// serve syncs them; the CLI sees them with source config.
	srv := startServer(t, c)
	out := runCLI(t, "", "trust", "list", "--config", c.path).ok(t)
	for _, iss := range []string{"https://ci.example.org", "https://idp.partner.example", "https://jobs.example.org"} {
		if !strings.Contains(out, iss) {
			t.Errorf("trust list lacks %s:\n%s", iss, out)
		}
	}
	if strings.Count(out, " config\n") != 3 {
		t.Errorf("want three entries from config:\n%s", out)
	}

	// Both configured key sets work at the running server's token endpoint.
	for _, tt := range []struct {
		key      testKey
		iss, sub string
		scope    string
	}{
		{ci, "https://ci.example.org", "deploy-bot", "deploy"},
		{partner, "https://idp.partner.example", "anyone", "read"},
	} {
		tok := postToken(t, c.issuer, url.Values{"grant_type": {jwtBearerGrant}, "assertion": {tt.key.assertion(t, c.issuer, tt.iss, tt.sub)}, "scope": {tt.scope}})
		if got := introspect(t, c.issuer, "bearer-app", "bearer-app-secret", tok); !got.Active || got.Sub != tt.sub {
			t.Errorf("%s: introspection %+v", tt.iss, got)
		}
	}

	// trust add, list and delete through the admin socket while serving,
	// with errors worded as locally.
	runCLI(t, "", "trust", "add", "--config", c.path, "--issuer", "https://extra.example", "--subject", "x",
		"--jwks-uri", "https://extra.example/jwks").ok(t)
	msg := runCLI(t, "", "trust", "add", "--config", c.path, "--issuer", "https://extra.example", "--subject", "x",
		"--jwks-uri", "https://extra.example/jwks").fails(t, 1)
	if want := `provider: trust add: trusted issuer "https://extra.example" for subject "x" already exists`; msg != want {
		t.Errorf("got %q, want %q", msg, want)
	}
	msg = runCLI(t, "", "trust", "add", "--config", c.path, "--issuer", "https://extra.example", "--subject", "y",
		"--jwks-uri", "https://extra.example/jwks", "--max-lifetime", "-1m").fails(t, 1)
	if want := `provider: trust add: max_lifetime: -1m0s must be more than 0 and at most 24h0m0s`; msg != want {
		t.Errorf("got %q, want %q", msg, want)
	}
	out = runCLI(t, "", "trust", "add", "--config", c.path, "--issuer", "https://short-lived.example", "--any-subject",
		"--jwks-uri", "https://short-lived.example/jwks").ok(t)
	shortID := regexp.MustCompile(`\(id (\S+)\)`).FindStringSubmatch(out)[1]
	runCLI(t, "", "trust", "delete", shortID, "--config", c.path).ok(t)
	if out := runCLI(t, "", "trust", "list", "--config", c.path, "--json").ok(t); strings.Contains(out, "short-lived") || !strings.Contains(out, "extra.example") {
		t.Errorf("after delete through the socket:\n%s", out)
	}
	msg = runCLI(t, "", "trust", "delete", shortID, "--config", c.path).fails(t, 1)
	if want := `provider: trust delete: trusted issuer "` + shortID + `" does not exist`; msg != want {
		t.Errorf("got %q, want %q", msg, want)
	}
	srv.stop(t)

	// Restart with one issuer removed and another changed: config entries
	// follow the file, the CLI entry stays.
	// This time the partner's key set is a JSON string.
	changed := strings.Replace(trustConfig(`'`+partner.jwks+`'`), "    scopes: [deploy]\n", "    scopes: [deploy, read]\n", 1)
	changed = changed[:strings.Index(changed, "  - issuer: https://jobs.example.org")]
	raw, err := os.ReadFile(c.path)
	if err != nil {
		t.Fatal(err)
	}
	header, _, _ := strings.Cut(string(raw), "clients:")
	writeFile(t, c.path, header+changed)
	cfg, err = loadConfig(c.path)
	if err != nil {
		t.Fatal(err)
	}
	withStore(t, c, func(s *bolt.Store) {
		before, _ := s.ListTrustedIssuers(t.Context())
		if err := admin.SyncTrustedIssuers(context.Background(), s, cfg.TrustedIssuers, nil, time.Now()); err != nil {
			t.Fatal(err)
		}
		after, err := s.ListTrustedIssuers(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		byIssuer := map[string]storage.TrustedIssuer{}
		for _, ti := range after {
			byIssuer[ti.Issuer] = ti
		}
		if len(after) != 3 || byIssuer["https://extra.example"].Source != "cli" {
			t.Errorf("after resync: %+v, want ci, partner and the CLI entry", after)
		}
		if _, ok := byIssuer["https://jobs.example.org"]; ok {
			t.Error("an issuer removed from the config is still trusted")
		}
		ciAfter := byIssuer["https://ci.example.org"]
		if !slices.Equal(ciAfter.Scopes, []string{"deploy", "read"}) || ciAfter.MaxLifetime != 5*time.Minute {
			t.Errorf("ci after resync: %+v", ciAfter)
		}
		for _, ti := range before {
			if ti.Issuer == "https://ci.example.org" && (ti.ID != ciAfter.ID || !ti.CreatedAt.Equal(ciAfter.CreatedAt)) {
				t.Errorf("ci's id or creation time changed on update: %s %v -> %s %v", ti.ID, ti.CreatedAt, ciAfter.ID, ciAfter.CreatedAt)
			}
		}
		// The JSON-string form of jwks reads the same as the mapping.
		if byIssuer["https://idp.partner.example"].JWKS == "" {
			t.Error("partner lost its keys")
		}
	})
}

func TestTrustedIssuersConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := "issuer: http://127.0.0.1:8080\nstorage:\n  bolt: " + dir + "/provider.db\nkeys:\n  dir: " + dir + "/keys\ntrusted_issuers:\n"
	key := newTestKey(t, jose.ES256, "k")
	writeFile(t, filepath.Join(dir, "keys.json"), key.jwks)
	ok := "    jwks_file: keys.json\n"
	tests := []struct {
		name, entries string
		want          []string
	}{
		{"no subject", "  - issuer: https://a.example\n" + ok, []string{"trusted_issuers[0].subject: is required"}},
		{"subject and any_subject", "  - issuer: https://a.example\n    subject: s\n    any_subject: true\n" + ok,
			[]string{"trusted_issuers[0].subject: give subject or any_subject, not both"}},
		{"no issuer", "  - subject: s\n" + ok, []string{"trusted_issuers[0].issuer: is required"}},
		{"two key sources", "  - issuer: https://a.example\n    subject: s\n    jwks_uri: https://a.example/k\n" + ok,
			[]string{"trusted_issuers[0].jwks: give exactly one of jwks, jwks_file, jwks_uri"}},
		{"no key source", "  - issuer: https://a.example\n    subject: s\n", []string{"trusted_issuers[0].jwks: give exactly one of"}},
		{"missing jwks_file", "  - issuer: https://a.example\n    subject: s\n    jwks_file: nope.json\n",
			[]string{"trusted_issuers[0].jwks_file: open " + filepath.Join(dir, "nope.json")}},
		{"bad inline jwks", "  - issuer: https://a.example\n    subject: s\n    jwks: {keys: []}\n",
			[]string{"trusted_issuers[0].jwks: the JSON Web Key Set has no keys"}},
		{"bad max_lifetime", "  - issuer: https://a.example\n    subject: s\n    max_lifetime: forever\n" + ok,
			[]string{"trusted_issuers[0].max_lifetime: \"forever\" is not a duration"}},
		{"second entry bad", "  - issuer: https://a.example\n    subject: s\n" + ok + "  - issuer: https://b.example\n    any_subject: true\n    scopes: [\"a b\"]\n" + ok,
			[]string{"trusted_issuers[1].scopes[0]: \"a b\" is not a valid scope token"}},
		{"duplicate", "  - issuer: https://a.example\n    subject: s\n" + ok + "  - issuer: https://a.example\n    subject: s\n    jwks_uri: https://a.example/k\n",
			[]string{"trusted_issuers[1].issuer: issuer \"https://a.example\" with the same subject is already declared at trusted_issuers[0]"}},
		{"unknown key", "  - issuer: https://a.example\n    subjct: s\n" + ok, []string{`trusted_issuers[0]: unknown key "subjct" (did you mean subject?)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml")
			writeFile(t, path, base+tt.entries)
			for _, args := range [][]string{{"trust", "list", "--config", path}, {"serve", "--config", path}} {
				msg := runCLI(t, "", args...).failsConfig(t, path)
				for _, w := range tt.want {
					if !strings.Contains(msg, w) {
						t.Errorf("%q does not contain %q", msg, w)
					}
				}
			}
		})
	}
}

// postToken asks the token endpoint for a token as bearer-app and returns
// the access token.
func postToken(t *testing.T, issuer string, form url.Values) string {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, issuer+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("bearer-app", "bearer-app-secret")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	tok, _ := body["access_token"].(string)
	if resp.StatusCode != http.StatusOK || tok == "" {
		t.Fatalf("token: HTTP %d %v", resp.StatusCode, body)
	}
	return tok
}
