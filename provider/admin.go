package provider

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/smallsso/provider/provider/secret"

	"github.com/google/uuid"

	"github.com/smallsso/provider/storage"
)

// Admin is what an operator can do to users, clients and trusted issuers.
// LocalAdmin works on an open store; the admin socket client does the same
// through a running server, so the CLI works whether or not a server holds
// the database.
type Admin interface {
	AddUser(ctx context.Context, u NewUser) (storage.User, error)
	ListUsers(ctx context.Context) ([]storage.User, error)
	DeleteUser(ctx context.Context, username string) error
	SetPassword(ctx context.Context, username, password string) error
	// AddClient returns the generated secret when the spec had none and the
	// client is confidential; it is shown once and never stored in clear.
	AddClient(ctx context.Context, c ClientSpec) (storage.Client, string, error)
	ListClients(ctx context.Context) ([]storage.Client, error)
	DeleteClient(ctx context.Context, id string) error
	// AddTrustedIssuer lets an issuer's JWT assertions be exchanged for
	// access tokens (RFC 7523); the entry gets a random ID.
	AddTrustedIssuer(ctx context.Context, t TrustSpec) (storage.TrustedIssuer, error)
	ListTrustedIssuers(ctx context.Context) ([]storage.TrustedIssuer, error)
	DeleteTrustedIssuer(ctx context.Context, id string) error
}

// NewUser is a user to create.
type NewUser struct {
	Username      string   `json:"username"`
	Email         string   `json:"email,omitempty"`
	EmailVerified bool     `json:"email_verified,omitempty"`
	Name          string   `json:"name,omitempty"`
	GivenName     string   `json:"given_name,omitempty"`
	FamilyName    string   `json:"family_name,omitempty"`
	Groups        []string `json:"groups,omitempty"`
	PhoneNumber   string   `json:"phone_number,omitempty"`
	// PhoneNumberVerified says the operator checked the number.
	PhoneNumberVerified bool             `json:"phone_number_verified,omitempty"`
	Address             *storage.Address `json:"address,omitempty"`
	Password            string           `json:"password,omitempty"`
}

// ClientSpec is a client as an operator declares it (config or CLI).
type ClientSpec struct {
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

// InvalidError is an operator mistake, worded for the operator.
type InvalidError struct {
	Msg string
	// Public, when set, is Msg without a library's own words, for a
	// client that registered the setting (see detailError).
	Public string
}

func (e *InvalidError) Error() string { return e.Msg }

// public is the message a registering client may be shown.
func (e *InvalidError) public() string {
	if e.Public != "" {
		return e.Public
	}
	return e.Msg
}

// invalidCause is invalid for a problem found by a library: the operator
// reads its words, a client only ours (prefix: err's public text).
func invalidCause(prefix string, err error) error {
	return &InvalidError{Msg: prefix + err.Error(), Public: prefix + publicText(err)}
}

// detailError is an error of ours with a library's error behind it.
// Error has both, for logs and operators; publicText only ours, for
// clients: a library's message describes its internals, not the request.
type detailError struct {
	msg   string
	cause error
}

func (e *detailError) Error() string { return e.msg + ": " + e.cause.Error() }
func (e *detailError) Unwrap() error { return e.cause }

// publicText is err as a client may read it.
func publicText(err error) string {
	var d *detailError
	if errors.As(err, &d) {
		return d.msg
	}
	return err.Error()
}

func invalid(format string, args ...any) error {
	return &InvalidError{Msg: fmt.Sprintf(format, args...)}
}

// Supported client settings; anything else is refused when declared, so a
// client never believes it has a grant that does not work.
var (
	supportedGrants      = []string{"authorization_code", "implicit", "refresh_token", "client_credentials", "password", grantJWTBearer}
	supportedAuthMethods = []string{"client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"}
	defaultClientScopes  = []string{"openid", "profile", "email"}
)

// Validate checks the spec and fills defaults. It does not hash.
func (c ClientSpec) Validate() (ClientSpec, error) {
	if c.ID == "" {
		return c, invalid("id is required")
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
		c.TokenEndpointAuthMethod = defaultAuthMethod(c.Public)
	}
	for _, g := range c.GrantTypes {
		if !slices.Contains(supportedGrants, g) {
			return c, invalid("grant type %q is not supported (supported: %s)", g, strings.Join(supportedGrants, ", "))
		}
	}
	var err error
	if c.ResponseTypes, err = checkResponseTypes(c.ResponseTypes, c.GrantTypes); err != nil {
		return c, err
	}
	if !slices.Contains(supportedAuthMethods, c.TokenEndpointAuthMethod) {
		return c, invalid("token_endpoint_auth_method %q is not supported (supported: %s)", c.TokenEndpointAuthMethod, strings.Join(supportedAuthMethods, ", "))
	}
	if c.Public != (c.TokenEndpointAuthMethod == "none") {
		return c, invalid("a public client must use token_endpoint_auth_method none, and only a public client may")
	}
	if c.Public && (c.Secret != "" || c.SecretHash != "") {
		return c, invalid("a public client has no secret")
	}
	if c.Public && slices.Contains(c.GrantTypes, "client_credentials") {
		return c, invalid("a public client cannot use client_credentials")
	}
	if c.Public && slices.Contains(c.GrantTypes, "password") {
		return c, invalid("the password grant needs a confidential client: a public client could be anyone")
	}
	if c.Public && slices.Contains(c.GrantTypes, grantJWTBearer) {
		// Anyone can claim a public client's ID: the assertion alone would
		// then be the credential, which RFC 7523 allows and we do not.
		return c, invalid("a public client cannot use the jwt-bearer grant")
	}
	if c.Secret != "" && c.SecretHash != "" {
		return c, invalid("give secret or secret_hash, not both")
	}
	if c.SecretHash != "" {
		if err := secret.ValidHash(c.SecretHash); err != nil {
			return c, invalid("secret_hash: %v", err)
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
		return c, invalid("access_token_format %q must be opaque or jwt", c.AccessTokenFormat)
	}
	switch {
	case c.Introspect != "" && c.Introspect != IntrospectAny:
		return c, invalid("introspect %q must be any (or unset: only the client's own tokens and those whose audience names it)", c.Introspect)
	case c.Introspect != "" && c.Public:
		return c, invalid("introspect: a public client cannot introspect tokens")
	}
	for _, o := range c.AllowedOrigins {
		if err := validOrigin(o); err != nil {
			return c, invalid("allowed origin %q: %v", o, err)
		}
	}
	if err := c.validateClientInfo(); err != nil {
		return c, err
	}
	if (slices.Contains(c.GrantTypes, "authorization_code") || slices.Contains(c.GrantTypes, "implicit")) && len(c.RedirectURIs) == 0 {
		return c, invalid("redirect_uris is required for the authorization_code and implicit grants")
	}
	for _, u := range c.RedirectURIs {
		if err := validRedirectURI(u); err != nil {
			return c, invalid("redirect URI %q: %v", u, err)
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
		return invalid("%s \"none\" is not supported: responses are always signed (supported: %s)", key, strings.Join(SigningAlgorithms, ", "))
	}
	return invalid("%s %q is not supported (supported: %s)", key, alg, strings.Join(SigningAlgorithms, ", "))
}

// oobRedirectURI asks for the code to be shown on a page for the person to
// copy, for clients with no way to receive a redirect (a client opts in by
// registering it).
const oobRedirectURI = "urn:ietf:wg:oauth:2.0:oob"

// grantJWTBearer is the RFC 7523 §2.1 grant type.
const grantJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// validRedirectURI accepts https URIs, http on loopback (RFC 8252 §7.3),
// private-use schemes (RFC 8252 §7.1) and the out-of-band URN.
func validRedirectURI(raw string) error {
	if raw == oobRedirectURI {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return errors.New("must be an absolute URI")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("must not have a fragment")
	}
	if u.Scheme == "http" && !IsLoopbackHost(u.Hostname()) {
		return errors.New("http is only allowed on loopback (127.0.0.1, [::1], localhost); use https")
	}
	return nil
}

// validWebURL accepts an absolute https URL without user information; http
// only on a loopback host, for local development and tests. Everything a
// client registers for the provider to fetch, post to or link to follows
// it: jwks_uri, request_uris, logout URIs, page links.
func validWebURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return errors.New("must be an absolute URL")
	}
	if u.User != nil {
		return errors.New("must not contain user information")
	}
	switch {
	case u.Scheme == "https", u.Scheme == "http" && IsLoopbackHost(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return errors.New("http is only allowed on loopback (127.0.0.1, [::1], localhost); it must be https")
	}
	return errors.New("must be https")
}

// validOrigin accepts a bare web origin: scheme://host[:port].
func validOrigin(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return errors.New("must be an origin like https://app.example.org")
	}
	return nil
}

// IsLoopbackHost is true for loopback IP literals and "localhost".
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// record turns a validated spec into a stored client: a clear secret is
// hashed, or sealed for client_secret_jwt. old is the stored client, if
// any, whose secret fields are reused when they still match.
func (c ClientSpec) record(old storage.Client, seal *secret.Sealer) (storage.Client, error) {
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

// LocalAdmin runs admin commands on a store this process has open.
type LocalAdmin struct {
	Store storage.Store
	// Sealer encrypts the secrets of client_secret_jwt clients; without
	// one such clients cannot be added.
	Sealer *secret.Sealer
	Now    func() time.Time
	// SessionsEnded, when set, tells the clients of browser sessions that
	// a password change ended (a running server's back-channel logout).
	SessionsEnded func(context.Context, []storage.BrowserSession)
	// PasswordChanged, when set, tells a running server that username's
	// password changed (its throttle forgets the places it signed in from).
	PasswordChanged func(username string)
}

var _ Admin = (*LocalAdmin)(nil)

func (a *LocalAdmin) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *LocalAdmin) AddUser(ctx context.Context, n NewUser) (storage.User, error) {
	if n.Username == "" || strings.ContainsAny(n.Username, " \t\r\n") {
		return storage.User{}, invalid("username is required and must not contain spaces")
	}
	if n.Password == "" {
		return storage.User{}, invalid("password must not be empty")
	}
	hash, err := secret.Hash(n.Password)
	if err != nil {
		return storage.User{}, err
	}
	now := a.now().UTC()
	u := storage.User{
		ID: newSubject(), Username: n.Username, Email: n.Email, EmailVerified: n.EmailVerified,
		Name: n.Name, GivenName: n.GivenName, FamilyName: n.FamilyName, Groups: n.Groups,
		PhoneNumber: n.PhoneNumber, PhoneNumberVerified: n.PhoneNumberVerified, Address: n.Address,
		PasswordHash: hash, CreatedAt: now, UpdatedAt: now,
	}
	if err := a.Store.CreateUser(ctx, u); err != nil {
		return storage.User{}, err
	}
	return u, nil
}

// ListUsers leaves out password hashes: listings are for reading.
func (a *LocalAdmin) ListUsers(ctx context.Context) ([]storage.User, error) {
	us, err := a.Store.ListUsers(ctx)
	for i := range us {
		us[i].PasswordHash = ""
	}
	return us, err
}

func (a *LocalAdmin) DeleteUser(ctx context.Context, username string) error {
	u, err := a.Store.GetUserByUsername(ctx, username)
	if err != nil {
		return err
	}
	return a.Store.DeleteUser(ctx, u.ID)
}

func (a *LocalAdmin) SetPassword(ctx context.Context, username, password string) error {
	if password == "" {
		return invalid("password must not be empty")
	}
	u, err := a.Store.GetUserByUsername(ctx, username)
	if err != nil {
		return err
	}
	hash, err := secret.Hash(password)
	if err != nil {
		return err
	}
	err = a.Store.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) {
		u.PasswordHash, u.UpdatedAt = hash, a.now().UTC()
		return u, nil
	})
	if err != nil {
		return err
	}
	// As on the account page: whoever knew the old password loses what
	// it gave them, every browser session and refresh token.
	ended, err := endUserAccess(ctx, a.Store, u.ID, "")
	if err == nil && a.SessionsEnded != nil {
		a.SessionsEnded(ctx, ended)
	}
	if a.PasswordChanged != nil {
		a.PasswordChanged(u.Username)
	}
	return err
}

func (a *LocalAdmin) AddClient(ctx context.Context, spec ClientSpec) (storage.Client, string, error) {
	generated := ""
	if spec.Secret == "" && spec.SecretHash == "" {
		generated = newClientSecret(spec.TokenEndpointAuthMethod, spec.Public)
		spec.Secret = generated
	}
	spec, err := spec.Validate()
	if err != nil {
		return storage.Client{}, "", err
	}
	c, err := spec.record(storage.Client{}, a.Sealer)
	if err != nil {
		return storage.Client{}, "", err
	}
	c.Source = "cli"
	c.CreatedAt, c.UpdatedAt = a.now().UTC(), a.now().UTC()
	if err := a.Store.CreateClient(ctx, c); err != nil {
		return storage.Client{}, "", err
	}
	c.SecretSealed = nil
	return c, generated, nil
}

// newClientSecret generates the secret a client with this method needs;
// "" for methods without one.
func newClientSecret(method string, public bool) string {
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

// ListClients leaves out secret hashes and sealed secrets: listings are
// for reading.
func (a *LocalAdmin) ListClients(ctx context.Context) ([]storage.Client, error) {
	cs, err := a.Store.ListClients(ctx)
	for i := range cs {
		cs[i].SecretHash, cs[i].SecretSealed = "", nil
	}
	return cs, err
}

func (a *LocalAdmin) DeleteClient(ctx context.Context, id string) error {
	return a.Store.DeleteClient(ctx, id)
}

// newSubject makes a user's stable, opaque `sub`.
func newSubject() string { return uuid.NewString() }

// NewPassword returns a random password for a person to copy once
// (crypto/rand.Text: 26 base32 characters, 130 bits).
func NewPassword() string { return rand.Text() }
