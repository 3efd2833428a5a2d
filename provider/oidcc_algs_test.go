package provider_test

// TestOIDCC_ tests for the suite modules about signing algorithms, signed
// userinfo, refresh tokens and key rotation, and the discovery document.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/smallsso/provider/provider/admin"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/oidcctest"
)

// algClient is a suite client with per-client algorithms: its spec (secret
// pre-hashed) and the harness's view of it.
func algClient(id, idTokenAlg, userinfoAlg string) (clientspec.Spec, *oidcctest.Client) {
	secret := id + "-secret"
	spec := suiteClientSpec(id, "", "client_secret_basic")
	spec.SecretHash = testHash(secret)
	spec.IDTokenSignedResponseAlg, spec.UserinfoSignedResponseAlg = idTokenAlg, userinfoAlg
	return spec, &oidcctest.Client{ID: id, Secret: secret, RedirectURI: spec.RedirectURIs[0], AuthMethod: "client_secret_basic", IDTokenAlg: idTokenAlg}
}

// codeFlow is the code flow up to the token response, with the token
// endpoint's ID token checked (signature by kid, the client's alg,
// at_hash); userinfo is left to the caller.
func codeFlow(t *testing.T, op *oidccOP, c *oidcctest.Client, scope string, kv ...string) (*oidcctest.Request, *oidcctest.TokenResponse, *oidcctest.IDToken) {
	t.Helper()
	r := op.NewRequest(c, scope).With(kv...)
	resp := op.CheckSuccess(t, r, op.Authorize(t, op.Browser(), r, op.User))
	tr := op.Exchange(t, c, resp.Code, nil)
	at := tr.Str("access_token")
	tok := op.CheckIDToken(t, c, tr.Str("id_token"), oidcctest.IDTokenCheck{Nonce: r.Nonce(), AccessToken: at, Code: resp.Code})
	return r, tr, tok
}

// TestOIDCC_IDTokenRS256 is oidcc-idtoken-rs256, and the same for every
// other algorithm a client may register: the ID token is signed with the
// registered algorithm by the JWKS key its kid names, and at_hash is the
// left half of the algorithm's hash (SHA-512 for EdDSA).
func TestOIDCC_IDTokenRS256(t *testing.T) {
	t.Parallel()
	var specs []clientspec.Spec
	clients := map[string]*oidcctest.Client{}
	for _, alg := range clientspec.SigningAlgorithms {
		spec, c := algClient("idtoken-"+strings.ToLower(alg), alg, "")
		specs, clients[alg] = append(specs, spec), c
	}
	op := newOIDCCOP(t, withSuiteClients(specs...))
	if got := op.Strings("id_token_signing_alg_values_supported"); !slices.Equal(got, clientspec.SigningAlgorithms) {
		t.Fatalf("id_token_signing_alg_values_supported = %v, want %v (RS256 first)", got, clientspec.SigningAlgorithms)
	}
	kids := map[string]string{}
	for _, alg := range clientspec.SigningAlgorithms {
		t.Run(alg, func(t *testing.T) {
			c := clients[alg]
			f := op.Run(t, op.Browser(), op.NewRequest(c, "openid profile"), op.User, nil)
			tok := f.IDToken
			if tok.Alg != alg {
				t.Fatalf("alg = %s, want %s", tok.Alg, alg)
			}
			if k := op.JWKS.Key(tok.KeyID); len(k) != 1 || k[0].Algorithm != alg || k[0].Use != "sig" {
				t.Fatalf("kid %q does not name one %s signing key in the JWKS", tok.KeyID, alg)
			}
			if got, want := tok.Str("at_hash"), oidcctest.HalfHash(alg, f.AccessToken); got != want {
				t.Fatalf("at_hash = %q, want %q", got, want)
			}
			kids[alg] = tok.KeyID
		})
	}
	seen := map[string]bool{}
	for _, kid := range kids {
		if seen[kid] {
			t.Errorf("two algorithms signed with kid %s: %v", kid, kids)
		}
		seen[kid] = true
	}
}

// TestOIDCC_IDTokenSignature is oidcc-idtoken-signature: a client that
// registered no algorithm gets RS256 with a kid.
func TestOIDCC_IDTokenSignature(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	f := op.Run(t, op.Browser(), op.NewRequest(op.Basic, "openid"), op.User, nil)
	if f.IDToken.Alg != "RS256" || f.IDToken.KeyID == "" {
		t.Fatalf("header alg %s kid %q, want RS256 with a kid", f.IDToken.Alg, f.IDToken.KeyID)
	}
}

// TestOIDCC_IDTokenUnsigned is oidcc-idtoken-unsigned, declined: the suite
// skips the module because discovery does not list "none", and a client
// cannot be registered for unsigned ID tokens.
func TestOIDCC_IDTokenUnsigned(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	for _, name := range []string{"id_token_signing_alg_values_supported", "userinfo_signing_alg_values_supported"} {
		if got := op.Strings(name); len(got) == 0 || slices.Contains(got, "none") {
			t.Errorf("%s = %v: want algorithms, and not none", name, got)
		}
	}
	adm := &admin.Local{Store: op.ts.Store, Sealer: op.ts.sealer}
	for _, tc := range []struct{ key, alg string }{
		{"id_token_signed_response_alg", "none"},
		{"id_token_signed_response_alg", "HS256"},
		{"userinfo_signed_response_alg", "none"},
		{"userinfo_signed_response_alg", "RS512"},
	} {
		spec, _ := algClient("unsigned", "", "")
		if tc.key == "id_token_signed_response_alg" {
			spec.IDTokenSignedResponseAlg = tc.alg
		} else {
			spec.UserinfoSignedResponseAlg = tc.alg
		}
		_, _, err := adm.AddClient(context.Background(), spec)
		var inv *clientspec.InvalidError
		if !errors.As(err, &inv) || !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), tc.alg) {
			t.Errorf("%s %s: err = %v, want an InvalidError naming the key and value", tc.key, tc.alg, err)
		}
	}
}

// TestOIDCC_UserinfoRS256 is oidcc-userinfo-rs256 and the same for the
// other algorithms: a client registered with userinfo_signed_response_alg
// gets an application/jwt JWS with iss, aud, sub and its claims.
func TestOIDCC_UserinfoRS256(t *testing.T) {
	t.Parallel()
	var specs []clientspec.Spec
	clients := map[string]*oidcctest.Client{}
	for _, alg := range clientspec.SigningAlgorithms {
		// The ID token algorithm differs, so the test would notice the
		// userinfo answer taking the wrong one.
		spec, c := algClient("userinfo-"+strings.ToLower(alg), "ES256", alg)
		specs, clients[alg] = append(specs, spec), c
	}
	op := newOIDCCOP(t, withSuiteClients(specs...))
	if got := op.Strings("userinfo_signing_alg_values_supported"); !slices.Equal(got, clientspec.SigningAlgorithms) {
		t.Fatalf("userinfo_signing_alg_values_supported = %v, want %v", got, clientspec.SigningAlgorithms)
	}
	for _, alg := range clientspec.SigningAlgorithms {
		t.Run(alg, func(t *testing.T) {
			c := clients[alg]
			_, tr, idt := codeFlow(t, op, c, "openid profile email")
			for _, method := range []string{"get", "post-header", "post-body"} {
				claims, h := op.CheckSignedUserinfo(t, c, op.Userinfo(t, tr.Str("access_token"), method), alg, idt.Str("sub"))
				if k := op.JWKS.Key(h.KeyID); len(k) != 1 || k[0].Algorithm != alg {
					t.Fatalf("%s: kid %q is not our %s key", method, h.KeyID, alg)
				}
				if claims["aud"] != c.ID || claims["email"] != "buffy@example.org" || claims["name"] != "Buffy Summers" {
					t.Fatalf("%s: claims %v", method, claims)
				}
			}
		})
	}
	t.Run("unsigned by default", func(t *testing.T) {
		f := op.Run(t, op.Browser(), op.NewRequest(op.Basic, "openid"), op.User, nil)
		if f.Userinfo["iss"] != nil || f.Userinfo["aud"] != nil {
			t.Fatalf("plain userinfo has iss/aud: %v", f.Userinfo)
		}
	})
}

// refreshAndCompare is RefreshTokenRequestSteps for c: refresh with the
// granted scope, the token checks with no-store caching, the new ID token
// against the first (CompareIdTokenClaims) and userinfo with the new
// access token. It returns the new refresh token, or the old one if none
// was issued.
func refreshAndCompare(t *testing.T, op *oidccOP, c *oidcctest.Client, r *oidcctest.Request, first *oidcctest.TokenResponse, firstIDToken *oidcctest.IDToken) string {
	t.Helper()
	rt := first.Str("refresh_token")
	if rt == "" {
		t.Fatal("no refresh token was issued")
	}
	oidcctest.CheckRandomValue(t, "refresh token", rt)
	// The suite's WaitForOneSecond, on the provider's clock: the
	// refreshed ID token gets a new iat.
	op.clock.Advance(time.Second)
	tr := op.Refresh(t, c, rt, r.Params.Get("scope"))
	op.CheckTokenSuccess(t, tr)
	if p := tr.Header.Get("Pragma"); p != "no-cache" {
		t.Errorf("Pragma = %q, want no-cache", p)
	}
	at := tr.Str("access_token")
	if at == first.Str("access_token") {
		t.Error("the refresh returned the same access token")
	}
	// No nonce: the refresh request carried none, and the refreshed token
	// is not an answer to the authentication request.
	second := op.CheckIDToken(t, c, tr.Str("id_token"), oidcctest.IDTokenCheck{AccessToken: at})
	if second.Str("at_hash") == "" {
		t.Error("the refreshed ID token has no at_hash")
	}
	oidcctest.CompareIDTokenClaims(t, firstIDToken, second)
	if sid, ok := firstIDToken.Claims["sid"]; ok && second.Claims["sid"] != sid {
		t.Errorf("sid %v became %v", sid, second.Claims["sid"])
	}
	op.CheckUserinfo(t, op.Userinfo(t, at, "get"), firstIDToken.Str("sub"))
	if next := tr.Str("refresh_token"); next != "" {
		return next
	}
	return rt
}

// TestOIDCC_RefreshToken is oidcc-refresh-token: two clients each refresh
// (new iat, the rest of the ID token unchanged, no-store), and client 2's
// refresh token presented with client 1's credentials is invalid_grant.
func TestOIDCC_RefreshToken(t *testing.T) {
	t.Parallel()
	eddsa, eddsaClient := algClient("refresh-eddsa", "EdDSA", "")
	op := newOIDCCOP(t, withSuiteClients(eddsa))
	scopes := op.Strings("scopes_supported")
	if !slices.Contains(scopes, "offline_access") {
		t.Fatalf("scopes_supported %v lacks offline_access", scopes)
	}
	if !slices.Contains(op.Strings("grant_types_supported"), "refresh_token") {
		t.Fatal("EnsureServerConfigurationSupportsRefreshToken: refresh_token not in grant_types_supported")
	}
	// SetScopeInClientConfigurationToOpenIdOfflineAccessIfServerSupportsOfflineAccess
	// and AddPromptConsentToAuthorizationEndpointRequestIfScopeContainsOfflineAccess.
	flow := func(t *testing.T, c *oidcctest.Client) string {
		r, tr, idt := codeFlow(t, op, c, "openid offline_access", "prompt", "consent")
		return refreshAndCompare(t, op, c, r, tr, idt)
	}
	flow(t, op.Basic)
	rt2 := flow(t, op.Client2)

	// RefreshTokenRequestExpectingErrorSteps with client 1.
	tr := op.Refresh(t, op.Basic, rt2, "")
	op.CheckTokenError(t, tr, "invalid_grant")

	t.Run("EdDSA client", func(t *testing.T) {
		flow(t, eddsaClient)
	})
	t.Run("a client without the refresh_token grant gets none", func(t *testing.T) {
		spec, c := algClient("no-refresh", "", "")
		spec.GrantTypes = []string{"authorization_code"}
		op.ts.addClient(t, spec)
		_, tr, _ := codeFlow(t, op, c, "openid offline_access", "prompt", "consent")
		if tr.Str("refresh_token") != "" {
			t.Fatal("a refresh token for a client without the grant")
		}
	})
}

// rotatingJWKS is a client's jwks_uri whose key the test replaces.
type rotatingJWKS struct {
	srv *jwksServer
}

func newRSAClientJWK(t *testing.T, kid string) *jose.JSONWebKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: "RS256", Use: "sig"}
}

func (j *rotatingJWKS) publish(t *testing.T, k *jose.JSONWebKey) {
	t.Helper()
	raw, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	j.srv.set(string(raw))
}

// TestOIDCC_RefreshTokenRPKeyRotation is oidcc-refresh-token-rp-key-rotation:
// a private_key_jwt client with a jwks_uri gets a refresh token, then
// publishes a new key under a new kid and, 60 s later, refreshes with an
// assertion signed by it; the provider fetches the jwks_uri again.
func TestOIDCC_RefreshTokenRPKeyRotation(t *testing.T) {
	t.Parallel()
	jwks := &rotatingJWKS{srv: newJWKSServer(t, `{"keys":[]}`)}
	k1 := newRSAClientJWK(t, "rp-key-1")
	jwks.publish(t, k1)
	spec := suiteClientSpec("rp-rotation", "", "private_key_jwt")
	spec.JWKSURI = jwks.srv.URL + "/jwks"
	op := newOIDCCOP(t, withSuiteClients(spec))
	c := &oidcctest.Client{ID: spec.ID, RedirectURI: spec.RedirectURIs[0], AuthMethod: "private_key_jwt", Key: k1}

	r, tr, idt := codeFlow(t, op, c, "openid offline_access", "prompt", "consent")
	if tr.Str("refresh_token") == "" {
		t.Fatal("a refresh token is required in this module")
	}
	k2 := newRSAClientJWK(t, "rp-key-2")
	jwks.publish(t, k2)
	// The suite waits 60 s; on the provider's clock, past its refetch limit.
	op.clock.Advance(61 * time.Second)
	c.Key = k2
	rt := refreshAndCompare(t, op, c, r, tr, idt)

	t.Run("the old key no longer authenticates", func(t *testing.T) {
		c.Key = k1
		op.CheckTokenError(t, op.Refresh(t, c, rt, ""), "invalid_client")
	})
}

// TestOIDCC_ServerRotateKeys is oidcc-server-rotate-keys: the JWKS before
// and after a rotation passes the JWKS checks, has a new key for every
// algorithm and keeps the old ones; ID tokens signed afterwards name the
// new key, and one signed before still verifies, also as id_token_hint.
func TestOIDCC_ServerRotateKeys(t *testing.T) {
	t.Parallel()
	spec, edClient := algClient("rotate-eddsa", "EdDSA", "")
	op := newOIDCCOP(t, withSuiteClients(spec))
	before := op.FetchJWKS(t)
	b := op.Browser()
	r := op.NewRequest(op.Basic, "openid")
	oldFlow := op.Run(t, b, r, op.User, nil)
	_, _, oldEd := codeFlow(t, op, edClient, "openid")

	fresh, err := op.ts.Keys.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	after := op.FetchJWKS(t)
	added := oidcctest.CheckRotatedJWKS(t, before, after)
	if len(added) != len(clientspec.SigningAlgorithms) {
		t.Fatalf("rotation added keys %v, want one per algorithm", added)
	}
	for _, k := range after.Keys {
		if k.Use != "sig" || !slices.Contains(clientspec.SigningAlgorithms, k.Algorithm) {
			t.Errorf("JWKS key %s: use %q alg %q, want sig and one of our algorithms", k.KeyID, k.Use, k.Algorithm)
		}
	}
	op.JWKS = after
	newKid := map[string]string{}
	for _, k := range fresh {
		newKid[k.Alg] = k.ID
	}

	f := op.Run(t, b, op.NewRequest(op.Basic, "openid"), op.User, nil)
	if f.IDToken.KeyID != newKid["RS256"] || f.IDToken.KeyID == oldFlow.IDToken.KeyID {
		t.Fatalf("ID token after rotation has kid %s, want the new RS256 key %s", f.IDToken.KeyID, newKid["RS256"])
	}
	_, _, ed := codeFlow(t, op, edClient, "openid")
	if ed.KeyID != newKid["EdDSA"] || ed.KeyID == oldEd.KeyID {
		t.Fatalf("EdDSA ID token after rotation has kid %s, want %s", ed.KeyID, newKid["EdDSA"])
	}
	// The old token still verifies against the new JWKS.
	op.CheckIDToken(t, op.Basic, oldFlow.IDToken.Raw, oidcctest.IDTokenCheck{Nonce: r.Nonce()})

	t.Run("an ID token of a retired key is a good id_token_hint", func(t *testing.T) {
		hr := op.NewRequest(op.Basic, "openid").With("prompt", "none", "id_token_hint", oldFlow.IDToken.Raw)
		resp := op.CheckSuccess(t, hr, op.Authorize(t, b, hr, nil))
		tok := op.Exchange(t, op.Basic, resp.Code, nil)
		op.CheckIDToken(t, op.Basic, tok.Str("id_token"), oidcctest.IDTokenCheck{Nonce: hr.Nonce()})
	})
}

// TestOIDCC_DiscoveryEndpointVerification is
// oidcc-discovery-endpoint-verification's failure-level checks.
func TestOIDCC_DiscoveryEndpointVerification(t *testing.T) {
	t.Parallel()
	t.Run("static_client", func(t *testing.T) {
		newOIDCCOP(t).CheckDiscoveryDocument(t, false)
	})
	t.Run("dynamic_client", func(t *testing.T) {
		op := newOIDCCOP(t, withSuiteConfig(withRegistration("")))
		if _, ok := op.Discovery["registration_endpoint"]; !ok {
			t.Fatal("registration is enabled but discovery has no registration_endpoint")
		}
		op.CheckDiscoveryDocument(t, true)
	})
}

// TestIDTokenHintEveryAlgorithm: an ID token of any of our algorithms is
// accepted as id_token_hint with prompt=none; one re-encoded with alg
// none, or signed by a key we never published under our kid, is refused.
func TestIDTokenHintEveryAlgorithm(t *testing.T) {
	t.Parallel()
	var specs []clientspec.Spec
	clients := map[string]*oidcctest.Client{}
	for _, alg := range clientspec.SigningAlgorithms {
		spec, c := algClient("hint-"+strings.ToLower(alg), alg, "")
		specs, clients[alg] = append(specs, spec), c
	}
	op := newOIDCCOP(t, withSuiteClients(specs...))
	b := op.Browser()
	for _, alg := range clientspec.SigningAlgorithms {
		t.Run(alg, func(t *testing.T) {
			c := clients[alg]
			first := op.Run(t, b, op.NewRequest(c, "openid"), op.User, nil)
			r := op.NewRequest(c, "openid").With("prompt", "none", "id_token_hint", first.IDToken.Raw)
			resp := op.CheckSuccess(t, r, op.Authorize(t, b, r, nil))
			tok := op.Exchange(t, c, resp.Code, nil)
			second := op.CheckIDToken(t, c, tok.Str("id_token"), oidcctest.IDTokenCheck{Nonce: r.Nonce()})
			if second.Str("sub") != first.IDToken.Str("sub") {
				t.Fatalf("sub %q then %q", first.IDToken.Str("sub"), second.Str("sub"))
			}
		})
	}

	hint := op.Run(t, b, op.NewRequest(op.Basic, "openid"), op.User, nil).IDToken
	parts := strings.Split(hint.Raw, ".")
	foreign := newRSAClientJWK(t, hint.KeyID)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: foreign}, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(hint.Claims)
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := obj.CompactSerialize()
	for name, raw := range map[string]string{
		"alg none":    `eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.` + parts[1] + ".",
		"foreign key": forged,
	} {
		t.Run("refuses "+name, func(t *testing.T) {
			r := op.NewRequest(op.Basic, "openid").With("prompt", "none", "id_token_hint", raw)
			res := op.Authorize(t, b, r, nil)
			if res.Params != nil {
				op.CheckError(t, r, res)
				return
			}
			if res.Page == nil || res.Page.Status < 400 {
				t.Fatalf("the hint was accepted: %+v", res)
			}
		})
	}
}
