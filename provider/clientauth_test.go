package provider_test

import (
	"github.com/smallsso/provider/storage"

	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
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
	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/admin"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/providertest"
)

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// clientKey is a client's key pair for private_key_jwt.
type clientKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func newClientKey(t testing.TB, kid string, alg jose.SignatureAlgorithm) clientKey {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.RS256, jose.PS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("no key type for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return clientKey{kid: kid, alg: alg, priv: priv}
}

func (k clientKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Use: "sig"}
}

// jwksJSON is the public key set of keys, as a client registers it.
func jwksJSON(t testing.TB, keys ...clientKey) string {
	t.Helper()
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.public())
	}
	raw, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// assertionClaims are valid client assertion claims for clientID at ts.
func assertionClaims(ts *testServer, clientID string, now time.Time) jwt.Claims {
	return jwt.Claims{
		Issuer:   clientID,
		Subject:  clientID,
		Audience: jwt.Audience{ts.URL + "/token"},
		Expiry:   jwt.NewNumericDate(now.Add(2 * time.Minute)),
		IssuedAt: jwt.NewNumericDate(now),
		ID:       rand.Text(),
	}
}

// signAssertion signs claims with key (a []byte for HMAC) as a client would.
func signAssertion(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (k clientKey) sign(t testing.TB, claims any) string {
	t.Helper()
	return signAssertion(t, k.alg, k.priv, k.kid, claims)
}

func assertionForm(assertion string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {assertionType}, "client_assertion": {assertion}}
}

// wantToken asserts a successful token response.
func wantToken(t *testing.T, status int, body map[string]any) {
	t.Helper()
	if status != http.StatusOK || body["access_token"] == nil {
		t.Fatalf("HTTP %d %v, want a token", status, body)
	}
}

// wantError asserts an RFC 6749 error response that mentions hint.
func wantError(t *testing.T, status int, body map[string]any, wantStatus int, code, hint string) {
	t.Helper()
	desc, _ := body["error_description"].(string)
	if status != wantStatus || body["error"] != code || !strings.Contains(desc, hint) {
		t.Fatalf("HTTP %d %v, want %d %s mentioning %q", status, body, wantStatus, code, hint)
	}
}

var ccForm = url.Values{"grant_type": {"client_credentials"}}

// A client registered for client_secret_basic or client_secret_post may
// use either; the secret is checked either way.
func TestClientSecretBasicAndPost(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	basic := ts.addClient(t, clientspec.Spec{ID: "cc-basic", ClientSettings: storage.ClientSettings{GrantTypes: []string{"client_credentials"}, Scopes: []string{"api"}}})
	post := ts.addClient(t, clientspec.Spec{ID: "cc-post", ClientSettings: storage.ClientSettings{
		TokenEndpointAuthMethod: "client_secret_post",
		GrantTypes:              []string{"client_credentials"},
		Scopes:                  []string{"api"},
		Introspect:              clientspec.IntrospectAny,
	}})
	inBody := func(id, secret string) url.Values {
		f := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}}
		if secret != "" {
			f.Set("client_secret", secret)
		}
		return f
	}
	for _, c := range []struct{ id, secret string }{{"cc-basic", basic}, {"cc-post", post}} {
		t.Run(c.id+" with basic", func(t *testing.T) {
			status, _, body := postForm(t, ts.URL+"/token", ccForm, c.id, c.secret)
			wantToken(t, status, body)
		})
		t.Run(c.id+" with post", func(t *testing.T) {
			status, _, body := postForm(t, ts.URL+"/token", inBody(c.id, c.secret), "", "")
			wantToken(t, status, body)
		})
		t.Run(c.id+" with the same credentials both ways", func(t *testing.T) {
			status, _, body := postForm(t, ts.URL+"/token", inBody(c.id, c.secret), c.id, c.secret)
			wantToken(t, status, body)
		})
		t.Run(c.id+" wrong secret with basic", func(t *testing.T) {
			status, _, body := postForm(t, ts.URL+"/token", ccForm, c.id, "wrong")
			wantError(t, status, body, 401, "invalid_client", "")
		})
		t.Run(c.id+" wrong secret with post", func(t *testing.T) {
			status, _, body := postForm(t, ts.URL+"/token", inBody(c.id, "wrong"), "", "")
			wantError(t, status, body, 401, "invalid_client", "")
		})
		t.Run(c.id+" without a secret", func(t *testing.T) {
			status, _, body := postForm(t, ts.URL+"/token", inBody(c.id, ""), "", "")
			wantError(t, status, body, 401, "invalid_client", "")
		})
		t.Run(c.id+" different credentials both ways", func(t *testing.T) {
			status, _, body := postForm(t, ts.URL+"/token", inBody(c.id, "wrong"), c.id, c.secret)
			wantError(t, status, body, 400, "invalid_request", "more than one client authentication method")
		})
	}

	// Introspection and revocation authenticate the same way.
	_, _, tok := postForm(t, ts.URL+"/token", ccForm, "cc-basic", basic)
	access := tok["access_token"].(string)
	form := inBody("cc-post", post)
	form.Del("grant_type")
	form.Set("token", access)
	status, _, intro := postForm(t, ts.URL+"/introspect", form, "", "")
	if status != http.StatusOK || intro["active"] != true || intro["client_id"] != "cc-basic" {
		t.Fatalf("introspection with client_secret_post: HTTP %d %v", status, intro)
	}
	status, _, intro = postForm(t, ts.URL+"/introspect", url.Values{"token": {access}}, "cc-post", "wrong")
	wantError(t, status, intro, 401, "invalid_client", "")
	if status, _, body := postForm(t, ts.URL+"/revoke", url.Values{"token": {access}}, "cc-basic", "wrong"); status != 401 || body["error"] != "invalid_client" {
		t.Fatalf("revocation with a wrong secret: HTTP %d %v", status, body)
	}
	form = inBody("cc-basic", basic)
	form.Del("grant_type")
	form.Set("token", access)
	if status, _, body := postForm(t, ts.URL+"/revoke", form, "", ""); status != http.StatusOK {
		t.Fatalf("revocation with client_secret_post: HTTP %d %v", status, body)
	}
	if ts.introspect(t, access)["active"] != false {
		t.Error("revoked token is still active")
	}
}

// requests-oauthlib exchanges the code with HTTP Basic and refreshes with
// the secret in the body, for one client.
func TestBasicClientRefreshesWithPost(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rp := newRP(t, ts, "web", "web-secret", webRedirect, "openid", "offline_access")
	rp.oauth2.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	f := rp.authorize(t, providertest.NewBrowser(ts.URL), alicePass, "allow")
	tok, err := rp.oauth2.Exchange(context.Background(), f.code(t, ts.URL), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatalf("exchange with basic: %v", err)
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {"web"}, "client_secret": {"web-secret"}}
	status, _, body := postForm(t, ts.URL+"/token", form, "", "")
	wantToken(t, status, body)
}

// Public clients authenticate with nothing but their ID.
func TestPublicClientPresentsNoCredential(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	status, _, body := postForm(t, ts.URL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, "spa", "a-secret")
	wantError(t, status, body, 401, "invalid_client", "method 'none'")
	status, _, body = postForm(t, ts.URL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {"spa"}, "client_secret": {"a-secret"}}, "", "")
	wantError(t, status, body, 401, "invalid_client", "method 'none'")
	k := newClientKey(t, "k", jose.ES256)
	status, _, body = postForm(t, ts.URL+"/token", assertionForm(k.sign(t, assertionClaims(ts, "spa", time.Now()))), "", "")
	wantError(t, status, body, 401, "invalid_client", "registered for none")
	// Revocation with the client ID alone works (RFC 7009 §2.1).
	if status, _, body := postForm(t, ts.URL+"/revoke", url.Values{"token": {"unknown"}, "client_id": {"spa"}}, "", ""); status != http.StatusOK {
		t.Fatalf("public revocation: HTTP %d %v", status, body)
	}
	// Introspection is for confidential clients.
	status, _, body = postForm(t, ts.URL+"/introspect", url.Values{"token": {"unknown"}, "client_id": {"spa"}}, "", "")
	wantError(t, status, body, 401, "invalid_client", "public client")
}

func TestClientSecretJWT(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	secret := "a-client-secret-of-more-than-thirty-two-bytes-for-hs256"
	ts.addClient(t, clientspec.Spec{ID: "sjwt", Secret: secret, ClientSettings: storage.ClientSettings{
		TokenEndpointAuthMethod: "client_secret_jwt",
		GrantTypes:              []string{"client_credentials"},
		Scopes:                  []string{"api"},
	}})
	ts.addClient(t, clientspec.Spec{ID: "sjwt2", Secret: secret, ClientSettings: storage.ClientSettings{
		TokenEndpointAuthMethod: "client_secret_jwt",
		GrantTypes:              []string{"client_credentials"},
		Scopes:                  []string{"api"},
	}})
	pinned := "a-secret-long-enough-for-hs384-which-needs-forty-eight-bytes"
	ts.addClient(t, clientspec.Spec{ID: "sjwt384", Secret: pinned, ClientSettings: storage.ClientSettings{
		TokenEndpointAuthMethod:     "client_secret_jwt",
		TokenEndpointAuthSigningAlg: "HS384",
		GrantTypes:                  []string{"client_credentials"},
	}})
	hs := func(claims any) string { return signAssertion(t, jose.HS256, []byte(secret), "", claims) }
	post := func(form url.Values) (int, map[string]any) {
		status, _, body := postForm(t, ts.URL+"/token", form, "", "")
		return status, body
	}

	t.Run("valid", func(t *testing.T) {
		status, body := post(assertionForm(hs(assertionClaims(ts, "sjwt", time.Now()))))
		wantToken(t, status, body)
	})
	t.Run("audience is the issuer", func(t *testing.T) {
		c := assertionClaims(ts, "sjwt", time.Now())
		c.Audience = jwt.Audience{ts.URL}
		status, body := post(assertionForm(hs(c)))
		wantToken(t, status, body)
	})
	t.Run("with client_id in the form", func(t *testing.T) {
		f := assertionForm(hs(assertionClaims(ts, "sjwt", time.Now())))
		f.Set("client_id", "sjwt")
		status, body := post(f)
		wantToken(t, status, body)
	})
	t.Run("client_id in the form is another client", func(t *testing.T) {
		f := assertionForm(hs(assertionClaims(ts, "sjwt", time.Now())))
		f.Set("client_id", "sjwt2")
		status, body := post(f)
		wantError(t, status, body, 401, "invalid_client", "iss and sub")
	})
	t.Run("HMAC with another key", func(t *testing.T) {
		raw := signAssertion(t, jose.HS256, []byte(strings.ToUpper(secret)), "", assertionClaims(ts, "sjwt", time.Now()))
		status, body := post(assertionForm(raw))
		wantError(t, status, body, 401, "invalid_client", "does not verify")
	})
	t.Run("replayed jti", func(t *testing.T) {
		raw := hs(assertionClaims(ts, "sjwt", time.Now()))
		status, body := post(assertionForm(raw))
		wantToken(t, status, body)
		status, body = post(assertionForm(raw))
		wantError(t, status, body, 401, "invalid_client", "jti was already used")
	})
	t.Run("one jti for two clients", func(t *testing.T) {
		c := assertionClaims(ts, "sjwt", time.Now())
		status, body := post(assertionForm(hs(c)))
		wantToken(t, status, body)
		c.Issuer, c.Subject = "sjwt2", "sjwt2"
		status, body = post(assertionForm(hs(c)))
		wantToken(t, status, body)
	})
	t.Run("expired", func(t *testing.T) {
		c := assertionClaims(ts, "sjwt", time.Now().Add(-10*time.Minute))
		status, body := post(assertionForm(hs(c)))
		wantError(t, status, body, 401, "invalid_client", "expired")
	})
	t.Run("within the clock skew", func(t *testing.T) {
		c := assertionClaims(ts, "sjwt", time.Now())
		c.Expiry = jwt.NewNumericDate(time.Now().Add(-20 * time.Second))
		status, body := post(assertionForm(hs(c)))
		wantToken(t, status, body)
	})
	t.Run("no exp", func(t *testing.T) {
		c := assertionClaims(ts, "sjwt", time.Now())
		c.Expiry = nil
		status, body := post(assertionForm(hs(c)))
		wantError(t, status, body, 401, "invalid_client", "no exp")
	})
	t.Run("exp too far ahead", func(t *testing.T) {
		c := assertionClaims(ts, "sjwt", time.Now())
		c.Expiry = jwt.NewNumericDate(time.Now().Add(24 * time.Hour))
		status, body := post(assertionForm(hs(c)))
		wantError(t, status, body, 401, "invalid_client", "more than an hour")
	})
	t.Run("not valid yet", func(t *testing.T) {
		c := assertionClaims(ts, "sjwt", time.Now())
		c.NotBefore = jwt.NewNumericDate(time.Now().Add(10 * time.Minute))
		c.Expiry = jwt.NewNumericDate(time.Now().Add(15 * time.Minute))
		status, body := post(assertionForm(hs(c)))
		wantError(t, status, body, 401, "invalid_client", "not valid yet")
	})
	t.Run("issued in the future", func(t *testing.T) {
		c := assertionClaims(ts, "sjwt", time.Now())
		c.IssuedAt = jwt.NewNumericDate(time.Now().Add(10 * time.Minute))
		status, body := post(assertionForm(hs(c)))
		wantError(t, status, body, 401, "invalid_client", "future")
	})
	t.Run("no jti", func(t *testing.T) {
		c := assertionClaims(ts, "sjwt", time.Now())
		c.ID = ""
		status, body := post(assertionForm(hs(c)))
		wantError(t, status, body, 401, "invalid_client", "no jti")
	})
	t.Run("wrong audience", func(t *testing.T) {
		c := assertionClaims(ts, "sjwt", time.Now())
		c.Audience = jwt.Audience{"https://elsewhere.example/token"}
		status, body := post(assertionForm(hs(c)))
		wantError(t, status, body, 401, "invalid_client", "aud must contain")
	})
	t.Run("iss is not sub", func(t *testing.T) {
		c := assertionClaims(ts, "sjwt", time.Now())
		c.Issuer = "someone-else"
		status, body := post(assertionForm(hs(c)))
		wantError(t, status, body, 401, "invalid_client", "iss and sub")
	})
	t.Run("alg none", func(t *testing.T) {
		b64 := base64.RawURLEncoding.EncodeToString
		claims, _ := json.Marshal(assertionClaims(ts, "sjwt", time.Now()))
		raw := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64(claims) + "."
		status, body := post(assertionForm(raw))
		wantError(t, status, body, 401, "invalid_client", "not a JWT signed with")
	})
	t.Run("plain secret with basic", func(t *testing.T) {
		status, _, body := postForm(t, ts.URL+"/token", ccForm, "sjwt", secret)
		wantError(t, status, body, 401, "invalid_client", "method 'client_secret_jwt'")
	})
	t.Run("plain secret with post", func(t *testing.T) {
		status, body := post(url.Values{"grant_type": {"client_credentials"}, "client_id": {"sjwt"}, "client_secret": {secret}})
		wantError(t, status, body, 401, "invalid_client", "method 'client_secret_jwt'")
	})
	t.Run("assertion and basic together", func(t *testing.T) {
		status, _, body := postForm(t, ts.URL+"/token", assertionForm(hs(assertionClaims(ts, "sjwt", time.Now()))), "sjwt", secret)
		wantError(t, status, body, 400, "invalid_request", "more than one")
	})
	t.Run("unknown assertion type", func(t *testing.T) {
		f := assertionForm(hs(assertionClaims(ts, "sjwt", time.Now())))
		f.Set("client_assertion_type", "urn:example:saml")
		status, body := post(f)
		wantError(t, status, body, 400, "invalid_request", "client_assertion_type")
	})
	t.Run("unknown client", func(t *testing.T) {
		status, body := post(assertionForm(hs(assertionClaims(ts, "nobody", time.Now()))))
		wantError(t, status, body, 401, "invalid_client", "")
	})
	t.Run("pinned algorithm", func(t *testing.T) {
		raw := signAssertion(t, jose.HS256, []byte(pinned), "", assertionClaims(ts, "sjwt384", time.Now()))
		status, body := post(assertionForm(raw))
		wantError(t, status, body, 401, "invalid_client", "must be signed with HS384")
		raw = signAssertion(t, jose.HS384, []byte(pinned), "", assertionClaims(ts, "sjwt384", time.Now()))
		status, body = post(assertionForm(raw))
		wantToken(t, status, body)
	})
	t.Run("secret too short for HS512", func(t *testing.T) {
		raw := signAssertion(t, jose.HS512, []byte(secret+secret), "", assertionClaims(ts, "sjwt", time.Now()))
		status, body := post(assertionForm(raw))
		wantError(t, status, body, 401, "invalid_client", "too short for HS512")
	})
	t.Run("introspection and revocation", func(t *testing.T) {
		_, body := post(assertionForm(hs(assertionClaims(ts, "sjwt", time.Now()))))
		access := body["access_token"].(string)
		f := assertionForm(hs(assertionClaims(ts, "sjwt", time.Now())))
		f.Del("grant_type")
		f.Set("token", access)
		status, _, intro := postForm(t, ts.URL+"/introspect", f, "", "")
		if status != http.StatusOK || intro["active"] != true || intro["client_id"] != "sjwt" {
			t.Fatalf("introspection with client_secret_jwt: HTTP %d %v", status, intro)
		}
		// The same assertion again is a replay, at any endpoint.
		status, _, intro = postForm(t, ts.URL+"/introspect", f, "", "")
		wantError(t, status, intro, 401, "invalid_client", "jti was already used")
		f = assertionForm(hs(assertionClaims(ts, "sjwt", time.Now())))
		f.Del("grant_type")
		f.Set("token", access)
		if status, _, body := postForm(t, ts.URL+"/revoke", f, "", ""); status != http.StatusOK {
			t.Fatalf("revocation with client_secret_jwt: HTTP %d %v", status, body)
		}
		if ts.introspect(t, access)["active"] != false {
			t.Error("revoked token is still active")
		}
	})
}

// The secret of a client_secret_jwt client is stored encrypted, never in
// clear and never in listings.
func TestClientSecretJWTSealedAtRest(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	secret := "a-client-secret-of-more-than-thirty-two-bytes-for-hs256"
	ts.addClient(t, clientspec.Spec{ID: "sjwt", Secret: secret, ClientSettings: storage.ClientSettings{TokenEndpointAuthMethod: "client_secret_jwt", GrantTypes: []string{"client_credentials"}}})
	rec, err := ts.Store.GetClient(context.Background(), "sjwt")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(rec)
	if len(rec.SecretSealed) == 0 || rec.SecretHash != "" {
		t.Fatalf("stored client: sealed %d bytes, hash %q; want only a sealed secret", len(rec.SecretSealed), rec.SecretHash)
	}
	for _, leak := range []string{secret, base64.StdEncoding.EncodeToString([]byte(secret)), secret[:16]} {
		if strings.Contains(string(raw), leak) || strings.Contains(string(rec.SecretSealed), leak) {
			t.Fatalf("the stored record contains the secret in clear: %s", raw)
		}
	}
	// Sealed for this client only: moved to another record it does not open.
	other := rec
	other.ID = "copy"
	if err := ts.Store.CreateClient(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	c := assertionClaims(ts, "copy", time.Now())
	status, _, body := postForm(t, ts.URL+"/token", assertionForm(signAssertion(t, jose.HS256, []byte(secret), "", c)), "", "")
	wantError(t, status, body, 401, "invalid_client", "no usable secret")

	list, err := (&admin.Local{Store: ts.Store}).ListClients(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if len(c.SecretSealed) != 0 || c.SecretHash != "" {
			t.Errorf("listing shows secret material of %s", c.ID)
		}
	}
}

func TestPrivateKeyJWTInlineKeys(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rsaKey := newClientKey(t, "rsa-1", jose.RS256)
	ecKey := newClientKey(t, "ec-1", jose.ES256)
	edKey := newClientKey(t, "ed-1", jose.EdDSA)
	ts.addClient(t, clientspec.Spec{ID: "pk", ClientSettings: storage.ClientSettings{TokenEndpointAuthMethod: "private_key_jwt", GrantTypes: []string{"client_credentials"}, Scopes: []string{"api"}},
		JWKS: clientspec.JWKSDoc(jwksJSON(t, rsaKey, ecKey, edKey))})
	post := func(form url.Values) (int, map[string]any) {
		status, _, body := postForm(t, ts.URL+"/token", form, "", "")
		return status, body
	}
	for _, k := range []clientKey{rsaKey, ecKey, edKey} {
		t.Run(string(k.alg), func(t *testing.T) {
			status, body := post(assertionForm(k.sign(t, assertionClaims(ts, "pk", time.Now()))))
			wantToken(t, status, body)
		})
	}
	t.Run("PS256 with the RSA key", func(t *testing.T) {
		raw := signAssertion(t, jose.PS256, rsaKey.priv, rsaKey.kid, assertionClaims(ts, "pk", time.Now()))
		status, body := post(assertionForm(raw))
		wantToken(t, status, body)
	})
	t.Run("no kid", func(t *testing.T) {
		raw := signAssertion(t, jose.ES256, ecKey.priv, "", assertionClaims(ts, "pk", time.Now()))
		status, body := post(assertionForm(raw))
		wantToken(t, status, body)
	})
	t.Run("key not in the client's set", func(t *testing.T) {
		stranger := newClientKey(t, "ec-1", jose.ES256)
		status, body := post(assertionForm(stranger.sign(t, assertionClaims(ts, "pk", time.Now()))))
		wantError(t, status, body, 401, "invalid_client", "does not verify")
		stranger.kid = "unknown"
		status, body = post(assertionForm(stranger.sign(t, assertionClaims(ts, "pk", time.Now()))))
		wantError(t, status, body, 401, "invalid_client", "No key")
	})
	t.Run("kid of a key of another type", func(t *testing.T) {
		raw := signAssertion(t, jose.ES256, ecKey.priv, rsaKey.kid, assertionClaims(ts, "pk", time.Now()))
		status, body := post(assertionForm(raw))
		wantError(t, status, body, 401, "invalid_client", "No key")
	})
	t.Run("HMAC keyed with the public key", func(t *testing.T) {
		der, err := x509.MarshalPKIXPublicKey(rsaKey.priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		jwk, _ := json.Marshal(rsaKey.public())
		for _, key := range [][]byte{pemKey, der, jwk} {
			raw := signAssertion(t, jose.HS256, key, rsaKey.kid, assertionClaims(ts, "pk", time.Now()))
			status, body := post(assertionForm(raw))
			wantError(t, status, body, 401, "invalid_client", "cannot be signed with HS256")
		}
	})
	t.Run("plain secret", func(t *testing.T) {
		status, _, body := postForm(t, ts.URL+"/token", ccForm, "pk", "anything")
		wantError(t, status, body, 401, "invalid_client", "method 'private_key_jwt'")
	})
	t.Run("assertion for a secret client", func(t *testing.T) {
		status, body := post(assertionForm(rsaKey.sign(t, assertionClaims(ts, "svc", time.Now()))))
		wantError(t, status, body, 401, "invalid_client", "registered for client_secret_basic")
	})
}

// testClock is the provider's clock, movable by the test.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// jwksServer publishes a key set that the test can change.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    string
	fetches atomic.Int32
}

func newJWKSServer(t *testing.T, body string) *jwksServer {
	s := &jwksServer{body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(s.body))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(body string) {
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
}

func TestPrivateKeyJWTRemoteKeys(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	ts := newTestServerDeps(t, func(d *provider.Deps) { d.Now = clock.Now })
	old := newClientKey(t, "2024", jose.ES256)
	fresh := newClientKey(t, "2025", jose.RS256)
	pub := newJWKSServer(t, jwksJSON(t, old))
	ts.addClient(t, clientspec.Spec{ID: "pk-uri", ClientSettings: storage.ClientSettings{
		TokenEndpointAuthMethod: "private_key_jwt",
		JWKSURI:                 pub.URL + "/jwks.json",
		GrantTypes:              []string{"client_credentials"},
	}})
	try := func(k clientKey) (int, map[string]any) {
		status, _, body := postForm(t, ts.URL+"/token", assertionForm(k.sign(t, assertionClaims(ts, "pk-uri", clock.Now()))), "", "")
		return status, body
	}

	status, body := try(old)
	wantToken(t, status, body)
	status, body = try(old)
	wantToken(t, status, body)
	if n := pub.fetches.Load(); n != 1 {
		t.Fatalf("jwks_uri fetched %d times for two assertions, want 1 (cached)", n)
	}

	// The client rotates: the new kid is fetched for, once the last fetch
	// is old enough not to make the provider an amplifier.
	pub.set(jwksJSON(t, fresh))
	status, body = try(fresh)
	wantError(t, status, body, 401, "invalid_client", "No key")
	clock.Advance(15 * time.Second)
	status, body = try(fresh)
	wantToken(t, status, body)
	status, body = try(old)
	wantError(t, status, body, 401, "invalid_client", "No key")

	// An outage keeps the last good set.
	pub.Close()
	clock.Advance(15 * time.Minute)
	status, body = try(fresh)
	wantToken(t, status, body)
}

func TestClientAuthDiscovery(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/.well-known/openid-configuration", nil)
	_, _, doc := doJSON(t, req)
	strs := func(key string) []string {
		var out []string
		for _, v := range doc[key].([]any) {
			out = append(out, v.(string))
		}
		slices.Sort(out)
		return out
	}
	five := []string{"client_secret_basic", "client_secret_jwt", "client_secret_post", "none", "private_key_jwt"}
	algs := []string{"ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"}
	for key, want := range map[string][]string{
		"token_endpoint_auth_methods_supported":                    five,
		"revocation_endpoint_auth_methods_supported":               five,
		"introspection_endpoint_auth_methods_supported":            slices.DeleteFunc(slices.Clone(five), func(s string) bool { return s == "none" }),
		"token_endpoint_auth_signing_alg_values_supported":         algs,
		"revocation_endpoint_auth_signing_alg_values_supported":    algs,
		"introspection_endpoint_auth_signing_alg_values_supported": algs,
	} {
		if got := strs(key); !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
}

func TestClientSpecAuthValidation(t *testing.T) {
	t.Parallel()
	longSecret := strings.Repeat("s", 40)
	rsaKey := newClientKey(t, "r", jose.RS256)
	jwks := clientspec.JWKSDoc(jwksJSON(t, rsaKey))
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallSet, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &small.PublicKey, KeyID: "s"}}})
	privSet, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: rsaKey.priv, KeyID: "p"}}})
	base := func(method string) clientspec.Spec {
		return clientspec.Spec{ID: "c", ClientSettings: storage.ClientSettings{TokenEndpointAuthMethod: method, GrantTypes: []string{"client_credentials"}}}
	}
	with := func(c clientspec.Spec, f func(*clientspec.Spec)) clientspec.Spec { f(&c); return c }
	cases := []struct {
		name string
		spec clientspec.Spec
		want string // "" is valid
	}{
		{"secret jwt", with(base("client_secret_jwt"), func(c *clientspec.Spec) { c.Secret = longSecret }), ""},
		{"secret jwt with a hash", with(base("client_secret_jwt"), func(c *clientspec.Spec) {
			c.SecretHash = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
		}), "secret_hash cannot"},
		{"secret jwt without a secret", base("client_secret_jwt"), "needs a secret"},
		{"secret jwt short secret", with(base("client_secret_jwt"), func(c *clientspec.Spec) { c.Secret = "short" }), "at least 32 bytes"},
		{"secret jwt HS512 needs 64", with(base("client_secret_jwt"), func(c *clientspec.Spec) {
			c.Secret, c.TokenEndpointAuthSigningAlg = longSecret, "HS512"
		}), "at least 64 bytes"},
		{"secret jwt pinned to RS256", with(base("client_secret_jwt"), func(c *clientspec.Spec) {
			c.Secret, c.TokenEndpointAuthSigningAlg = longSecret, "RS256"
		}), "does not fit client_secret_jwt"},
		{"private key jwt", with(base("private_key_jwt"), func(c *clientspec.Spec) { c.JWKS = jwks }), ""},
		{"private key jwt by URI", with(base("private_key_jwt"), func(c *clientspec.Spec) { c.JWKSURI = "https://app.example/jwks" }), ""},
		{"private key jwt without keys", base("private_key_jwt"), "jwks or jwks_uri"},
		{"private key jwt with both", with(base("private_key_jwt"), func(c *clientspec.Spec) {
			c.JWKS, c.JWKSURI = jwks, "https://app.example/jwks"
		}), "not both"},
		{"private key jwt with a secret", with(base("private_key_jwt"), func(c *clientspec.Spec) { c.JWKS, c.Secret = jwks, longSecret }), "has no secret"},
		{"private key jwt over http", with(base("private_key_jwt"), func(c *clientspec.Spec) { c.JWKSURI = "http://app.example/jwks" }), "https"},
		{"private key jwt pinned to HS256", with(base("private_key_jwt"), func(c *clientspec.Spec) {
			c.JWKS, c.TokenEndpointAuthSigningAlg = jwks, "HS256"
		}), "does not fit private_key_jwt"},
		{"private key jwt pinned to ES256 with an RSA key", with(base("private_key_jwt"), func(c *clientspec.Spec) {
			c.JWKS, c.TokenEndpointAuthSigningAlg = jwks, "ES256"
		}), "no signing key usable with ES256"},
		{"jwks with a private key", with(base("private_key_jwt"), func(c *clientspec.Spec) { c.JWKS = clientspec.JWKSDoc(privSet) }), "not a public key"},
		{"jwks with a short RSA key", with(base("private_key_jwt"), func(c *clientspec.Spec) { c.JWKS = clientspec.JWKSDoc(smallSet) }), "2048"},
		{"jwks that is not JSON", with(base("private_key_jwt"), func(c *clientspec.Spec) { c.JWKS = "keys" }), "jwks:"},
		{"unknown alg", with(base("private_key_jwt"), func(c *clientspec.Spec) { c.JWKS, c.TokenEndpointAuthSigningAlg = jwks, "none" }), "not supported"},
		{"alg on a basic client", with(base("client_secret_basic"), func(c *clientspec.Spec) {
			c.Secret, c.TokenEndpointAuthSigningAlg = longSecret, "RS256"
		}), "applies only to"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.spec.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

// Without a sealer a client_secret_jwt client cannot be stored; with one,
// a generated secret is long enough for every HMAC algorithm.
func TestAddClientSecretJWT(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	spec := clientspec.Spec{ID: "gen", ClientSettings: storage.ClientSettings{TokenEndpointAuthMethod: "client_secret_jwt", GrantTypes: []string{"client_credentials"}}}
	if _, _, err := (&admin.Local{Store: ts.Store}).AddClient(context.Background(), spec); err == nil {
		t.Fatal("a client_secret_jwt client was added without a sealer")
	}
	secret := ts.addClient(t, spec)
	if len(secret) < 64 {
		t.Fatalf("generated secret has %d bytes, want 64 or more for HS512", len(secret))
	}
	raw := signAssertion(t, jose.HS512, []byte(secret), "", assertionClaims(ts, "gen", time.Now()))
	status, _, body := postForm(t, ts.URL+"/token", assertionForm(raw), "", "")
	wantToken(t, status, body)
	if s := ts.addClient(t, clientspec.Spec{ID: "pkgen", ClientSettings: storage.ClientSettings{
		TokenEndpointAuthMethod: "private_key_jwt",
		JWKSURI:                 "https://app.example/jwks",
		GrantTypes:              []string{"client_credentials"},
	}}); s != "" {
		t.Errorf("a private_key_jwt client was given a secret")
	}
}

// A config client_secret_jwt client keeps its sealed secret across
// restarts while the secret is unchanged, and follows a changed one.
func TestSyncClientsSealsSecrets(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	spec := clientspec.Spec{ID: "cfg-sjwt", ClientSettings: storage.ClientSettings{TokenEndpointAuthMethod: "client_secret_jwt", GrantTypes: []string{"client_credentials"}}, Secret: strings.Repeat("a", 32)}
	syncSpec := func(s clientspec.Spec) []byte {
		t.Helper()
		if err := admin.SyncClients(ctx, ts.Store, ts.sealer, []clientspec.Spec{s}, nil, time.Now()); err != nil {
			t.Fatal(err)
		}
		rec, err := ts.Store.GetClient(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		return rec.SecretSealed
	}
	first := syncSpec(spec)
	if again := syncSpec(spec); !slices.Equal(first, again) {
		t.Error("an unchanged secret was sealed again")
	}
	spec.Secret = strings.Repeat("b", 32)
	if changed := syncSpec(spec); slices.Equal(first, changed) {
		t.Fatal("a changed secret kept the old sealed value")
	}
	for secret, ok := range map[string]bool{strings.Repeat("a", 32): false, strings.Repeat("b", 32): true} {
		raw := signAssertion(t, jose.HS256, []byte(secret), "", assertionClaims(ts, "cfg-sjwt", time.Now()))
		status, _, body := postForm(t, ts.URL+"/token", assertionForm(raw), "", "")
		if got := status == http.StatusOK; got != ok {
			t.Errorf("secret %.1s…: HTTP %d %v, want accepted = %v", secret, status, body, ok)
		}
	}
	if err := admin.SyncClients(ctx, ts.Store, nil, []clientspec.Spec{{ID: "x", ClientSettings: storage.ClientSettings{TokenEndpointAuthMethod: "client_secret_jwt", GrantTypes: []string{"client_credentials"}},
		Secret: strings.Repeat("c", 32)}}, nil, time.Now()); err == nil {
		t.Error("SyncClients stored a client_secret_jwt client without a sealer")
	}
}
