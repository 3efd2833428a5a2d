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
	ID                      string   `json:"id" yaml:"id"`
	Secret                  string   `json:"secret,omitempty" yaml:"secret"`
	SecretHash              string   `json:"secret_hash,omitempty" yaml:"secret_hash"`
	Name                    string   `json:"name,omitempty" yaml:"name"`
	RedirectURIs            []string `json:"redirect_uris,omitempty" yaml:"redirect_uris"`
	GrantTypes              []string `json:"grant_types,omitempty" yaml:"grant_types"`
	ResponseTypes           []string `json:"response_types,omitempty" yaml:"response_types"`
	Scopes                  []string `json:"scopes,omitempty" yaml:"scopes"`
	Audience                []string `json:"audience,omitempty" yaml:"audience"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method,omitempty" yaml:"token_endpoint_auth_method"`
	// TokenEndpointAuthSigningAlg pins the algorithm of client assertions.
	TokenEndpointAuthSigningAlg string `json:"token_endpoint_auth_signing_alg,omitempty" yaml:"token_endpoint_auth_signing_alg"`
	Public                      bool   `json:"public,omitempty" yaml:"public"`
	// JWKS is the client's public key set as JSON; JWKSURI where to fetch it.
	JWKS    JWKSDoc `json:"jwks,omitempty" yaml:"jwks"`
	JWKSURI string  `json:"jwks_uri,omitempty" yaml:"jwks_uri"`
	// JWKSFile is a file holding JWKS, read by the config loader (relative
	// to the config file); it never reaches the store.
	JWKSFile          string   `json:"-" yaml:"jwks_file"`
	AllowedOrigins    []string `json:"allowed_origins,omitempty" yaml:"allowed_origins"`
	RequirePAR        bool     `json:"require_pushed_authorization_requests,omitempty" yaml:"require_pushed_authorization_requests"`
	AccessTokenFormat string   `json:"access_token_format,omitempty" yaml:"access_token_format"`
	// Introspect "any" lets the client introspect every token; unset, it
	// may introspect only tokens issued to it or whose audience names it.
	// Never settable through dynamic registration.
	Introspect string `json:"introspect,omitempty" yaml:"introspect"`

	// What people see of the client on the login and consent pages.
	LogoURI   string   `json:"logo_uri,omitempty" yaml:"logo_uri"`
	ClientURI string   `json:"client_uri,omitempty" yaml:"client_uri"`
	PolicyURI string   `json:"policy_uri,omitempty" yaml:"policy_uri"`
	TosURI    string   `json:"tos_uri,omitempty" yaml:"tos_uri"`
	Contacts  []string `json:"contacts,omitempty" yaml:"contacts"`

	// Token and request-object algorithms (OIDC Registration §2).
	IDTokenSignedResponseAlg  string   `json:"id_token_signed_response_alg,omitempty" yaml:"id_token_signed_response_alg"`
	UserinfoSignedResponseAlg string   `json:"userinfo_signed_response_alg,omitempty" yaml:"userinfo_signed_response_alg"`
	RequestObjectSigningAlg   string   `json:"request_object_signing_alg,omitempty" yaml:"request_object_signing_alg"`
	RequestURIs               []string `json:"request_uris,omitempty" yaml:"request_uris"`

	// Logout: where RP-initiated logout may return to, and the back- and
	// front-channel logout URIs.
	PostLogoutRedirectURIs            []string `json:"post_logout_redirect_uris,omitempty" yaml:"post_logout_redirect_uris"`
	BackchannelLogoutURI              string   `json:"backchannel_logout_uri,omitempty" yaml:"backchannel_logout_uri"`
	BackchannelLogoutSessionRequired  bool     `json:"backchannel_logout_session_required,omitempty" yaml:"backchannel_logout_session_required"`
	FrontchannelLogoutURI             string   `json:"frontchannel_logout_uri,omitempty" yaml:"frontchannel_logout_uri"`
	FrontchannelLogoutSessionRequired bool     `json:"frontchannel_logout_session_required,omitempty" yaml:"frontchannel_logout_session_required"`
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
	return storage.Client{
		ID:                          c.ID,
		SecretHash:                  hash,
		SecretSealed:                sealed,
		Name:                        c.Name,
		RedirectURIs:                c.RedirectURIs,
		GrantTypes:                  c.GrantTypes,
		ResponseTypes:               c.ResponseTypes,
		Scopes:                      c.Scopes,
		Audience:                    c.Audience,
		TokenEndpointAuthMethod:     c.TokenEndpointAuthMethod,
		TokenEndpointAuthSigningAlg: c.TokenEndpointAuthSigningAlg,
		Public:                      c.Public,
		JWKS:                        string(c.JWKS),
		JWKSURI:                     c.JWKSURI,
		AllowedOrigins:              c.AllowedOrigins,
		RequirePAR:                  c.RequirePAR,
		AccessTokenFormat:           c.AccessTokenFormat,
		Introspect:                  c.Introspect,

		LogoURI:   c.LogoURI,
		ClientURI: c.ClientURI,
		PolicyURI: c.PolicyURI,
		TosURI:    c.TosURI,
		Contacts:  c.Contacts,

		IDTokenSignedResponseAlg:  c.IDTokenSignedResponseAlg,
		UserinfoSignedResponseAlg: c.UserinfoSignedResponseAlg,
		RequestObjectSigningAlg:   c.RequestObjectSigningAlg,
		RequestURIs:               c.RequestURIs,

		PostLogoutRedirectURIs:            c.PostLogoutRedirectURIs,
		BackchannelLogoutURI:              c.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired:  c.BackchannelLogoutSessionRequired,
		FrontchannelLogoutURI:             c.FrontchannelLogoutURI,
		FrontchannelLogoutSessionRequired: c.FrontchannelLogoutSessionRequired,
	}, nil
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
