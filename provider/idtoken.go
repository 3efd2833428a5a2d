package provider

// ID tokens signed with the algorithm each client registered
// (id_token_signed_response_alg, OIDC Registration §2), with at_hash and
// c_hash computed for that algorithm.
//
// fosite computes the hashes before it signs, choosing SHA-256 unless the
// alg header ends in 384 or 512. For EdDSA that is wrong: Ed25519 hashes
// with SHA-512, and OIDC relying parties (the OpenID Foundation suite
// among them) expect the left half of SHA-512. fosite's signer never sees
// the token or code, so the handlers that issue ID tokens are wrapped to
// pass them down in the context, and the hashes are recomputed here.

import (
	"context"
	"crypto"
	_ "crypto/sha256" // registers the hashes hashForAlg returns
	_ "crypto/sha512"
	"encoding/base64"
	"math"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

// idTokenStrategy signs ID tokens with the client's algorithm and the
// active key for it, and names that key in the session's headers, which
// fosite reads back when it computes hashes.
type idTokenStrategy struct {
	inner openid.OpenIDConnectTokenStrategy
	keys  KeySource
}

var _ openid.OpenIDConnectTokenStrategy = (*idTokenStrategy)(nil)

func (s *idTokenStrategy) GenerateIDToken(ctx context.Context, lifespan time.Duration, r fosite.Requester) (string, error) {
	sess, ok := r.GetSession().(openid.Session)
	if !ok {
		return "", fosite.ErrServerError.WithDebug("The session cannot carry ID token claims.")
	}
	k, err := activeKey(s.keys, idTokenAlg(r.GetClient()))
	if err != nil {
		return "", err
	}
	h := sess.IDTokenHeaders()
	h.Add("alg", k.Alg)
	h.Add("kid", k.ID)
	in, _ := ctx.Value(hashInputsKey{}).(hashInputs)
	claims := sess.IDTokenClaims()
	integerClaims(claims.Extra)
	claims.AccessTokenHash = rehash(k.Alg, claims.AccessTokenHash, in.accessToken)
	claims.CodeHash = rehash(k.Alg, claims.CodeHash, in.code)
	return s.inner.GenerateIDToken(withSigningKey(ctx, k), lifespan, r)
}

// idTokenAlg is the client's registered ID token algorithm, RS256 by
// default (OIDC Registration §2).
func idTokenAlg(c fosite.Client) string {
	if cl, ok := c.(*client); ok && cl.rec.IDTokenSignedResponseAlg != "" {
		return cl.rec.IDTokenSignedResponseAlg
	}
	return signingAlg
}

// rehash recomputes a hash fosite set, over the value it was computed
// from. Without the value a hash that is not SHA-256 is dropped: fosite's
// would be wrong, and a missing hash is better than a wrong one.
func rehash(alg, fositeHash string, value func() string) string {
	if fositeHash == "" {
		return ""
	}
	if value != nil {
		if v := value(); v != "" {
			return tokenHash(alg, v)
		}
	}
	if hashForAlg(alg) != crypto.SHA256 {
		return ""
	}
	return fositeHash
}

// tokenHash is at_hash / c_hash (OIDC Core §3.1.3.6, §3.3.2.11): the left
// half of the hash of the ASCII value, base64url without padding.
func tokenHash(alg, value string) string {
	h := hashForAlg(alg).New()
	h.Write([]byte(value))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// hashForAlg is the hash of a JWS algorithm: the one its name ends with,
// and SHA-512 for EdDSA (Ed25519, the only curve our keys use).
func hashForAlg(alg string) crypto.Hash {
	switch {
	case alg == "EdDSA":
		return crypto.SHA512
	case strings.HasSuffix(alg, "384"):
		return crypto.SHA384
	case strings.HasSuffix(alg, "512"):
		return crypto.SHA512
	}
	return crypto.SHA256
}

type hashInputsKey struct{}

// hashInputs read, when the ID token is signed, the access token and code
// it is issued with; nil when there is none.
type hashInputs struct {
	accessToken, code func() string
}

// wrapIDTokenHandlers puts hashInputs into the context of fosite's
// handlers that issue ID tokens. Called once on the composed config.
func wrapIDTokenHandlers(c *fosite.Config) {
	for i, h := range c.TokenEndpointHandlers {
		switch h.(type) {
		case *openid.OpenIDConnectExplicitHandler, *openid.OpenIDConnectRefreshHandler, *openIDPasswordHandler:
			c.TokenEndpointHandlers[i] = hashingTokenHandler{h}
		}
	}
	for i, h := range c.AuthorizeEndpointHandlers {
		switch h.(type) {
		case *openid.OpenIDConnectHybridHandler, *openid.OpenIDConnectImplicitHandler:
			c.AuthorizeEndpointHandlers[i] = hashingAuthorizeHandler{h}
		}
	}
}

type hashingTokenHandler struct{ fosite.TokenEndpointHandler }

// PopulateTokenEndpointResponse runs after the OAuth handlers, so the
// access token is in the response; the code (whose c_hash a hybrid-flow
// session carries) is in the request.
func (h hashingTokenHandler) PopulateTokenEndpointResponse(ctx context.Context, req fosite.AccessRequester, resp fosite.AccessResponder) error {
	ctx = context.WithValue(ctx, hashInputsKey{}, hashInputs{
		accessToken: resp.GetAccessToken,
		code:        func() string { return req.GetRequestForm().Get("code") },
	})
	return h.TokenEndpointHandler.PopulateTokenEndpointResponse(ctx, req, resp)
}

type hashingAuthorizeHandler struct {
	fosite.AuthorizeEndpointHandler
}

// HandleAuthorizeEndpointRequest: the hybrid and implicit handlers add the
// code and access token to the response before they sign the ID token, so
// the values are read when it is signed.
func (h hashingAuthorizeHandler) HandleAuthorizeEndpointRequest(ctx context.Context, ar fosite.AuthorizeRequester, resp fosite.AuthorizeResponder) error {
	ctx = context.WithValue(ctx, hashInputsKey{}, hashInputs{
		accessToken: func() string { return resp.GetParameters().Get("access_token") },
		code:        func() string { return resp.GetParameters().Get("code") },
	})
	return h.AuthorizeEndpointHandler.HandleAuthorizeEndpointRequest(ctx, ar, resp)
}

// integerClaims turns the claims OIDC Core §5.1 defines as numbers of
// seconds back into integers. The session is stored as JSON between the
// authorization and token requests, which makes every number a float64,
// and the JWT encoder writes a float64 like 1796246995 as 1.796246995e+09,
// which relying parties decoding into an integer refuse.
func integerClaims(extra map[string]any) {
	for _, name := range []string{"updated_at"} {
		if f, ok := extra[name].(float64); ok && f == math.Trunc(f) {
			extra[name] = int64(f)
		}
	}
}
