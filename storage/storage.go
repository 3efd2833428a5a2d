// Package storage defines the records the provider keeps and the Store
// interface every backend (bbolt today, PostgreSQL later) implements.
//
// The package holds no policy: it does not hash, expire or authorise. Records
// are plain values; callers hash secrets before they arrive here and decide
// what "expired" means for a flow. The only time-based behaviour a backend
// owns is GarbageCollect, which removes records whose ExpiresAt has passed.
package storage

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Backends wrap them; callers test with errors.Is.
var (
	// ErrNotFound means no record has the given key.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists means a Create met a record with the same key
	// (or, for users, the same username).
	ErrAlreadyExists = errors.New("already exists")
	// ErrInactive is returned by DeactivateToken when the token was already
	// inactive: the caller lost a race or is replaying a used token.
	ErrInactive = errors.New("already inactive")
	// ErrUnavailable means the backend could not make a write durable (a
	// full disk, a file it may not write, an I/O error): nothing of the
	// write was kept, and the same write may succeed once the cause is
	// fixed.
	ErrUnavailable = errors.New("storage unavailable")
	// ErrConflict means the write lost a race with a concurrent writer on
	// another connection or replica (a serialization failure or deadlock
	// the backend detected) and nothing of it was kept. The same call
	// made again may succeed; a caller retries it a few times or answers
	// with the protocol's "try again" error, never a 500.
	ErrConflict = errors.New("conflict with a concurrent write")
)

// TokenKind names a family of token request records.
type TokenKind string

const (
	KindAuthorizeCode TokenKind = "code"
	KindAccessToken   TokenKind = "access"
	KindRefreshToken  TokenKind = "refresh"
	KindOIDC          TokenKind = "oidc"
	KindPKCE          TokenKind = "pkce"
	KindPAR           TokenKind = "par"
)

// TokenKinds lists every kind, in a stable order.
var TokenKinds = []TokenKind{KindAuthorizeCode, KindAccessToken, KindRefreshToken, KindOIDC, KindPKCE, KindPAR}

// User is a person who can sign in. ID is the OIDC `sub`: random, stable,
// never the username, so renaming a user does not change who they are to
// relying parties.
type User struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Profile
	PasswordHash string    `json:"password_hash,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	// Source is "config" for a user the config file declares: it is
	// deleted when the config no longer does. Empty for one added with
	// the CLI, which the config never removes.
	Source string `json:"source,omitempty"`
}

// Profile is what a user's claims are made of (OIDC Core §5.1), as the
// operator declares it in the config or with the CLI. It is embedded in
// User and in userspec.User; JSON and YAML see its fields inline.
type Profile struct {
	Email         string   `json:"email,omitempty" yaml:"email"`
	EmailVerified bool     `json:"email_verified,omitempty" yaml:"email_verified"`
	Name          string   `json:"name,omitempty" yaml:"name"`
	GivenName     string   `json:"given_name,omitempty" yaml:"given_name"`
	FamilyName    string   `json:"family_name,omitempty" yaml:"family_name"`
	Groups        []string `json:"groups,omitempty" yaml:"groups"`
	PhoneNumber   string   `json:"phone_number,omitempty" yaml:"phone_number"`
	// PhoneNumberVerified says the operator checked the number.
	PhoneNumberVerified bool     `json:"phone_number_verified,omitempty" yaml:"phone_number_verified"`
	Address             *Address `json:"address,omitempty" yaml:"address"`
}

// Address is a postal address, the OIDC Core §5.1.1 address claim.
type Address struct {
	Formatted     string `json:"formatted,omitempty" yaml:"formatted"`
	StreetAddress string `json:"street_address,omitempty" yaml:"street_address"`
	Locality      string `json:"locality,omitempty" yaml:"locality"`
	Region        string `json:"region,omitempty" yaml:"region"`
	PostalCode    string `json:"postal_code,omitempty" yaml:"postal_code"`
	Country       string `json:"country,omitempty" yaml:"country"`
}

// Client is an OAuth 2.0 client (relying party): its settings, which
// the config file, the CLI and dynamic registration declare alike, and
// what only the provider sets (secrets, source, timestamps).
type Client struct {
	ID         string `json:"id"`
	SecretHash string `json:"secret_hash,omitempty"`
	ClientSettings
	// SecretSealed is the client secret itself, encrypted with a provider
	// key. Only client_secret_jwt clients have it: checking an HMAC needs
	// the secret, not a hash of it.
	SecretSealed []byte `json:"secret_sealed,omitempty"`
	// JWKS (a JSON Web Key Set document) or JWKSURI carries the client's
	// public keys, for private_key_jwt and signed request objects.
	JWKS string `json:"jwks,omitempty"`
	// RegistrationAccessTokenHash is a hash of the RFC 7592 registration
	// access token of a dynamically registered client.
	RegistrationAccessTokenHash string `json:"registration_access_token_hash,omitempty"`
	// Metadata holds registration metadata (RFC 7591) that has no field of
	// its own, as the client sent it.
	Metadata map[string]any `json:"metadata,omitempty"`
	// Source says who owns the record: "config" for clients declared in the
	// config file (reconciled at every start), "registration" for clients
	// registered dynamically (RFC 7591), "" or "cli" for the rest.
	Source    string    `json:"source,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// RegisteredWithToken marks a client registered through /register
	// with the initial access token; see OpenlyRegistered.
	RegisteredWithToken bool `json:"registered_with_token,omitempty"`
}

// ClientSettings is what an operator or a registering client declares
// about a client (OIDC Registration §2, RFC 7591 §2, and our own
// settings), beside its ID, secret and keys. It is embedded in Client
// and in clientspec.Spec, so the three agree field by field; JSON and
// YAML see its fields inline.
type ClientSettings struct {
	Name                    string   `json:"name,omitempty" yaml:"name"`
	RedirectURIs            []string `json:"redirect_uris,omitempty" yaml:"redirect_uris"`
	GrantTypes              []string `json:"grant_types,omitempty" yaml:"grant_types"`
	ResponseTypes           []string `json:"response_types,omitempty" yaml:"response_types"`
	Scopes                  []string `json:"scopes,omitempty" yaml:"scopes"`
	Audience                []string `json:"audience,omitempty" yaml:"audience"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method,omitempty" yaml:"token_endpoint_auth_method"`
	// TokenEndpointAuthSigningAlg pins the JWS algorithm of client
	// assertions (private_key_jwt, client_secret_jwt); empty accepts any
	// algorithm the provider supports for the method.
	TokenEndpointAuthSigningAlg string `json:"token_endpoint_auth_signing_alg,omitempty" yaml:"token_endpoint_auth_signing_alg"`
	Public                      bool   `json:"public,omitempty" yaml:"public"`
	JWKSURI                     string `json:"jwks_uri,omitempty" yaml:"jwks_uri"`
	// AllowedOrigins are the browser origins granted CORS; empty means the
	// origins of the redirect URIs.
	AllowedOrigins []string `json:"allowed_origins,omitempty" yaml:"allowed_origins"`
	// RequirePAR refuses authorization requests that were not pushed first
	// (RFC 9126).
	RequirePAR bool `json:"require_pushed_authorization_requests,omitempty" yaml:"require_pushed_authorization_requests"`
	// AccessTokenFormat is "opaque" (the default) or "jwt" (RFC 9068).
	AccessTokenFormat string `json:"access_token_format,omitempty" yaml:"access_token_format"`
	// Introspect is "any" for a client that may introspect every token (a
	// resource server the operator trusts); empty means only the tokens
	// issued to the client or naming it in their audience. Set by the
	// operator (config, CLI), never through dynamic registration.
	Introspect string `json:"introspect,omitempty" yaml:"introspect"`
	// SkipConsent spares the people who use a first-party application
	// the consent page: they are never asked, unless the request says
	// prompt=consent. Set by the operator (config, CLI), never through
	// dynamic registration; a client that came through /register never
	// skips consent, whatever its record says.
	SkipConsent bool `json:"skip_consent,omitempty" yaml:"skip_consent"`
	// RequireMFA makes everyone who signs in to this client prove a
	// second factor (enrolling one first if they have none). Set by the
	// operator (config, CLI), never through dynamic registration; a
	// client that came through /register never requires it, whatever
	// its record says.
	RequireMFA bool `json:"require_mfa,omitempty" yaml:"require_mfa"`
	// PostLogoutRedirectURIs are where RP-initiated logout may return to.
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty" yaml:"post_logout_redirect_uris"`
	// LogoURI, ClientURI, PolicyURI and TosURI are shown to people on the
	// login and consent pages (RFC 7591 §2).
	LogoURI   string   `json:"logo_uri,omitempty" yaml:"logo_uri"`
	ClientURI string   `json:"client_uri,omitempty" yaml:"client_uri"`
	PolicyURI string   `json:"policy_uri,omitempty" yaml:"policy_uri"`
	TosURI    string   `json:"tos_uri,omitempty" yaml:"tos_uri"`
	Contacts  []string `json:"contacts,omitempty" yaml:"contacts"`
	// IDTokenSignedResponseAlg and UserinfoSignedResponseAlg are the JWS
	// algorithms of the client's ID tokens and signed userinfo responses
	// (OIDC Registration §2); empty means RS256 ID tokens and plain JSON
	// userinfo.
	IDTokenSignedResponseAlg  string `json:"id_token_signed_response_alg,omitempty" yaml:"id_token_signed_response_alg"`
	UserinfoSignedResponseAlg string `json:"userinfo_signed_response_alg,omitempty" yaml:"userinfo_signed_response_alg"`
	// RequestObjectSigningAlg pins the algorithm of the client's request
	// objects; RequestURIs are the request_uri values it may send.
	RequestObjectSigningAlg string   `json:"request_object_signing_alg,omitempty" yaml:"request_object_signing_alg"`
	RequestURIs             []string `json:"request_uris,omitempty" yaml:"request_uris"`
	// Back- and front-channel logout (OpenID Connect Back-Channel Logout
	// 1.0, Front-Channel Logout 1.0).
	BackchannelLogoutURI              string `json:"backchannel_logout_uri,omitempty" yaml:"backchannel_logout_uri"`
	BackchannelLogoutSessionRequired  bool   `json:"backchannel_logout_session_required,omitempty" yaml:"backchannel_logout_session_required"`
	FrontchannelLogoutURI             string `json:"frontchannel_logout_uri,omitempty" yaml:"frontchannel_logout_uri"`
	FrontchannelLogoutSessionRequired bool   `json:"frontchannel_logout_session_required,omitempty" yaml:"frontchannel_logout_session_required"`
	// RateLimit bounds the client's requests to the token endpoint, like
	// "100/m" (clientspec.ParseRateLimit); empty is no limit. Set by the
	// operator (config, CLI), never through dynamic registration.
	RateLimit string `json:"rate_limit,omitempty" yaml:"rate_limit"`
}

// OpenlyRegistered says whether anyone could have created the client: it
// came through /register without the initial access token (or before that
// was recorded). Such a client never skips consent, is shown as not
// verified by the organisation, and is sent back after logout only with a
// valid id_token_hint.
func (c Client) OpenlyRegistered() bool {
	return c.Source == "registration" && !c.RegisteredWithToken
}

// TokenRequest is one stored grant artefact of any kind: an authorization
// code, an access or refresh token, an OIDC or PKCE session, a pushed
// authorization request. Signature is the lookup key within its kind;
// RequestID ties together everything one grant produced (its "family").
type TokenRequest struct {
	Kind            TokenKind           `json:"kind"`
	Signature       string              `json:"signature"`
	RequestID       string              `json:"request_id"`
	ClientID        string              `json:"client_id"`
	Subject         string              `json:"subject,omitempty"`
	RequestedAt     time.Time           `json:"requested_at"`
	Scopes          []string            `json:"scopes,omitempty"`
	GrantedScopes   []string            `json:"granted_scopes,omitempty"`
	Audience        []string            `json:"audience,omitempty"`
	GrantedAudience []string            `json:"granted_audience,omitempty"`
	Form            map[string][]string `json:"form,omitempty"`
	// Session is the serialised protocol session (claims, expiries); opaque
	// to storage.
	Session []byte `json:"session,omitempty"`
	// Active is false once a code was redeemed or a refresh token rotated;
	// the record stays so that a replay can be detected.
	Active bool `json:"active"`
	// AccessSignature links a refresh token to the access token issued with it.
	AccessSignature string    `json:"access_signature,omitempty"`
	ExpiresAt       time.Time `json:"expires_at"`
	// Replay is what a rotated refresh token presented again before
	// ReplayUntil answers (the refresh grace): opaque to storage, sealed
	// by the provider. Empty for every other record. GarbageCollect
	// strips it (both fields) once ReplayUntil has passed and keeps the
	// record.
	Replay      []byte    `json:"replay,omitempty"`
	ReplayUntil time.Time `json:"replay_until,omitzero"`
}

// BrowserSession is a login session behind a browser cookie. ID is a hash
// of the cookie value, never the value itself.
type BrowserSession struct {
	ID     string `json:"id"`
	UserID string `json:"user_id"`
	// SID is the session's public identifier, the `sid` claim of ID and
	// logout tokens (OpenID Connect Front-/Back-Channel Logout). Unlike ID
	// it reveals nothing about the cookie.
	SID string `json:"sid,omitempty"`
	// ClientIDs are the clients that received an ID token through this
	// session: the ones told when it ends.
	ClientIDs []string  `json:"client_ids,omitempty"`
	AuthTime  time.Time `json:"auth_time"`
	// AMR are the RFC 8176 methods the person signed in with ("pwd";
	// "pwd", "otp", "mfa"; ...). Empty in sessions from before second
	// factors existed: they mean "pwd".
	AMR       []string  `json:"amr,omitempty"`
	Remember  bool      `json:"remember,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Consent is a remembered consent decision of one user for one client.
type Consent struct {
	UserID    string    `json:"user_id"`
	ClientID  string    `json:"client_id"`
	Scopes    []string  `json:"scopes"`
	GrantedAt time.Time `json:"granted_at"`
	// ExpiresAt is zero for a consent that does not expire.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// JTI records a JWT ID seen in an assertion, so a replay is refused until
// the assertion would have expired anyway.
type JTI struct {
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// TrustedIssuer lets a third party exchange its signed JWT assertions for
// access tokens (RFC 7523 §2.1). Either Subject names the one subject its
// assertions may carry, or AnySubject allows every subject.
type TrustedIssuer struct {
	ID         string `json:"id"`
	Issuer     string `json:"issuer"`
	Subject    string `json:"subject,omitempty"`
	AnySubject bool   `json:"any_subject,omitempty"`
	// JWKS is a JSON Web Key Set document; JWKSURI is fetched instead when
	// JWKS is empty.
	JWKS    string   `json:"jwks,omitempty"`
	JWKSURI string   `json:"jwks_uri,omitempty"`
	Scopes  []string `json:"scopes,omitempty"`
	// MaxLifetime bounds exp - iat of an accepted assertion.
	MaxLifetime time.Duration `json:"max_lifetime,omitempty"`
	// Source is "config" for issuers declared in the config file.
	Source    string    `json:"source,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Store is everything the provider keeps. Every method is safe for concurrent
// use. Records are returned by value: mutating one never changes the store.
type Store interface {
	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, id string) (User, error)
	GetUserByUsername(ctx context.Context, username string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	// UpdateUser applies fn to the current record atomically; an error from
	// fn aborts the update and is returned as is. Changing the username
	// to one that is taken fails with ErrAlreadyExists.
	UpdateUser(ctx context.Context, id string, fn func(User) (User, error)) error
	DeleteUser(ctx context.Context, id string) error

	CreateClient(ctx context.Context, c Client) error
	GetClient(ctx context.Context, id string) (Client, error)
	ListClients(ctx context.Context) ([]Client, error)
	UpdateClient(ctx context.Context, id string, fn func(Client) (Client, error)) error
	DeleteClient(ctx context.Context, id string) error

	// CreateTrustedIssuer fails with ErrAlreadyExists when the ID is taken.
	CreateTrustedIssuer(ctx context.Context, ti TrustedIssuer) error
	GetTrustedIssuer(ctx context.Context, id string) (TrustedIssuer, error)
	ListTrustedIssuers(ctx context.Context) ([]TrustedIssuer, error)
	DeleteTrustedIssuer(ctx context.Context, id string) error

	// CreateToken stores r under (r.Kind, r.Signature); ErrAlreadyExists if taken.
	CreateToken(ctx context.Context, r TokenRequest) error
	GetToken(ctx context.Context, kind TokenKind, signature string) (TokenRequest, error)
	DeleteToken(ctx context.Context, kind TokenKind, signature string) error
	// DeactivateToken marks an active token inactive in one atomic step and
	// returns ErrInactive if it already was, so exactly one of two racing
	// callers wins.
	DeactivateToken(ctx context.Context, kind TokenKind, signature string) error
	// SetTokenReplay stores replay and until on an inactive token (see
	// TokenRequest.Replay), replacing what it had; ErrNotFound if there is
	// no such token, ErrAlreadyExists if it is still active. An empty
	// replay clears both fields.
	SetTokenReplay(ctx context.Context, kind TokenKind, signature string, replay []byte, until time.Time) error
	// RevokeByRequestID deletes every token of kind that belongs to the
	// request family reqID. Deleting nothing is not an error.
	RevokeByRequestID(ctx context.Context, kind TokenKind, reqID string) error
	// UserTokens lists and revokes tokens by the user who granted them.
	UserTokens
	// Walker reads every record, for migrate-storage.
	Walker
	// FactorStore keeps second factors (TOTP, passkeys, recovery codes).
	FactorStore

	CreateBrowserSession(ctx context.Context, s BrowserSession) error
	GetBrowserSession(ctx context.Context, id string) (BrowserSession, error)
	// UpdateBrowserSession applies fn to the current record atomically; an
	// error from fn aborts the update and is returned as is.
	UpdateBrowserSession(ctx context.Context, id string, fn func(BrowserSession) (BrowserSession, error)) error
	DeleteBrowserSession(ctx context.Context, id string) error
	// ListUserSessions returns every browser session of userID, expired
	// or not, in no particular order: a password change ends them, and
	// a back-channel logout finds one by its sid.
	ListUserSessions(ctx context.Context, userID string) ([]BrowserSession, error)

	// SaveConsent creates or replaces the consent of (c.UserID, c.ClientID).
	SaveConsent(ctx context.Context, c Consent) error
	GetConsent(ctx context.Context, userID, clientID string) (Consent, error)
	ListConsents(ctx context.Context, userID string) ([]Consent, error)
	DeleteConsent(ctx context.Context, userID, clientID string) error

	// CreateJTI records j; ErrAlreadyExists if a record with the same ID has
	// not expired at now (an expired one is replaced). now is the
	// caller's clock, never the backend's: replicas and the database may
	// disagree on the time, the protocol code must not.
	CreateJTI(ctx context.Context, j JTI, now time.Time) error
	GetJTI(ctx context.Context, id string) (JTI, error)

	// GarbageCollect removes token requests, browser sessions, consents and
	// JTIs whose ExpiresAt (when set) is before now, and reports how many;
	// it also strips the Replay of tokens whose ReplayUntil is before now
	// (not counted: the record stays).
	// It removes them oldest first in small transactions, each committed
	// on its own, so a large backlog never holds up other writers for
	// more than one small transaction. Inactive records that have not
	// expired (used codes, rotated refresh tokens: what replay detection
	// reads) are kept. On an error or a cancelled ctx it stops between
	// transactions; what was committed stays removed and is counted.
	GarbageCollect(ctx context.Context, now time.Time) (int, error)

	// BeginTx returns a context that carries a write transaction: every
	// Store call made with it joins the transaction until CommitTx or
	// RollbackTx. What every backend guarantees:
	//   - atomic: CommitTx keeps all of its writes or (on an error) none;
	//   - isolated at least as READ COMMITTED: other contexts never see
	//     its uncommitted writes (they see the state before it, without
	//     waiting for it), and it sees its own;
	//   - the row locks its calls take: a record it wrote, deactivated or
	//     updated (UpdateUser, UpdateClient, UpdateBrowserSession) is
	//     locked until it ends, so a concurrent write of that record, from
	//     this process or another replica, waits for it and then acts on
	//     what it committed (DeactivateToken's exactly-one-winner holds
	//     across transactions);
	//   - a conflict it cannot resolve by waiting (a deadlock, a
	//     serialization failure) fails a call or CommitTx with an error
	//     matching ErrConflict, and nothing of it is kept: the caller
	//     retries the whole transaction or answers "try again".
	// It does not promise more: writes to other records from other
	// contexts are not held up (bbolt happens to serialise all writers,
	// PostgreSQL does not), so an invariant over several records must be
	// kept by locking them (an Update call) or by a unique key.
	// Nesting is an error. A transaction must never span network or
	// template I/O, and a goroutine holding one must not call the Store
	// with another context. A backend may commit it together with other
	// writers' work; CommitTx returns once it is durable. A call that
	// fails inside it with a sentinel (ErrNotFound, ErrAlreadyExists,
	// ErrInactive) leaves it usable; any other failure leaves it good
	// only for RollbackTx.
	BeginTx(ctx context.Context) (context.Context, error)
	CommitTx(ctx context.Context) error
	RollbackTx(ctx context.Context) error

	// CheckWritable is the readiness check: it makes a small real write
	// and returns an error matching ErrUnavailable if that write, or
	// another write shortly before it, could not be made durable. A
	// backend may answer from a result a second old, so a storm of
	// probes costs no more than one write a second. ctx must not carry
	// a transaction.
	CheckWritable(ctx context.Context) error

	Close() error
}

// Walker visits every record of a family, in no particular order, expired
// or not, for moving an installation between backends. fn's error stops
// the walk and is returned. fn must not call the Store.
type Walker interface {
	WalkTokens(ctx context.Context, kind TokenKind, fn func(TokenRequest) error) error
	WalkBrowserSessions(ctx context.Context, fn func(BrowserSession) error) error
	WalkConsents(ctx context.Context, fn func(Consent) error) error
	WalkJTIs(ctx context.Context, fn func(JTI) error) error
}
