// Package oidcctest is an independent relying party that holds a provider
// to the checks of the OpenID Foundation's conformance suite
// (openid-certification/conformance-suite). Each check names the suite
// condition it stands for, so a failing test points at the rule it broke;
// docs/conformance-checklist.md lists them module by module.
//
// It speaks only HTTP to the provider: discovery, the JWKS, the browser
// (providertest.Browser), the token and userinfo endpoints. It shares no
// code with the provider, so a bug there cannot hide itself here.
//
// The suite demands https everywhere; tests run the provider on plain
// http over loopback, which these checks accept in place of https and
// nothing else.
package oidcctest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// OP is the provider as the suite sees it after its configuration phase.
type OP struct {
	Issuer string
	// Discovery is the decoded discovery document.
	Discovery map[string]any
	// JWKS is the provider's key set as fetched from jwks_uri.
	JWKS jose.JSONWebKeySet
	// HTTP makes the suite's direct calls (token, userinfo, registration);
	// it keeps no cookies and follows no redirects.
	HTTP *http.Client
	// Now is the suite's clock for exp/iat checks; nil means time.Now.
	Now func() time.Time
}

// Discover runs the suite's configuration phase (GetDynamicServerConfiguration,
// CheckServerConfiguration, FetchServerKeys, ValidateServerJWKs,
// CheckForKeyIdInServerJWKs, CheckDistinctKeyIdValueInServerJWKs,
// EnsureServerJwksDoesNotContainPrivateOrSymmetricKeys) and fails the test
// on any of them.
func Discover(t testing.TB, issuer string) *OP {
	t.Helper()
	op := &OP{Issuer: issuer, HTTP: &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	status, hdr, body := op.get(t, strings.TrimSuffix(issuer, "/")+"/.well-known/openid-configuration")
	if status != http.StatusOK {
		t.Fatalf("GetDynamicServerConfiguration: HTTP %d", status)
	}
	requireJSON(t, "discovery", hdr)
	if err := json.Unmarshal(body, &op.Discovery); err != nil {
		t.Fatalf("GetDynamicServerConfiguration: not a JSON object: %v", err)
	}
	for _, k := range []string{"issuer", "authorization_endpoint", "token_endpoint"} {
		if s, _ := op.Discovery[k].(string); s == "" {
			t.Fatalf("CheckServerConfiguration: %s missing or empty", k)
		}
	}
	if op.Discovery["issuer"] != issuer {
		t.Fatalf("discovery issuer = %v, want exactly %q", op.Discovery["issuer"], issuer)
	}
	op.JWKS = op.FetchJWKS(t)
	return op
}

// Endpoint returns a string metadata value of the discovery document, such
// as "token_endpoint"; the test fails if it is absent.
func (op *OP) Endpoint(t testing.TB, name string) string {
	t.Helper()
	s, _ := op.Discovery[name].(string)
	if s == "" {
		t.Fatalf("discovery has no %s", name)
	}
	return s
}

// Strings returns a string-array metadata value, nil when absent.
func (op *OP) Strings(name string) []string {
	arr, _ := op.Discovery[name].([]any)
	var out []string
	for _, v := range arr {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// FetchJWKS fetches jwks_uri and applies the suite's JWKS checks.
func (op *OP) FetchJWKS(t testing.TB) jose.JSONWebKeySet {
	t.Helper()
	status, _, body := op.get(t, op.Endpoint(t, "jwks_uri"))
	if status != http.StatusOK {
		t.Fatalf("FetchServerKeys: HTTP %d", status)
	}
	return CheckJWKS(t, body)
}

// CheckJWKS applies ValidateServerJWKs, CheckForKeyIdInServerJWKs,
// CheckDistinctKeyIdValueInServerJWKs and
// EnsureServerJwksDoesNotContainPrivateOrSymmetricKeys to a JWKS document.
func CheckJWKS(t testing.TB, body []byte) jose.JSONWebKeySet {
	t.Helper()
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil || raw.Keys == nil {
		t.Fatalf("ValidateServerJWKs: not a JWK Set with a keys array: %s", body)
	}
	seen := map[string]bool{}
	var set jose.JSONWebKeySet
	for i, k := range raw.Keys {
		kty, _ := k["kty"].(string)
		need := map[string][]string{"RSA": {"n", "e"}, "EC": {"crv", "x", "y"}, "OKP": {"crv", "x"}}[kty]
		if need == nil {
			t.Fatalf("ValidateServerJWKs: key %d has kty %q (oct or unknown keys must not be published)", i, kty)
		}
		for _, member := range need {
			s, _ := k[member].(string)
			if s == "" || strings.ContainsAny(s, "=+/") {
				t.Fatalf("ValidateServerJWKs: key %d member %s is missing or not unpadded base64url", i, member)
			}
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := k[private]; ok {
				t.Fatalf("EnsureServerJwksDoesNotContainPrivateOrSymmetricKeys: key %d has %q", i, private)
			}
		}
		kid, _ := k["kid"].(string)
		if kid == "" {
			t.Fatalf("CheckForKeyIdInServerJWKs: key %d has no kid", i)
		}
		if seen[kid] {
			t.Fatalf("CheckDistinctKeyIdValueInServerJWKs: kid %q appears twice", kid)
		}
		seen[kid] = true
		if use, ok := k["use"]; ok && use != "sig" {
			t.Fatalf("key %q: use %v, want sig (or absent)", kid, use)
		}
		one, _ := json.Marshal(k)
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(one); err != nil {
			t.Fatalf("ValidateServerJWKs: key %q does not parse: %v", kid, err)
		}
		if !jwk.IsPublic() {
			t.Fatalf("EnsureServerJwksDoesNotContainPrivateOrSymmetricKeys: key %q is not a public key", kid)
		}
		set.Keys = append(set.Keys, jwk)
	}
	return set
}

func (op *OP) now() time.Time {
	if op.Now != nil {
		return op.Now()
	}
	return time.Now()
}

func (op *OP) get(t testing.TB, u string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return op.do(t, req)
}

func (op *OP) do(t testing.TB, req *http.Request) (int, http.Header, []byte) {
	t.Helper()
	resp, err := op.HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return resp.StatusCode, resp.Header, body
}

func requireJSON(t testing.TB, what string, h http.Header) {
	t.Helper()
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	if mt != "application/json" {
		t.Fatalf("%s: Content-Type %q, want application/json", what, h.Get("Content-Type"))
	}
}

// SecureURL stands for the suite's "must be https": https, or http on a
// loopback host where tests run the provider.
func SecureURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	if u.Scheme == "https" {
		return nil
	}
	if ip := net.ParseIP(u.Hostname()); u.Scheme == "http" && ((ip != nil && ip.IsLoopback()) || u.Hostname() == "localhost") {
		return nil
	}
	return fmt.Errorf("%q is not https", raw)
}
