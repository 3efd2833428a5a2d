package provider

// What the provider signs with, and fosite's jwt.Signer over our keys.
// fosite's DefaultSigner knows one private key and verifies only with it;
// ours signs with the key the caller chose for the client (ID tokens and
// userinfo have per-client algorithms) and verifies with every published
// key, so a token signed before a rotation, or with another algorithm,
// still verifies while its key is in the JWKS.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"
	"github.com/ory/fosite/token/jwt"

	"github.com/smallsso/provider/keys"
	"github.com/smallsso/provider/provider/clientspec"
)

// signingAlgs are the clientspec.SigningAlgorithms that have an active key now, which
// is what discovery may advertise.
func (p *Provider) signingAlgs() []string {
	var out []string
	for _, alg := range clientspec.SigningAlgorithms {
		if _, err := p.keys.Active(alg); err == nil {
			out = append(out, alg)
		}
	}
	return out
}

// joseSigner signs our own JWTs (JWT access tokens, logout tokens, signed
// userinfo) with go-jose v4 and the active key for alg, naming it in kid;
// typ is the JWT type header, empty for none.
func joseSigner(src KeySource, alg, typ string) (jose.Signer, error) {
	k, err := src.Active(alg)
	if err != nil {
		return nil, err
	}
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	return jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Alg), Key: jose.JSONWebKey{Key: k.Signer, KeyID: k.ID}}, opts)
}

type signingKeyKey struct{}

// withSigningKey makes the signer use k for what is signed under ctx, so
// the key chosen (and named in the kid header) is the key that signs even
// if a rotation happens in between.
func withSigningKey(ctx context.Context, k keys.Key) context.Context {
	return context.WithValue(ctx, signingKeyKey{}, k)
}

// activeKey is the active key for alg, as a fosite error when there is
// none (the configuration lacks the algorithm a client was registered
// with).
func activeKey(src KeySource, alg string) (keys.Key, error) {
	k, err := src.Active(alg)
	if err != nil {
		return keys.Key{}, fosite.ErrServerError.WithWrap(err).WithDebugf("No active %s signing key.", alg)
	}
	return k, nil
}

// jwtSigner is the jwt.Signer fosite signs and decodes JWTs with: ID
// tokens, and id_token_hint at the authorization endpoint.
type jwtSigner struct {
	keys KeySource
	// now, if set, restamps iat: fosite stamps ID tokens from the real
	// clock, and the provider's clock (Deps.Now) is the one tests move.
	now func() time.Time
}

var _ jwt.Signer = (*jwtSigner)(nil)

func (s *jwtSigner) Generate(ctx context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	k, ok := ctx.Value(signingKeyKey{}).(keys.Key)
	if !ok {
		var err error
		if k, err = activeKey(s.keys, signingAlg); err != nil {
			return "", "", err
		}
	}
	// The kid header must name the signing key: a stored session may carry
	// the kid of an earlier token, and go-jose lets extra headers win.
	h := jwt.NewHeaders()
	if header != nil {
		for name, v := range header.ToMap() {
			h.Add(name, v)
		}
	}
	h.Add("kid", k.ID)
	if _, ok := claims["iat"]; ok && s.now != nil {
		claims["iat"] = s.now().Unix()
	}
	key := signingKeyV3(k)
	signer := &jwt.DefaultSigner{GetPrivateKey: func(context.Context) (interface{}, error) { return key, nil }}
	return signer.Generate(ctx, claims, h)
}

// Decode verifies token with the published key its kid names, which must
// be meant for the header's algorithm. Like fosite's signer it reports an
// expired token as a *jwt.ValidationError with the token still filled in,
// since id_token_hint may be expired.
func (s *jwtSigner) Decode(ctx context.Context, token string) (*jwt.Token, error) {
	return jwt.ParseWithClaims(token, jwt.MapClaims{}, func(t *jwt.Token) (interface{}, error) {
		kid, _ := t.Header["kid"].(string)
		key, err := s.publishedKey(kid, string(t.Method))
		if err != nil {
			return nil, err
		}
		return key, nil
	})
}

func (s *jwtSigner) Validate(ctx context.Context, token string) (string, error) {
	if _, err := s.Decode(ctx, token); err != nil {
		return "", err
	}
	return s.GetSignature(ctx, token)
}

func (s *jwtSigner) GetSignature(ctx context.Context, token string) (string, error) {
	return (&jwt.DefaultSigner{}).GetSignature(ctx, token)
}

func (s *jwtSigner) Hash(ctx context.Context, in []byte) ([]byte, error) {
	return (&jwt.DefaultSigner{}).Hash(ctx, in)
}

func (s *jwtSigner) GetSigningMethodLength(ctx context.Context) int {
	return jwt.SHA256HashSize
}

var errForeignKey = errors.New("the token was not signed by a key of this provider")

// publishedKey is the public key with kid from our JWKS, if it signs with
// alg: a token cannot choose "none" or another algorithm for our key.
func (s *jwtSigner) publishedKey(kid, alg string) (interface{}, error) {
	if kid == "" || !slices.Contains(clientspec.SigningAlgorithms, alg) {
		return nil, errForeignKey
	}
	set := s.keys.JWKS()
	found := set.Key(kid)
	if len(found) != 1 || found[0].Algorithm != alg {
		return nil, fmt.Errorf("%w (kid %q, alg %q)", errForeignKey, kid, alg)
	}
	return verificationKeyV3(found[0], kid, alg), nil
}
