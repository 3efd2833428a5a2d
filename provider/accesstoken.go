package provider

// Access tokens per client: opaque (fosite's HMAC tokens, the default) or
// RFC 9068 JWTs signed with the provider's keys, which a resource server
// can check offline against the JWKS. Either way the token is stored under
// its signature, so revocation, introspection and refresh rotation work the
// same for both; a JWT is only an opaque token that also carries its claims.

import (
	"context"
	"crypto/rand"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
)

// atJWTType is the JOSE typ of an RFC 9068 access token (§2.1), so that a
// resource server cannot be handed an ID token signed with the same key.
const atJWTType = "at+jwt"

// accessTokenFormatJWT is the client setting that selects RFC 9068 tokens.
const accessTokenFormatJWT = "jwt"

// jwtVerifyAlgs are the algorithms our keys package can sign with; which
// one a token may use is decided by its key, see verifyJWT.
var jwtVerifyAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}

// coreStrategy is fosite's token strategy with access tokens chosen per
// client; refresh tokens and authorization codes stay HMAC, whose secrecy
// is the whole point of them.
type coreStrategy struct {
	oauth2.AccessTokenStrategy
	oauth2.RefreshTokenStrategy
	oauth2.AuthorizeCodeStrategy
}

var _ oauth2.CoreStrategy = coreStrategy{}

// accessTokenStrategy issues JWTs to clients registered with
// access_token_format jwt and delegates everything else to opaque. A token
// is told apart by its shape: a JWS has three dot-separated parts, an HMAC
// token two.
type accessTokenStrategy struct {
	opaque oauth2.AccessTokenStrategy
	// sealed makes the tokens of client-credentials grants (cctoken.go).
	sealed   *ccTokens
	keys     KeySource
	issuer   string
	lifespan time.Duration
	now      func() time.Time
}

var _ oauth2.AccessTokenStrategy = (*accessTokenStrategy)(nil)

func isJWT(token string) bool { return strings.Count(token, ".") == 2 }

// AccessTokenSignature is the storage key: the JWS signature of a JWT. The
// rest of the token is checked by ValidateAccessToken, after the lookup.
func (s *accessTokenStrategy) AccessTokenSignature(ctx context.Context, token string) string {
	if isSealedToken(token) {
		return sealedSignature(token)
	}
	if isJWT(token) {
		return token[strings.LastIndexByte(token, '.')+1:]
	}
	return s.opaque.AccessTokenSignature(ctx, token)
}

func (s *accessTokenStrategy) GenerateAccessToken(ctx context.Context, r fosite.Requester) (string, string, error) {
	if sealsToken(r) {
		token, err := s.sealed.generate(r, s.now(), s.lifespan)
		return token, sealedSignature(token), err
	}
	if c, ok := r.GetClient().(*client); !ok || c.rec.AccessTokenFormat != accessTokenFormatJWT {
		return s.opaque.GenerateAccessToken(ctx, r)
	}
	return s.generateJWT(r)
}

// ValidateAccessToken runs after the stored record was found by signature.
// For a JWT that is not enough: the header and payload are not part of the
// key, so the signature is verified too, or an edited payload would pass.
func (s *accessTokenStrategy) ValidateAccessToken(ctx context.Context, r fosite.Requester, token string) error {
	if isSealedToken(token) {
		// The storage adapter opened it: the grant is authentic.
		if exp := r.GetSession().GetExpiresAt(fosite.AccessToken); !exp.After(s.now()) {
			return fosite.ErrTokenExpired.WithHintf("Access token expired at '%s'.", exp)
		}
		return nil
	}
	if !isJWT(token) {
		return s.opaque.ValidateAccessToken(ctx, r, token)
	}
	exp := r.GetSession().GetExpiresAt(fosite.AccessToken)
	if exp.IsZero() {
		exp = r.GetRequestedAt().Add(s.lifespan)
	}
	if exp.Before(s.now()) {
		return fosite.ErrTokenExpired.WithHintf("Access token expired at '%s'.", exp)
	}
	return s.verifyJWT(token)
}

// atClaims are the RFC 9068 §2.2 claims.
type atClaims struct {
	jwt.Claims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
	AuthTime int64  `json:"auth_time,omitempty"`
}

func (s *accessTokenStrategy) generateJWT(r fosite.Requester) (string, string, error) {
	signer, err := joseSigner(s.keys, signingAlg, atJWTType)
	if err != nil {
		return "", "", err
	}
	now := s.now().UTC()
	sess := r.GetSession()
	exp := sess.GetExpiresAt(fosite.AccessToken)
	if exp.IsZero() {
		exp = now.Add(s.lifespan)
	}
	c := r.GetClient()
	claims := atClaims{
		Claims: jwt.Claims{
			Issuer:   s.issuer,
			Subject:  sess.GetSubject(),
			Audience: jwt.Audience(tokenAudience(c, r.GetGrantedAudience())),
			Expiry:   jwt.NewNumericDate(exp),
			IssuedAt: jwt.NewNumericDate(now),
			ID:       rand.Text(),
		},
		ClientID: c.GetID(),
		Scope:    strings.Join(r.GetGrantedScopes(), " "),
	}
	if claims.Subject == "" {
		// RFC 9068 §2.2: without a resource owner the client is the subject.
		claims.Subject = c.GetID()
	}
	if us, ok := sess.(openid.Session); ok && us.IDTokenClaims() != nil && !us.IDTokenClaims().AuthTime.IsZero() {
		claims.AuthTime = us.IDTokenClaims().AuthTime.Unix()
	}
	token, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", "", err
	}
	return token, token[strings.LastIndexByte(token, '.')+1:], nil
}

// tokenAudience is the aud of a JWT access token. RFC 9068 requires one;
// when the client asked for none (neither audience nor resource), a client
// registered for exactly one audience gets that one, since it can mean
// nothing else, and any other client gets its own client_id: a value no
// resource server accepts unless it is the client's own back end, which is
// safer than granting every registered audience at once. The default is
// not recorded as granted, so introspection reports only what was granted
// (and a refresh is checked against what the client may request).
func tokenAudience(c fosite.Client, granted []string) []string {
	if len(granted) > 0 {
		return granted
	}
	if a := c.GetAudience(); len(a) == 1 {
		return a
	}
	return []string{c.GetID()}
}

// verifyJWT checks that one of our published keys signed token as an
// access token. The key is found by kid and must be meant for the header's
// algorithm, so a token cannot pick a weaker algorithm for our key.
func (s *accessTokenStrategy) verifyJWT(token string) error {
	jws, err := jose.ParseSignedCompact(token, jwtVerifyAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return fosite.ErrInvalidTokenFormat.WithWrap(err)
	}
	h := jws.Signatures[0].Header
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != atJWTType {
		return fosite.ErrInvalidTokenFormat.WithHint("The token is not an access token.")
	}
	set := s.keys.JWKS()
	keys := set.Key(h.KeyID)
	if len(keys) == 0 || keys[0].Algorithm != h.Algorithm {
		return fosite.ErrTokenSignatureMismatch.WithHint("The token was not signed by a key of this provider.")
	}
	if _, err := jws.Verify(keys[0]); err != nil {
		return fosite.ErrTokenSignatureMismatch.WithWrap(err)
	}
	return nil
}
