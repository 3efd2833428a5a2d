package clientspec

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	"go.yaml.in/yaml/v3"

	"github.com/smallsso/provider/provider/secret"
	"github.com/smallsso/provider/storage"
)

// The JWS algorithms each assertion method accepts. HMAC belongs to
// client_secret_jwt only and public-key algorithms to private_key_jwt only,
// so a public key can never be used as an HMAC secret (algorithm
// confusion). "none" is in neither list, and go-jose refuses to parse
// anything not listed.
var (
	HMACAssertionAlgs = []jose.SignatureAlgorithm{jose.HS256, jose.HS384, jose.HS512}
	KeyAssertionAlgs  = []jose.SignatureAlgorithm{
		jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
		jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
	}
)

// AssertionAlgs returns the algorithms a client with this method may sign
// its assertions with; nil for methods that do not use assertions.
func AssertionAlgs(method string) []jose.SignatureAlgorithm {
	switch method {
	case "client_secret_jwt":
		return HMACAssertionAlgs
	case "private_key_jwt":
		return KeyAssertionAlgs
	}
	return nil
}

// AssertionAlgNames is the discovery list of assertion algorithms.
func AssertionAlgNames() []string {
	return AlgNames(slices.Concat(HMACAssertionAlgs, KeyAssertionAlgs))
}

// MinHMACSecret is the shortest secret alg can use: RFC 7518 §3.2 wants a
// key at least as long as the hash output, and go-jose enforces it.
func MinHMACSecret(alg jose.SignatureAlgorithm) int {
	switch alg {
	case jose.HS384:
		return 48
	case jose.HS512:
		return 64
	}
	return 32
}

// KeyFits reports whether k can verify signatures made with alg.
func KeyFits(k jose.JSONWebKey, alg jose.SignatureAlgorithm) bool {
	if (k.Use != "" && k.Use != "sig") || (k.Algorithm != "" && k.Algorithm != string(alg)) {
		return false
	}
	switch key := k.Key.(type) {
	case *rsa.PublicKey:
		// RSA below 2048 bits is no longer considered safe (NIST SP 800-131A).
		return (strings.HasPrefix(string(alg), "RS") || strings.HasPrefix(string(alg), "PS")) && key.N.BitLen() >= 2048
	case *ecdsa.PublicKey:
		switch alg {
		case jose.ES256:
			return key.Curve == elliptic.P256()
		case jose.ES384:
			return key.Curve == elliptic.P384()
		case jose.ES512:
			return key.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}

// validateAssertionSettings checks what a client_secret_jwt or
// private_key_jwt client needs, and the key settings of any client.
func (c Spec) validateAssertionSettings() error {
	m := c.TokenEndpointAuthMethod
	if c.JWKS != "" && c.JWKSURI != "" {
		return Invalidf("give jwks or jwks_uri, not both")
	}
	var set jose.JSONWebKeySet
	if c.JWKS != "" {
		var err error
		if set, err = ParseJWKS([]byte(c.JWKS)); err != nil {
			return invalidCause("jwks: ", err)
		}
	}
	if c.JWKSURI != "" {
		if ValidWebURL(c.JWKSURI) != nil {
			return Invalidf("jwks_uri %q must be an https URL (http only on loopback)", c.JWKSURI)
		}
	}
	allowed := AssertionAlgs(m)
	if pin := c.TokenEndpointAuthSigningAlg; pin != "" {
		if !slices.Contains(AssertionAlgNames(), pin) {
			return Invalidf("token_endpoint_auth_signing_alg %q is not supported (supported: %s)", pin, strings.Join(AssertionAlgNames(), ", "))
		}
		if allowed == nil {
			return Invalidf("token_endpoint_auth_signing_alg applies only to client_secret_jwt and private_key_jwt")
		}
		if !slices.Contains(allowed, jose.SignatureAlgorithm(pin)) {
			return Invalidf("token_endpoint_auth_signing_alg %s does not fit %s (%s needs one of %s)", pin, m, m, strings.Join(AlgNames(allowed), ", "))
		}
		allowed = []jose.SignatureAlgorithm{jose.SignatureAlgorithm(pin)}
	}
	switch m {
	case "client_secret_jwt":
		if c.SecretHash != "" {
			return Invalidf("client_secret_jwt needs the secret itself (secret): checking an HMAC-signed assertion needs the key, and a secret_hash cannot provide it")
		}
		if c.Secret == "" {
			return Invalidf("client_secret_jwt needs a secret")
		}
		need := MinHMACSecret(jose.HS256)
		if pin := c.TokenEndpointAuthSigningAlg; pin != "" {
			need = MinHMACSecret(jose.SignatureAlgorithm(pin))
		}
		if len(c.Secret) < need {
			return Invalidf("client_secret_jwt needs a secret of at least %d bytes (RFC 7518 §3.2)", need)
		}
	case "private_key_jwt":
		if c.Secret != "" || c.SecretHash != "" {
			return Invalidf("a private_key_jwt client has no secret: it proves itself with its key")
		}
		if c.JWKS == "" && c.JWKSURI == "" {
			return Invalidf("private_key_jwt needs the client's public keys: jwks or jwks_uri")
		}
		if c.JWKS != "" && !slices.ContainsFunc(set.Keys, func(k jose.JSONWebKey) bool {
			return slices.ContainsFunc(allowed, func(a jose.SignatureAlgorithm) bool { return KeyFits(k, a) })
		}) {
			return Invalidf("jwks has no signing key usable with %s (RSA keys need 2048 bits or more)", strings.Join(AlgNames(allowed), ", "))
		}
	}
	return nil
}

func AlgNames(algs []jose.SignatureAlgorithm) []string {
	out := make([]string, len(algs))
	for i, a := range algs {
		out[i] = string(a)
	}
	return out
}

// secretFields gives the record's secret fields for spec's method: the
// sealed secret for client_secret_jwt, the argon2id hash otherwise. old is
// the stored record (zero if none); what it holds is kept when it still
// matches, so a restart does not rewrite every client.
func (c Spec) secretFields(old storage.Client, s *secret.Sealer) (hash string, sealed []byte, err error) {
	if c.TokenEndpointAuthMethod == "client_secret_jwt" {
		if len(old.SecretSealed) > 0 {
			if prev, err := s.Open(c.ID, old.SecretSealed); err == nil && subtle.ConstantTimeCompare([]byte(prev), []byte(c.Secret)) == 1 {
				return "", old.SecretSealed, nil
			}
		}
		sealed, err := s.Seal(c.ID, c.Secret)
		if err != nil {
			return "", nil, fmt.Errorf("client %q: %w", c.ID, err)
		}
		return "", sealed, nil
	}
	hash, err = c.ResolveSecretHash(old.SecretHash)
	return hash, nil, err
}

// ResolveSecretHash gives the secret hash to store for c (any method but
// client_secret_jwt, whose secret is sealed), given the hash stored today
// (current, "" for a new client): secret_hash as declared; or, for a
// secret, the current hash when it already matches (so a restart or a
// reload does not rehash every client), else a fresh hash.
func (c Spec) ResolveSecretHash(current string) (string, error) {
	if c.Secret == "" {
		return c.SecretHash, nil
	}
	if current != "" && secret.Check(current, c.Secret) == nil {
		return current, nil
	}
	return secret.Hash(c.Secret)
}

// JWKSDoc is a JSON Web Key Set document, for clients and trusted issuers
// alike. In YAML it may be written as a mapping ({keys: [...]}) or as a
// JSON string, in JSON as an object or a string; it is kept as JSON.
type JWKSDoc string

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *JWKSDoc) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		var s string
		if err := n.Decode(&s); err != nil {
			return err
		}
		*d = JWKSDoc(s)
		return nil
	case yaml.MappingNode:
		var m map[string]any
		if err := n.Decode(&m); err != nil {
			return err
		}
		raw, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("line %d: jwks cannot be written as JSON: %v", n.Line, err)
		}
		*d = JWKSDoc(raw)
		return nil
	}
	return fmt.Errorf("line %d: jwks must be a JSON Web Key Set: a mapping with keys, or a JSON string", n.Line)
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *JWKSDoc) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*d = JWKSDoc(s)
		return nil
	}
	if !json.Valid(b) {
		return errors.New("jwks: not JSON")
	}
	*d = JWKSDoc(b)
	return nil
}

// ParseJWKS reads a JSON Web Key Set and refuses private keys: a party
// that publishes its private key has no key at all.
func ParseJWKS(raw []byte) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return jose.JSONWebKeySet{}, &detailError{msg: "not a JSON Web Key Set, or one of its keys cannot be read (check kty, crv, n, e, x, y and x5c)", cause: err}
	}
	if len(set.Keys) == 0 {
		return jose.JSONWebKeySet{}, errors.New("the JSON Web Key Set has no keys")
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return jose.JSONWebKeySet{}, fmt.Errorf("key %q is not a public key", k.KeyID)
		}
	}
	return set, nil
}

// MaxRequestURILength is RFC 9101 §5.2's limit.
const MaxRequestURILength = 512

// RequestObjectAlgs are the algorithms a signed request object may use:
// the public-key ones of private_key_jwt. HMAC would need the client
// secret in clear, which is stored only as a hash.
var RequestObjectAlgs = KeyAssertionAlgs

// RequestObjectAlgNames is the discovery list. An unsigned object is no
// weaker than the same parameters in the URL, so none is accepted unless
// the client registered request_object_signing_alg.
func RequestObjectAlgNames() []string {
	return append([]string{"none"}, AlgNames(RequestObjectAlgs)...)
}

// ValidRequestURI accepts what a client may register in request_uris.
func ValidRequestURI(raw string) error {
	if len(raw) > MaxRequestURILength {
		return fmt.Errorf("longer than %d characters (RFC 9101 §5.2)", MaxRequestURILength)
	}
	return ValidWebURL(raw)
}

// validateRequestObjectSettings checks request_object_signing_alg and
// request_uris.
func (c Spec) validateRequestObjectSettings() error {
	if alg := c.RequestObjectSigningAlg; alg != "" {
		if !slices.Contains(RequestObjectAlgNames(), alg) {
			return Invalidf("request_object_signing_alg %q is not supported (supported: %s)", alg, strings.Join(RequestObjectAlgNames(), ", "))
		}
		if alg != "none" {
			if c.JWKS == "" && c.JWKSURI == "" {
				return Invalidf("request_object_signing_alg %s needs the client's public keys: jwks or jwks_uri", alg)
			}
			if c.JWKS != "" {
				set, err := ParseJWKS([]byte(c.JWKS))
				if err != nil {
					return invalidCause("jwks: ", err)
				}
				if !slices.ContainsFunc(set.Keys, func(k jose.JSONWebKey) bool { return KeyFits(k, jose.SignatureAlgorithm(alg)) }) {
					return Invalidf("jwks has no key usable with %s for request objects (RSA keys need 2048 bits or more)", alg)
				}
			}
		}
	}
	for _, u := range c.RequestURIs {
		if err := ValidRequestURI(u); err != nil {
			return Invalidf("request URI %q: %v", u, err)
		}
	}
	return nil
}
