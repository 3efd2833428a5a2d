package clientspec

import (
	"crypto/rand"
	"slices"
	"strings"

	"github.com/smallsso/provider/provider/secret"
	"github.com/smallsso/provider/storage"
)

// Spec is a client as an operator declares it (config or CLI).
type Spec struct {
	ID         string `json:"id" yaml:"id"`
	Secret     string `json:"secret,omitempty" yaml:"secret"`
	SecretHash string `json:"secret_hash,omitempty" yaml:"secret_hash"`
	// JWKS is the client's public key set as JSON; JWKSFile is a file
	// holding it, read by the config loader (relative to the config file);
	// it never reaches the store.
	JWKS     JWKSDoc `json:"jwks,omitempty" yaml:"jwks"`
	JWKSFile string  `json:"-" yaml:"jwks_file"`
	// ClientSettings are stored as declared (storage.Client embeds them
	// too). Introspect "any" and SkipConsent are never settable through
	// registration.
	storage.ClientSettings `yaml:",inline"`
}

// Supported client settings; anything else is refused when declared, so a
// client never believes it has a grant that does not work.
var (
	Grants               = []string{"authorization_code", "implicit", "refresh_token", "client_credentials", "password", GrantJWTBearer}
	supportedAuthMethods = []string{"client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"}
	defaultClientScopes  = []string{"openid", "profile", "email"}
)

// Validate checks the spec and fills defaults. It does not hash.
func (c Spec) Validate() (Spec, error) {
	if c.ID == "" {
		return c, Invalidf("id is required")
	}
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{"authorization_code"}
	}
	if len(c.ResponseTypes) == 0 && slices.Contains(c.GrantTypes, "authorization_code") {
		c.ResponseTypes = []string{"code"}
	}
	if len(c.Scopes) == 0 {
		c.Scopes = slices.Clone(defaultClientScopes)
	}
	if c.TokenEndpointAuthMethod == "" {
		c.TokenEndpointAuthMethod = DefaultAuthMethod(c.Public)
	}
	for _, g := range c.GrantTypes {
		if !slices.Contains(Grants, g) {
			return c, Invalidf("grant type %q is not supported (supported: %s)", g, strings.Join(Grants, ", "))
		}
	}
	var err error
	if c.ResponseTypes, err = CheckResponseTypes(c.ResponseTypes, c.GrantTypes); err != nil {
		return c, err
	}
	if !slices.Contains(supportedAuthMethods, c.TokenEndpointAuthMethod) {
		return c, Invalidf("token_endpoint_auth_method %q is not supported (supported: %s)", c.TokenEndpointAuthMethod, strings.Join(supportedAuthMethods, ", "))
	}
	if c.Public != (c.TokenEndpointAuthMethod == "none") {
		return c, Invalidf("a public client must use token_endpoint_auth_method none, and only a public client may")
	}
	if c.Public && (c.Secret != "" || c.SecretHash != "") {
		return c, Invalidf("a public client has no secret")
	}
	if c.Public && slices.Contains(c.GrantTypes, "client_credentials") {
		return c, Invalidf("a public client cannot use client_credentials")
	}
	if c.Public && slices.Contains(c.GrantTypes, "password") {
		return c, Invalidf("the password grant needs a confidential client: a public client could be anyone")
	}
	if c.Public && slices.Contains(c.GrantTypes, GrantJWTBearer) {
		// Anyone can claim a public client's ID: the assertion alone would
		// then be the credential, which RFC 7523 allows and we do not.
		return c, Invalidf("a public client cannot use the jwt-bearer grant")
	}
	if c.Secret != "" && c.SecretHash != "" {
		return c, Invalidf("give secret or secret_hash, not both")
	}
	if c.SecretHash != "" {
		if err := secret.ValidHash(c.SecretHash); err != nil {
			return c, Invalidf("secret_hash: %v", err)
		}
	}
	if err := c.validateAssertionSettings(); err != nil {
		return c, err
	}
	if err := validSigningAlg("id_token_signed_response_alg", c.IDTokenSignedResponseAlg); err != nil {
		return c, err
	}
	if err := validSigningAlg("userinfo_signed_response_alg", c.UserinfoSignedResponseAlg); err != nil {
		return c, err
	}
	switch c.AccessTokenFormat {
	case "", "opaque", "jwt":
	default:
		return c, Invalidf("access_token_format %q must be opaque or jwt", c.AccessTokenFormat)
	}
	switch {
	case c.Introspect != "" && c.Introspect != IntrospectAny:
		return c, Invalidf("introspect %q must be any (or unset: only the client's own tokens and those whose audience names it)", c.Introspect)
	case c.Introspect != "" && c.Public:
		return c, Invalidf("introspect: a public client cannot introspect tokens")
	}
	if _, err := ParseRateLimit(c.RateLimit); err != nil {
		return c, err
	}
	for _, o := range c.AllowedOrigins {
		if err := validOrigin(o); err != nil {
			return c, Invalidf("allowed origin %q: %v", o, err)
		}
	}
	if err := c.validateClientInfo(); err != nil {
		return c, err
	}
	if (slices.Contains(c.GrantTypes, "authorization_code") || slices.Contains(c.GrantTypes, "implicit")) && len(c.RedirectURIs) == 0 {
		return c, Invalidf("redirect_uris is required for the authorization_code and implicit grants")
	}
	for _, u := range c.RedirectURIs {
		if err := ValidRedirectURI(u); err != nil {
			return c, Invalidf("redirect URI %q: %v", u, err)
		}
	}
	if err := c.validateLogout(); err != nil {
		return c, err
	}
	if err := c.validateRequestObjectSettings(); err != nil {
		return c, err
	}
	return c, nil
}

// validSigningAlg checks a per-client response signing algorithm; empty
// is the default (RS256 ID tokens, plain JSON userinfo).
func validSigningAlg(key, alg string) error {
	switch {
	case alg == "" || slices.Contains(SigningAlgorithms, alg):
		return nil
	case alg == "none":
		return Invalidf("%s \"none\" is not supported: responses are always signed (supported: %s)", key, strings.Join(SigningAlgorithms, ", "))
	}
	return Invalidf("%s %q is not supported (supported: %s)", key, alg, strings.Join(SigningAlgorithms, ", "))
}

// OOBRedirectURI asks for the code to be shown on a page for the person to
// copy, for clients with no way to receive a redirect (a client opts in by
// registering it).
const OOBRedirectURI = "urn:ietf:wg:oauth:2.0:oob"

// GrantJWTBearer is the RFC 7523 §2.1 grant type.
const GrantJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// record turns a validated spec into a stored client: a clear secret is
// hashed, or sealed for client_secret_jwt. old is the stored client, if
// any, whose secret fields are reused when they still match.
func (c Spec) Record(old storage.Client, seal *secret.Sealer) (storage.Client, error) {
	hash, sealed, err := c.secretFields(old, seal)
	if err != nil {
		return storage.Client{}, err
	}
	return storage.Client{ID: c.ID, SecretHash: hash, SecretSealed: sealed, JWKS: string(c.JWKS), ClientSettings: c.ClientSettings}, nil
}

// NewSecret generates the secret a client with this method needs;
// "" for methods without one.
func NewSecret(method string, public bool) string {
	switch method {
	case "none", "private_key_jwt":
		return ""
	case "client_secret_jwt":
		// Long enough for every HMAC algorithm, HS512 included.
		return rand.Text() + rand.Text() + rand.Text()
	}
	if public {
		return ""
	}
	return secret.NewToken()
}

func DefaultAuthMethod(public bool) string {
	if public {
		return "none"
	}
	return "client_secret_basic"
}

// IntrospectAny is the client setting (introspect: any) that lets a client
// introspect every token, not only its own.
const IntrospectAny = "any"

// SigningAlgorithms are the JWS algorithms the provider signs ID tokens
// and userinfo responses with, RS256 first: the OIDC default every relying
// party supports. The server keeps an active key for each.
var SigningAlgorithms = []string{"RS256", "PS256", "ES256", "EdDSA"}
