package provider

// Client authentication at the token, revocation and introspection
// endpoints (RFC 6749 §2.3, OIDC Core §9, RFC 7523 §2.2):
// client_secret_basic, client_secret_post, client_secret_jwt,
// private_key_jwt and none.
//
// Secrets and public clients go through fosite's default strategy. Client
// assertions are verified here: fosite's own verifier does not support
// client_secret_jwt, fetches jwks_uri with its own uncached fetcher, and
// takes the assertion's algorithm from the client without tying it to the
// method.

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/secret"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/ory/fosite"

	"github.com/smallsso/provider/storage"
)

// clientAssertionJWTBearer is the RFC 7523 §2.2 client assertion type.
const clientAssertionJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

const (
	// assertionSkew tolerates clocks that disagree a little.
	assertionSkew = time.Minute
	// maxAssertionLifetime bounds how far ahead an assertion's exp may be.
	// An assertion is a one-shot credential; a long-lived one is a stolen
	// credential waiting to happen, and its jti would have to be kept as
	// long. An hour is what common client libraries use at most.
	maxAssertionLifetime = time.Hour
	// maxAssertionKeys bounds the signature checks one assertion without a
	// kid can cost.
	maxAssertionKeys = 8
)

// Which secret method a request uses travels to fositeStore.GetClient in
// the context; see clientAuthenticator.authenticate.
type secretMethodKey struct{}

func withSecretMethod(ctx context.Context, method string) context.Context {
	return context.WithValue(ctx, secretMethodKey{}, method)
}

func secretMethodFrom(ctx context.Context) string {
	m, _ := ctx.Value(secretMethodKey{}).(string)
	return m
}

func isSecretMethod(method string) bool {
	return method == "client_secret_basic" || method == "client_secret_post"
}

// clientAuthenticator is fosite's ClientAuthenticationStrategy.
type clientAuthenticator struct {
	fosite *fosite.Fosite
	store  *fositeStore
	sealer *secret.Sealer
	keys   *remoteKeySets
	// audiences an assertion may name: the token endpoint or the issuer.
	audiences func(context.Context) []string
	now       func() time.Time
}

func errManyMethods() error {
	return fosite.ErrInvalidRequest.WithHint("The request uses more than one client authentication method (RFC 6749 §2.3).")
}

func (a *clientAuthenticator) authenticate(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	basicID, basicSecret, basic := r.BasicAuth()
	if form.Has("client_assertion_type") || form.Has("client_assertion") {
		if basic || form.Has("client_secret") {
			return nil, errManyMethods()
		}
		return a.assertion(ctx, form)
	}
	// A client registered for client_secret_basic or client_secret_post
	// may use either: requests-oauthlib, for one, exchanges the code with
	// Basic and refreshes with the secret in the body. fosite insists on the
	// registered method, so it is told, through GetClient, that the client
	// is registered for the method this request uses. The secret is still
	// checked by fosite; clients registered for any other method keep
	// their method and are refused.
	method := ""
	switch {
	case basic && form.Get("client_secret") != "":
		// Some clients send the same credentials both ways. That is one
		// credential, not two methods; different ones are refused.
		id, err1 := url.QueryUnescape(basicID)
		secret, err2 := url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil || id != form.Get("client_id") ||
			subtle.ConstantTimeCompare([]byte(secret), []byte(form.Get("client_secret"))) != 1 {
			return nil, errManyMethods()
		}
		form = maps.Clone(form)
		form.Del("client_secret")
		method = "client_secret_basic"
	case basic && basicSecret != "":
		method = "client_secret_basic"
	case form.Get("client_secret") != "":
		method = "client_secret_post"
	}
	if method != "" {
		ctx = withSecretMethod(ctx, method)
	}
	return a.fosite.DefaultClientAuthenticationStrategy(ctx, r, form)
}

func invalidAssertion(format string, args ...any) *fosite.RFC6749Error {
	return fosite.ErrInvalidClient.WithHintf(format, args...)
}

// assertion authenticates a client by a JWT it signed (RFC 7523 §3, OIDC
// Core §9).
func (a *clientAuthenticator) assertion(ctx context.Context, form url.Values) (fosite.Client, error) {
	if t := form.Get("client_assertion_type"); t != clientAssertionJWTBearer {
		return nil, fosite.ErrInvalidRequest.WithHintf("The client_assertion_type must be %q.", clientAssertionJWTBearer)
	}
	raw := form.Get("client_assertion")
	if raw == "" {
		return nil, fosite.ErrInvalidRequest.WithHint("The client_assertion parameter is missing.")
	}
	tok, err := jwt.ParseSigned(raw, slices.Concat(clientspec.HMACAssertionAlgs, clientspec.KeyAssertionAlgs))
	if err != nil {
		return nil, invalidAssertion("The client_assertion is not a JWT signed with one of %s.", strings.Join(clientspec.AssertionAlgNames(), ", ")).WithWrap(err).WithDebug(err.Error())
	}
	alg, kid := jose.SignatureAlgorithm(tok.Headers[0].Algorithm), tok.Headers[0].KeyID
	// The claims are read before the signature is checked only to find
	// the client whose key checks it; nothing else is decided on them
	// until the signature verifies.
	var claims jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil {
		return nil, invalidAssertion("The client_assertion claims are malformed.").WithWrap(err).WithDebug(err.Error())
	}
	clientID := form.Get("client_id")
	if clientID == "" {
		clientID = claims.Subject
	}
	if clientID == "" {
		return nil, invalidAssertion("The client_assertion has no sub claim naming the client.")
	}
	rec, err := clientRecord(ctx, a.store.store, clientID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fosite.ErrInvalidClient.WithWrap(err)
	} else if err != nil {
		return nil, fosite.ErrServerError.WithWrap(err)
	}
	method := rec.TokenEndpointAuthMethod
	if method == "" {
		method = clientspec.DefaultAuthMethod(rec.Public)
	}
	allowed := clientspec.AssertionAlgs(method)
	switch {
	case allowed == nil:
		return nil, invalidAssertion("This client is registered for %s; it cannot authenticate with a client assertion.", method)
	case !slices.Contains(allowed, alg):
		return nil, invalidAssertion("A %s client assertion cannot be signed with %s.", method, alg)
	case rec.TokenEndpointAuthSigningAlg != "" && rec.TokenEndpointAuthSigningAlg != string(alg):
		return nil, invalidAssertion("This client's assertions must be signed with %s, not %s.", rec.TokenEndpointAuthSigningAlg, alg)
	}
	if method == "client_secret_jwt" {
		err = a.verifyWithSecret(tok, rec, alg)
	} else {
		err = a.verifyWithKeys(ctx, tok, rec, alg, kid)
	}
	if err != nil {
		return nil, err
	}
	if err := a.checkClaims(ctx, claims, clientID); err != nil {
		return nil, err
	}
	return newClient(rec), nil
}

func (a *clientAuthenticator) verifyWithSecret(tok *jwt.JSONWebToken, rec storage.Client, alg jose.SignatureAlgorithm) error {
	secret, err := a.sealer.Open(rec.ID, rec.SecretSealed)
	if err != nil {
		return invalidAssertion("This client has no usable secret for client_secret_jwt; its registration must be renewed.").WithWrap(err).WithDebug(err.Error())
	}
	if len(secret) < clientspec.MinHMACSecret(alg) {
		return invalidAssertion("The client's secret is too short for %s (RFC 7518 §3.2); sign with HS256.", alg)
	}
	if err := tok.Claims([]byte(secret)); err != nil {
		return invalidAssertion("The client_assertion signature does not verify with the client's secret.").WithWrap(err)
	}
	return nil
}

func (a *clientAuthenticator) verifyWithKeys(ctx context.Context, tok *jwt.JSONWebToken, rec storage.Client, alg jose.SignatureAlgorithm, kid string) error {
	var set jose.JSONWebKeySet
	var err error
	switch {
	case rec.JWKS != "":
		set, err = clientspec.ParseJWKS([]byte(rec.JWKS))
	case rec.JWKSURI != "":
		set, err = a.keys.Keys(ctx, rec.JWKSURI, kid, a.keys.out.policyForURL(rec, rec.JWKSURI))
	default:
		return invalidAssertion("This client has no registered public keys (jwks or jwks_uri).")
	}
	if err != nil {
		return invalidAssertion("The client's public keys could not be loaded.").WithWrap(err).WithDebug(err.Error())
	}
	keys := set.Keys
	if kid != "" {
		keys = set.Key(kid)
	}
	tried := 0
	for _, k := range keys {
		if !clientspec.KeyFits(k, alg) {
			continue
		}
		if tok.Claims(k.Key) == nil {
			return nil
		}
		if tried++; tried == maxAssertionKeys {
			break
		}
	}
	if tried == 0 {
		return invalidAssertion("No key in the client's key set fits the assertion's kid and alg %s.", alg)
	}
	return invalidAssertion("The client_assertion signature does not verify with the client's keys.")
}

// checkClaims applies RFC 7523 §3 to verified claims and spends the jti.
func (a *clientAuthenticator) checkClaims(ctx context.Context, c jwt.Claims, clientID string) error {
	now := a.now()
	switch {
	case c.Issuer != clientID || c.Subject != clientID:
		return invalidAssertion("The client_assertion's iss and sub must both be the client ID.")
	case !slices.ContainsFunc(a.audiences(ctx), c.Audience.Contains):
		return invalidAssertion("The client_assertion's aud must contain %s.", strings.Join(a.audiences(ctx), " or "))
	case c.Expiry == nil:
		return invalidAssertion("The client_assertion has no exp claim.")
	case now.After(c.Expiry.Time().Add(assertionSkew)):
		return invalidAssertion("The client_assertion has expired.")
	case c.Expiry.Time().After(now.Add(maxAssertionLifetime + assertionSkew)):
		return invalidAssertion("The client_assertion expires more than an hour from now; use a short-lived one.")
	case c.NotBefore != nil && c.NotBefore.Time().After(now.Add(assertionSkew)):
		return invalidAssertion("The client_assertion is not valid yet (nbf).")
	case c.IssuedAt != nil && c.IssuedAt.Time().After(now.Add(assertionSkew)):
		return invalidAssertion("The client_assertion was issued in the future (iat).")
	case c.ID == "":
		return invalidAssertion("The client_assertion has no jti claim.")
	}
	// The jti is remembered until the assertion can no longer be accepted.
	key := assertionJTIKey(clientID, c.ID)
	err := a.store.ClientAssertionJWTValid(ctx, key)
	if err == nil {
		err = a.store.SetClientAssertionJWT(ctx, key, c.Expiry.Time().Add(assertionSkew))
	}
	switch {
	case errors.Is(err, fosite.ErrJTIKnown):
		return invalidAssertion("The client_assertion's jti was already used.")
	case err != nil:
		return fosite.ErrServerError.WithWrap(err)
	}
	return nil
}

// assertionJTIKey is where a client assertion's jti is remembered. jti is
// unique per issuer only, so the key includes the client; it is hashed so
// an arbitrary jti makes a fixed-size key, in a namespace of its own.
func assertionJTIKey(clientID, jti string) string {
	sum := sha256.Sum256([]byte(clientID + "\x00" + jti))
	return "client-assertion:" + hex.EncodeToString(sum[:])
}

// clientAuthStrategy is implemented by *fosite.Fosite.
type clientAuthStrategy interface {
	AuthenticateClient(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error)
}

// newIntrospectionRequest is fosite's NewIntrospectionRequest with the
// client authenticated by the strategy above: fosite's accepts only HTTP
// Basic and checks the secret whatever method the client is registered
// for. A bearer token in the Authorization header is still fosite's.
func (p *Provider) newIntrospectionRequest(ctx context.Context, r *http.Request, sess fosite.Session) (fosite.IntrospectionResponder, error) {
	inactive := &fosite.IntrospectionResponse{Active: false}
	if fosite.AccessTokenFromRequest(r) != "" {
		// fosite would let any valid access token, a user's included,
		// introspect every other token; only clients may ask here.
		return inactive, fosite.ErrInvalidClient.WithHint("Introspection needs client authentication, not an access token.")
	}
	ctx = context.WithValue(ctx, fosite.RequestContextKey, r)
	if err := r.ParseMultipartForm(1 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		return inactive, fosite.ErrInvalidRequest.WithHint("Unable to parse the HTTP body; send a form.").WithWrap(err).WithDebug(err.Error())
	}
	form := r.PostForm
	if len(form) == 0 {
		return inactive, fosite.ErrInvalidRequest.WithHint("The POST body can not be empty.")
	}
	if _, _, basic := r.BasicAuth(); !basic && form.Get("client_id") == "" && form.Get("client_assertion") == "" {
		return inactive, fosite.ErrInvalidClient.WithHint("No client authentication was included.")
	}
	client, err := p.oauth2.(clientAuthStrategy).AuthenticateClient(ctx, r, form)
	if err != nil {
		return inactive, err
	}
	if client.IsPublic() {
		return inactive, fosite.ErrInvalidClient.WithHint("A public client cannot introspect tokens (RFC 7662 §2.1).")
	}
	scopes := fosite.RemoveEmpty(strings.Split(form.Get("scope"), " "))
	tu, ar, err := p.oauth2.IntrospectToken(ctx, form.Get("token"), fosite.TokenUse(form.Get("token_type_hint")), sess, scopes...)
	if err != nil {
		return inactive, fosite.ErrInactiveToken.WithHint("An introspection strategy indicated that the token is inactive.").WithWrap(err).WithDebug(err.Error())
	}
	if !mayIntrospect(client, ar, tu) {
		return inactive, fosite.ErrInactiveToken.WithHint("An introspection strategy indicated that the token is inactive.").WithDebug("The token belongs to another client.")
	}
	resp := &fosite.IntrospectionResponse{Active: true, AccessRequester: ar, TokenUse: tu}
	if tu == fosite.AccessToken {
		resp.AccessTokenType = fosite.BearerAccessToken
	}
	return resp, nil
}
