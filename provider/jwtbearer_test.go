package provider_test

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/smallsso/provider/provider/admin"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/storage"
)

const (
	grantJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	bearerIssuer   = "https://workload.example.org"
	bearerSubject  = "svc-reporting"
	bearerClient   = "bearer-app"
	bearerSecret   = "bearer-app-secret"
)

// issuerKey is a trusted issuer's signing key.
type issuerKey struct {
	priv crypto.Signer
	kid  string
	alg  jose.SignatureAlgorithm
}

func newIssuerKey(t *testing.T, alg jose.SignatureAlgorithm) issuerKey {
	t.Helper()
	k := newClientKey(t, "kid-"+randomString()[:8], alg)
	return issuerKey{priv: k.priv, kid: k.kid, alg: k.alg}
}

// jwks is the public key set the issuer publishes.
func jwksOf(t *testing.T, keys ...issuerKey) string {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sign makes a compact JWS of claims with k (kid in the header).
func (k issuerKey) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	return signWith(t, jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}}, claims)
}

func signWith(t *testing.T, key jose.SigningKey, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// bearerClaims is a valid assertion's claim set for ts, to be altered.
func bearerClaims(ts *testServer, iss, sub string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": iss,
		"sub": sub,
		"aud": ts.URL + "/token",
		"iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(),
		"jti": randomString(),
	}
}

// exchange presents an assertion at the token endpoint as client id.
func exchange(t *testing.T, ts *testServer, id, secret, assertion string, scopes ...string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {grantJWTBearer}, "assertion": {assertion}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	status, _, body := postForm(t, ts.URL+"/token", form, id, secret)
	return status, body
}

// wantGrantError asserts an RFC 6749 §5.2 error response with code.
func wantGrantError(t *testing.T, status int, body map[string]any, code string) {
	t.Helper()
	if body["error"] != code || status < 400 || status >= 500 {
		t.Errorf("got HTTP %d %v, want error %q", status, body, code)
	}
	if _, ok := body["access_token"]; ok {
		t.Errorf("an access token came with error %v", body["error"])
	}
}

func addTrust(t *testing.T, ts *testServer, spec clientspec.TrustSpec) storage.TrustedIssuer {
	t.Helper()
	ti, err := (&admin.Local{Store: ts.Store}).AddTrustedIssuer(context.Background(), spec)
	if err != nil {
		t.Fatalf("add trusted issuer: %v", err)
	}
	return ti
}

// bearerServer is a test server with one issuer trusted for bearerSubject
// (RS256 key, scopes api:read and reports) and a client allowed the grant.
func bearerServer(t *testing.T) (*testServer, issuerKey) {
	t.Helper()
	ts := newTestServer(t)
	key := newIssuerKey(t, jose.RS256)
	addTrust(t, ts, clientspec.TrustSpec{
		Issuer: bearerIssuer, Subject: bearerSubject, JWKS: clientspec.JWKSDoc(jwksOf(t, key)),
		Scopes: []string{"api:read", "reports"}, MaxLifetime: "10m",
	})
	ts.addClient(t, clientspec.Spec{ID: bearerClient, Secret: bearerSecret, ClientSettings: storage.ClientSettings{
		GrantTypes: []string{grantJWTBearer},
		Scopes:     []string{"api:read", "api:write", "reports"},
	}})
	return ts, key
}

func TestJWTBearerGrant(t *testing.T) {
	t.Parallel()
	ts, key := bearerServer(t)

	t.Run("success", func(t *testing.T) {
		status, body := exchange(t, ts, bearerClient, bearerSecret, key.sign(t, bearerClaims(ts, bearerIssuer, bearerSubject)), "api:read")
		if status != http.StatusOK {
			t.Fatalf("HTTP %d %v", status, body)
		}
		at, _ := body["access_token"].(string)
		if at == "" || !strings.EqualFold(body["token_type"].(string), "bearer") || body["scope"] != "api:read" {
			t.Errorf("token response %v", body)
		}
		if _, ok := body["refresh_token"]; ok {
			t.Errorf("a refresh token was issued for an assertion (RFC 7523 §2.1 grants an access token)")
		}
		in := ts.introspect(t, at)
		if in["active"] != true || in["sub"] != bearerSubject || in["scope"] != "api:read" || in["client_id"] != bearerClient {
			t.Errorf("introspection %v, want active, sub %s, scope api:read, client %s", in, bearerSubject, bearerClient)
		}
		if aud, _ := in["aud"].([]any); slices.Contains(aud, any(ts.URL+"/token")) {
			t.Errorf("the assertion's audience (this server) became the token's: %v", in["aud"])
		}
	})

	t.Run("audience may be the issuer URL", func(t *testing.T) {
		c := bearerClaims(ts, bearerIssuer, bearerSubject)
		c["aud"] = []string{"https://someone-else.example", ts.URL}
		if status, body := exchange(t, ts, bearerClient, bearerSecret, key.sign(t, c)); status != http.StatusOK {
			t.Errorf("HTTP %d %v", status, body)
		}
	})

	t.Run("without iat within max_lifetime", func(t *testing.T) {
		c := bearerClaims(ts, bearerIssuer, bearerSubject)
		delete(c, "iat")
		if status, body := exchange(t, ts, bearerClient, bearerSecret, key.sign(t, c)); status != http.StatusOK {
			t.Errorf("HTTP %d %v", status, body)
		}
	})

	t.Run("replayed jti", func(t *testing.T) {
		a := key.sign(t, bearerClaims(ts, bearerIssuer, bearerSubject))
		if status, body := exchange(t, ts, bearerClient, bearerSecret, a); status != http.StatusOK {
			t.Fatalf("first use: HTTP %d %v", status, body)
		}
		status, body := exchange(t, ts, bearerClient, bearerSecret, a)
		wantGrantError(t, status, body, "invalid_grant")

		// The same jti in a fresh assertion is a replay too.
		c := bearerClaims(ts, bearerIssuer, bearerSubject)
		c["jti"] = "fixed-jti"
		if status, body := exchange(t, ts, bearerClient, bearerSecret, key.sign(t, c)); status != http.StatusOK {
			t.Fatalf("HTTP %d %v", status, body)
		}
		c["exp"] = time.Now().Add(6 * time.Minute).Unix()
		status, body = exchange(t, ts, bearerClient, bearerSecret, key.sign(t, c))
		wantGrantError(t, status, body, "invalid_grant")
	})

	t.Run("concurrent replay", func(t *testing.T) {
		a := key.sign(t, bearerClaims(ts, bearerIssuer, bearerSubject))
		var ok, refused atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				status, body := exchange(t, ts, bearerClient, bearerSecret, a)
				switch {
				case status == http.StatusOK:
					ok.Add(1)
				case body["error"] == "invalid_grant":
					refused.Add(1)
				default:
					t.Errorf("HTTP %d %v, want success or invalid_grant", status, body)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 1 || refused.Load() != 7 {
			t.Errorf("%d successes and %d invalid_grant from 8 concurrent uses, want 1 and 7", ok.Load(), refused.Load())
		}
	})

	invalid := []struct {
		name   string
		mutate func(map[string]any)
	}{
		{"expired", func(c map[string]any) {
			c["iat"], c["exp"] = time.Now().Add(-6*time.Minute).Unix(), time.Now().Add(-time.Minute).Unix()
		}},
		{"not yet valid (nbf)", func(c map[string]any) { c["nbf"] = time.Now().Add(2 * time.Minute).Unix() }},
		{"issued in the future (iat)", func(c map[string]any) {
			c["iat"], c["exp"] = time.Now().Add(5*time.Minute).Unix(), time.Now().Add(8*time.Minute).Unix()
		}},
		{"wrong audience", func(c map[string]any) { c["aud"] = "https://other.example.org/token" }},
		{"no audience", func(c map[string]any) { delete(c, "aud") }},
		{"unknown issuer", func(c map[string]any) { c["iss"] = "https://stranger.example.org" }},
		{"wrong subject", func(c map[string]any) { c["sub"] = "svc-other" }},
		{"no subject", func(c map[string]any) { delete(c, "sub") }},
		{"missing jti", func(c map[string]any) { delete(c, "jti") }},
		{"missing exp", func(c map[string]any) { delete(c, "exp") }},
		{"lifetime above max_lifetime", func(c map[string]any) {
			c["iat"], c["exp"] = time.Now().Unix(), time.Now().Add(11*time.Minute).Unix()
		}},
		{"lifetime above max_lifetime without iat", func(c map[string]any) {
			delete(c, "iat")
			c["exp"] = time.Now().Add(11 * time.Minute).Unix()
		}},
		{"old iat with a fresh exp", func(c map[string]any) {
			c["iat"], c["exp"] = time.Now().Add(-20*time.Minute).Unix(), time.Now().Add(time.Minute).Unix()
		}},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			c := bearerClaims(ts, bearerIssuer, bearerSubject)
			tt.mutate(c)
			status, body := exchange(t, ts, bearerClient, bearerSecret, key.sign(t, c))
			wantGrantError(t, status, body, "invalid_grant")
		})
	}

	t.Run("unknown key of the trusted issuer", func(t *testing.T) {
		other := newIssuerKey(t, jose.RS256)
		status, body := exchange(t, ts, bearerClient, bearerSecret, other.sign(t, bearerClaims(ts, bearerIssuer, bearerSubject)))
		wantGrantError(t, status, body, "invalid_grant")
		// Another key claiming the trusted kid fails the signature.
		other.kid = key.kid
		status, body = exchange(t, ts, bearerClient, bearerSecret, other.sign(t, bearerClaims(ts, bearerIssuer, bearerSubject)))
		wantGrantError(t, status, body, "invalid_grant")
		// And without a kid, no trusted key verifies it.
		other.kid = ""
		status, body = exchange(t, ts, bearerClient, bearerSecret, other.sign(t, bearerClaims(ts, bearerIssuer, bearerSubject)))
		wantGrantError(t, status, body, "invalid_grant")
	})

	t.Run("HS256", func(t *testing.T) {
		a := signWith(t, jose.SigningKey{Algorithm: jose.HS256, Key: []byte("a shared secret of thirty-two bytes!")},
			bearerClaims(ts, bearerIssuer, bearerSubject))
		status, body := exchange(t, ts, bearerClient, bearerSecret, a)
		wantGrantError(t, status, body, "invalid_grant")
	})

	t.Run("alg none", func(t *testing.T) {
		enc := base64.RawURLEncoding.EncodeToString
		payload, _ := json.Marshal(bearerClaims(ts, bearerIssuer, bearerSubject))
		a := enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + "."
		status, body := exchange(t, ts, bearerClient, bearerSecret, a)
		wantGrantError(t, status, body, "invalid_grant")
	})

	t.Run("key alg differs from the header's", func(t *testing.T) {
		// The published key is RS256; the same RSA key signing PS256 is
		// not what the issuer declared.
		ps := key
		ps.alg = jose.PS256
		status, body := exchange(t, ts, bearerClient, bearerSecret, ps.sign(t, bearerClaims(ts, bearerIssuer, bearerSubject)))
		wantGrantError(t, status, body, "invalid_grant")
	})

	t.Run("not a JWT", func(t *testing.T) {
		status, body := exchange(t, ts, bearerClient, bearerSecret, "not-a-jwt")
		wantGrantError(t, status, body, "invalid_grant")
	})

	t.Run("no assertion", func(t *testing.T) {
		status, _, body := postForm(t, ts.URL+"/token", url.Values{"grant_type": {grantJWTBearer}}, bearerClient, bearerSecret)
		wantGrantError(t, status, body, "invalid_request")
	})

	t.Run("scope the issuer is not allowed", func(t *testing.T) {
		// api:write is registered for the client but not for the issuer.
		status, body := exchange(t, ts, bearerClient, bearerSecret, key.sign(t, bearerClaims(ts, bearerIssuer, bearerSubject)), "api:read", "api:write")
		wantGrantError(t, status, body, "invalid_scope")
	})

	t.Run("scope the client is not registered for", func(t *testing.T) {
		ts.addClient(t, clientspec.Spec{ID: "bearer-narrow", Secret: "narrow-secret", ClientSettings: storage.ClientSettings{
			GrantTypes: []string{grantJWTBearer},
			Scopes:     []string{"api:read"},
		}})
		status, body := exchange(t, ts, "bearer-narrow", "narrow-secret", key.sign(t, bearerClaims(ts, bearerIssuer, bearerSubject)), "reports")
		wantGrantError(t, status, body, "invalid_scope")
	})

	t.Run("client without the grant", func(t *testing.T) {
		status, body := exchange(t, ts, "svc", "svc-secret", key.sign(t, bearerClaims(ts, bearerIssuer, bearerSubject)))
		wantGrantError(t, status, body, "unauthorized_client")
	})

	t.Run("public client", func(t *testing.T) {
		spec := clientspec.Spec{ID: "bearer-public", ClientSettings: storage.ClientSettings{Public: true, GrantTypes: []string{grantJWTBearer}, Scopes: []string{"api:read"}}}
		if _, _, err := (&admin.Local{Store: ts.Store}).AddClient(context.Background(), spec); err == nil || !strings.Contains(err.Error(), "public client") {
			t.Errorf("adding a public client with the grant: %v, want refused", err)
		}
		// One stored before that rule (or by another tool) is refused at
		// the token endpoint.
		err := ts.Store.CreateClient(context.Background(), storage.Client{ID: "bearer-public", ClientSettings: storage.ClientSettings{
			Public:                  true,
			TokenEndpointAuthMethod: "none",
			GrantTypes:              []string{grantJWTBearer},
			Scopes:                  []string{"api:read"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		status, _, body := postForm(t, ts.URL+"/token", url.Values{"grant_type": {grantJWTBearer}, "client_id": {"bearer-public"},
			"assertion": {key.sign(t, bearerClaims(ts, bearerIssuer, bearerSubject))}}, "", "")
		wantGrantError(t, status, body, "unauthorized_client")
	})

	t.Run("no client authentication", func(t *testing.T) {
		status, body := exchange(t, ts, "", "", key.sign(t, bearerClaims(ts, bearerIssuer, bearerSubject)))
		wantGrantError(t, status, body, "invalid_client")
	})

	t.Run("wrong client secret", func(t *testing.T) {
		status, body := exchange(t, ts, bearerClient, "wrong", key.sign(t, bearerClaims(ts, bearerIssuer, bearerSubject)))
		wantGrantError(t, status, body, "invalid_client")
	})
}

// An issuer trusted for any subject accepts each, and an issuer's jti does
// not collide with another issuer's.
func TestJWTBearerAnySubjectAndJTINamespaces(t *testing.T) {
	t.Parallel()
	ts, key := bearerServer(t)
	anyKey := newIssuerKey(t, jose.ES256)
	const anyIssuer = "https://federation.example.net"
	addTrust(t, ts, clientspec.TrustSpec{Issuer: anyIssuer, AnySubject: true, JWKS: clientspec.JWKSDoc(jwksOf(t, anyKey)),
		Scopes: []string{"reports"}})

	for _, sub := range []string{"user-1", "someone@example.net", bearerSubject} {
		status, body := exchange(t, ts, bearerClient, bearerSecret, anyKey.sign(t, bearerClaims(ts, anyIssuer, sub)), "reports")
		if status != http.StatusOK {
			t.Fatalf("sub %q: HTTP %d %v", sub, status, body)
		}
		if in := ts.introspect(t, body["access_token"].(string)); in["sub"] != sub || in["scope"] != "reports" {
			t.Errorf("sub %q: introspection %v", sub, in)
		}
	}
	// Its scopes are its own, not the other issuer's.
	status, body := exchange(t, ts, bearerClient, bearerSecret, anyKey.sign(t, bearerClaims(ts, anyIssuer, "user-1")), "api:read")
	wantGrantError(t, status, body, "invalid_scope")

	// The same jti from two issuers: two different assertions.
	for _, a := range []string{
		anyKey.sign(t, withJTI(bearerClaims(ts, anyIssuer, "user-2"), "shared-jti")),
		key.sign(t, withJTI(bearerClaims(ts, bearerIssuer, bearerSubject), "shared-jti")),
	} {
		if status, body := exchange(t, ts, bearerClient, bearerSecret, a); status != http.StatusOK {
			t.Errorf("HTTP %d %v", status, body)
		}
	}
	// A client assertion's jti lives apart too: recording one does not
	// burn an issuer's.
	if err := ts.Store.CreateJTI(context.Background(), storage.JTI{ID: "client-jti", ExpiresAt: time.Now().Add(time.Hour)}, time.Now()); err != nil {
		t.Fatal(err)
	}
	a := key.sign(t, withJTI(bearerClaims(ts, bearerIssuer, bearerSubject), "client-jti"))
	if status, body := exchange(t, ts, bearerClient, bearerSecret, a); status != http.StatusOK {
		t.Errorf("HTTP %d %v", status, body)
	}
}

func withJTI(c map[string]any, jti string) map[string]any {
	c["jti"] = jti
	return c
}

// A subject-bound entry wins over an any-subject entry of the same issuer:
// its own scopes and lifetime apply.
func TestJWTBearerSubjectEntryWins(t *testing.T) {
	t.Parallel()
	ts, key := bearerServer(t)
	addTrust(t, ts, clientspec.TrustSpec{Issuer: bearerIssuer, AnySubject: true, JWKS: clientspec.JWKSDoc(jwksOf(t, key)),
		Scopes: []string{"api:write"}, MaxLifetime: "1h"})

	status, body := exchange(t, ts, bearerClient, bearerSecret, key.sign(t, bearerClaims(ts, bearerIssuer, bearerSubject)), "api:write")
	wantGrantError(t, status, body, "invalid_scope")
	status, body = exchange(t, ts, bearerClient, bearerSecret, key.sign(t, bearerClaims(ts, bearerIssuer, "another")), "api:write")
	if status != http.StatusOK {
		t.Errorf("any-subject entry: HTTP %d %v", status, body)
	}
	// The subject entry's 10m limit applies to its subject, the other's 1h
	// to the rest.
	long := bearerClaims(ts, bearerIssuer, bearerSubject)
	long["exp"] = time.Now().Add(30 * time.Minute).Unix()
	status, body = exchange(t, ts, bearerClient, bearerSecret, key.sign(t, long))
	wantGrantError(t, status, body, "invalid_grant")
	long["sub"] = "another"
	if status, body := exchange(t, ts, bearerClient, bearerSecret, key.sign(t, long)); status != http.StatusOK {
		t.Errorf("HTTP %d %v", status, body)
	}
}

// An issuer whose keys are fetched from its jwks_uri (EdDSA and ES256),
// fetched once and then served from the cache.
func TestJWTBearerJWKSURI(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ed, ec := newIssuerKey(t, jose.EdDSA), newIssuerKey(t, jose.ES256)
	published := jwksOf(t, ed, ec)
	var fetches atomic.Int32
	jwksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(published))
	}))
	t.Cleanup(jwksSrv.Close)

	const iss = "https://remote-issuer.example.org"
	addTrust(t, ts, clientspec.TrustSpec{Issuer: iss, AnySubject: true, JWKSURI: jwksSrv.URL + "/jwks.json", Scopes: []string{"api:read"}})
	ts.addClient(t, clientspec.Spec{ID: bearerClient, Secret: bearerSecret, ClientSettings: storage.ClientSettings{GrantTypes: []string{grantJWTBearer}, Scopes: []string{"api:read"}}})

	for i, k := range []issuerKey{ed, ec} {
		sub := "job-" + string(k.alg)
		status, body := exchange(t, ts, bearerClient, bearerSecret, k.sign(t, bearerClaims(ts, iss, sub)), "api:read")
		if status != http.StatusOK {
			t.Fatalf("%s: HTTP %d %v", k.alg, status, body)
		}
		if in := ts.introspect(t, body["access_token"].(string)); in["active"] != true || in["sub"] != sub || in["scope"] != "api:read" {
			t.Errorf("%s: introspection %v", k.alg, in)
		}
		if i == 0 && fetches.Load() != 1 {
			t.Errorf("%d fetches of the key set after the first assertion, want 1", fetches.Load())
		}
	}

	// A key the issuer does not publish is refused, with or without a kid.
	stranger := newIssuerKey(t, jose.ES256)
	status, body := exchange(t, ts, bearerClient, bearerSecret, stranger.sign(t, bearerClaims(ts, iss, "job-x")))
	wantGrantError(t, status, body, "invalid_grant")
	stranger.kid = ""
	status, body = exchange(t, ts, bearerClient, bearerSecret, stranger.sign(t, bearerClaims(ts, iss, "job-x")))
	wantGrantError(t, status, body, "invalid_grant")

	// An unreachable key set is an invalid grant, not a server error.
	addTrust(t, ts, clientspec.TrustSpec{Issuer: "https://gone.example.org", AnySubject: true, JWKSURI: "http://127.0.0.1:1/jwks.json"})
	status, body = exchange(t, ts, bearerClient, bearerSecret, ed.sign(t, bearerClaims(ts, "https://gone.example.org", "job-y")))
	wantGrantError(t, status, body, "invalid_grant")
}

// The grant is advertised where clients look for it.
func TestJWTBearerDiscovery(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/.well-known/openid-configuration", nil)
	status, _, doc := doJSON(t, req)
	if status != http.StatusOK {
		t.Fatalf("HTTP %d", status)
	}
	grants, _ := doc["grant_types_supported"].([]any)
	if !slices.Contains(grants, any(grantJWTBearer)) {
		t.Errorf("grant_types_supported %v lacks %s", grants, grantJWTBearer)
	}
}
