package provider

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/storage"
)

// fakeHybrid does what fosite's hybrid handler does around the ID token:
// it adds a code and an access token to the response, lets fosite's
// helper compute c_hash and at_hash from the session's alg header, then
// issues the ID token.
type fakeHybrid struct{ helper *openid.IDTokenHandleHelper }

func (h fakeHybrid) HandleAuthorizeEndpointRequest(ctx context.Context, ar fosite.AuthorizeRequester, resp fosite.AuthorizeResponder) error {
	sess := ar.GetSession().(openid.Session)
	resp.AddParameter("code", "a-code-value")
	resp.AddParameter("access_token", "an-access-token-value")
	var err error
	if sess.IDTokenClaims().CodeHash, err = h.helper.ComputeHash(ctx, sess, "a-code-value"); err != nil {
		return err
	}
	if sess.IDTokenClaims().AccessTokenHash, err = h.helper.ComputeHash(ctx, sess, "an-access-token-value"); err != nil {
		return err
	}
	return h.helper.IssueImplicitIDToken(ctx, time.Hour, ar, resp)
}

// fakeExplicit is fosite's token endpoint ID token issuance, for a session
// that carries the c_hash of a hybrid flow's code.
type fakeExplicit struct {
	fosite.TokenEndpointHandler
	helper *openid.IDTokenHandleHelper
}

func (h fakeExplicit) PopulateTokenEndpointResponse(ctx context.Context, req fosite.AccessRequester, resp fosite.AccessResponder) error {
	sess := req.GetSession().(openid.Session)
	sess.IDTokenClaims().CodeHash = "stale-from-the-authorization-endpoint"
	sess.IDTokenClaims().AccessTokenHash = h.helper.GetAccessTokenHash(ctx, req, resp)
	return h.helper.IssueExplicitIDToken(ctx, time.Hour, req, resp)
}

func halfSHA(alg, v string) string {
	if alg == "EdDSA" {
		s := sha512.Sum512([]byte(v))
		return base64.RawURLEncoding.EncodeToString(s[:32])
	}
	s := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(s[:16])
}

func TestIDTokenHashesPerAlgorithm(t *testing.T) {
	t.Parallel()
	p, km, clock := signingFixture(t)
	fc := &fosite.Config{IDTokenIssuer: p.cfg.Issuer, IDTokenLifespan: time.Hour}
	strategy := &idTokenStrategy{inner: &openid.DefaultStrategy{Signer: &jwtSigner{keys: km}, Config: fc}, keys: km}
	helper := &openid.IDTokenHandleHelper{IDTokenStrategy: strategy}
	ctx := context.Background()

	claimsOf := func(t *testing.T, alg, token string) map[string]any {
		t.Helper()
		jws, err := jose.ParseSignedCompact(token, jwtVerifyAlgs)
		if err != nil {
			t.Fatal(err)
		}
		h := jws.Signatures[0].Header
		active, _ := km.Active(alg)
		if h.Algorithm != alg || h.KeyID != active.ID {
			t.Fatalf("header alg %s kid %s, want %s %s", h.Algorithm, h.KeyID, alg, active.ID)
		}
		set := km.JWKS()
		payload, err := jws.Verify(set.Key(h.KeyID)[0])
		if err != nil {
			t.Fatal(err)
		}
		var claims map[string]any
		json.Unmarshal(payload, &claims)
		return claims
	}

	for _, alg := range clientspec.SigningAlgorithms {
		cl := newClient(storage.Client{ID: "c", ClientSettings: storage.ClientSettings{IDTokenSignedResponseAlg: alg}})
		t.Run("authorization endpoint "+alg, func(t *testing.T) {
			ar := fosite.NewAuthorizeRequest()
			ar.Client, ar.Form = cl, url.Values{"nonce": {"n-0123456789"}}
			ar.Session = userSession(p.cfg.Issuer, "alice-id", "alice", clock.Now(), clock.Now())
			resp := fosite.NewAuthorizeResponse()
			if err := (hashingAuthorizeHandler{fakeHybrid{helper}}).HandleAuthorizeEndpointRequest(ctx, ar, resp); err != nil {
				t.Fatal(err)
			}
			claims := claimsOf(t, alg, resp.GetParameters().Get("id_token"))
			if claims["c_hash"] != halfSHA(alg, "a-code-value") || claims["at_hash"] != halfSHA(alg, "an-access-token-value") {
				t.Fatalf("c_hash %v at_hash %v, want the left half of the %s hash", claims["c_hash"], claims["at_hash"], alg)
			}
		})
		t.Run("token endpoint "+alg, func(t *testing.T) {
			req := fosite.NewAccessRequest(userSession(p.cfg.Issuer, "alice-id", "alice", clock.Now(), clock.Now()))
			req.Client, req.Form = cl, url.Values{"grant_type": {"authorization_code"}, "code": {"a-code-value"}}
			resp := fosite.NewAccessResponse()
			resp.SetAccessToken("an-access-token-value")
			h := hashingTokenHandler{fakeExplicit{helper: helper}}
			if err := h.PopulateTokenEndpointResponse(ctx, req, resp); err != nil {
				t.Fatal(err)
			}
			claims := claimsOf(t, alg, resp.GetExtra("id_token").(string))
			if claims["c_hash"] != halfSHA(alg, "a-code-value") || claims["at_hash"] != halfSHA(alg, "an-access-token-value") {
				t.Fatalf("c_hash %v at_hash %v, want the left half of the %s hash", claims["c_hash"], claims["at_hash"], alg)
			}
		})
	}

	t.Run("without the values, a SHA-512 hash is dropped rather than wrong", func(t *testing.T) {
		if got := rehash("EdDSA", "fosite-sha256-hash", nil); got != "" {
			t.Errorf("EdDSA without value: %q", got)
		}
		if got := rehash("ES256", "fosite-sha256-hash", nil); got != "fosite-sha256-hash" {
			t.Errorf("ES256 without value: %q", got)
		}
	})

	t.Run("fosite's handlers are wrapped", func(t *testing.T) {
		c := &fosite.Config{}
		c.TokenEndpointHandlers.Append(&openid.OpenIDConnectExplicitHandler{})
		c.TokenEndpointHandlers.Append(&openid.OpenIDConnectRefreshHandler{})
		c.AuthorizeEndpointHandlers.Append(&openid.OpenIDConnectHybridHandler{})
		c.AuthorizeEndpointHandlers.Append(&openid.OpenIDConnectImplicitHandler{})
		wrapIDTokenHandlers(c)
		for i, h := range c.TokenEndpointHandlers {
			if _, ok := h.(hashingTokenHandler); !ok {
				t.Errorf("token handler %d is %T", i, h)
			}
		}
		for i, h := range c.AuthorizeEndpointHandlers {
			if _, ok := h.(hashingAuthorizeHandler); !ok {
				t.Errorf("authorize handler %d is %T", i, h)
			}
		}
	})
}
