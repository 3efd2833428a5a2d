// Package provider is the HTTP surface of the OpenID provider: the fosite
// composition, the storage adapter, the login and consent interaction,
// discovery, JWKS and userinfo.
package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/smallsso/provider/provider/audit"
	"github.com/smallsso/provider/provider/metrics"
	"github.com/smallsso/provider/provider/mfa"
	"github.com/smallsso/provider/provider/passkey"
	"github.com/smallsso/provider/provider/secret"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/smallsso/provider/keys"
	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/membudgets"
	"github.com/smallsso/provider/templates"
)

// Config is the provider's behaviour, already validated by the caller.
type Config struct {
	// Issuer is the exact issuer URL; every endpoint lives below it.
	Issuer               string
	AccessTokenLifespan  time.Duration
	RefreshTokenLifespan time.Duration
	IDTokenLifespan      time.Duration
	AuthCodeLifespan     time.Duration
	// LoginSessionLifespan is how long a browser stays signed in.
	LoginSessionLifespan time.Duration
	// ConsentLifespan is how long a remembered consent lasts; 0 is forever.
	ConsentLifespan time.Duration
	// OrgName is shown on every page. It, LogoURL and PrimaryColor are
	// where the provider starts; SetUI changes them at run time.
	OrgName string
	// LogoURL is the organisation's logo on every page: an https URL or
	// a path below the issuer (see LogoURLProblem).
	LogoURL string
	// PrimaryColor is the theme's brand colour, a CSS hex colour; empty
	// is the default blue.
	PrimaryColor string
	// CORSOriginsTTL is how long the clients' CORS origins are cached
	// before a client changed at run time is seen; 0 means 5s.
	CORSOriginsTTL time.Duration
	// Registration is dynamic client registration (RFC 7591, RFC 7592).
	Registration RegistrationConfig
	// Outbound is the policy for requests to URLs clients chose.
	Outbound OutboundConfig
	// Limits bound request bodies, the request-target and echoed
	// parameters; zero fields take the defaults.
	Limits Limits
	// TrustedProxies are the reverse proxies whose X-Forwarded-For or
	// Forwarded header is believed for the client's address (throttles,
	// logs); none by default (see Provider.clientIP). SetTrustedProxies
	// changes them at run time.
	TrustedProxies []netip.Prefix
	// RefreshReuseGrace is how long after a rotation the retired refresh
	// token, presented again by its client, is answered with the same new
	// tokens instead of revoking the family (refreshgrace.go); 0, the
	// default, forgives nothing. At most MaxRefreshReuseGrace.
	RefreshReuseGrace time.Duration
	// MFA is the second-factor policy (mfa.go).
	MFA MFAConfig
}

// MFAConfig is the multi-factor policy: who must have a second factor,
// and the WebAuthn relying party passkeys are bound to.
type MFAConfig struct {
	// RequiredForGroups: a person in one of these groups must enrol a
	// second factor at their next sign-in before going on.
	RequiredForGroups []string
	// WebAuthnRPID is the WebAuthn relying party ID; empty means the
	// issuer's host.
	WebAuthnRPID string
}

// Defaults fills zero durations with the provider's defaults.
func (c Config) Defaults() Config {
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	set(&c.AccessTokenLifespan, time.Hour)
	set(&c.RefreshTokenLifespan, 30*24*time.Hour)
	set(&c.IDTokenLifespan, time.Hour)
	set(&c.AuthCodeLifespan, 5*time.Minute)
	set(&c.LoginSessionLifespan, 24*time.Hour)
	set(&c.CORSOriginsTTL, defaultCORSOriginsTTL)
	c.Limits = c.Limits.Defaults()
	return c
}

// KeySource is what the provider needs of the signing keys.
type KeySource interface {
	Active(alg string) (keys.Key, error)
	JWKS() jose.JSONWebKeySet
}

// Deps are the provider's collaborators, built by the caller.
type Deps struct {
	Store     storage.Store
	Keys      KeySource
	Templates *templates.Set
	Logger    *slog.Logger
	// Secret (at least 32 random bytes, stable across restarts) keys the
	// HMAC of opaque tokens and of interaction state.
	Secret []byte
	// Now is the clock; nil means time.Now. It stamps sessions, codes and
	// the iat of signed tokens; fosite computes their exp from the real
	// clock, so anything but time.Now is for tests.
	Now func() time.Time
	// OutboundResolver and OutboundDial are what requests to client-chosen
	// URLs resolve names and connect with; nil means net.DefaultResolver
	// and a net.Dialer. The dialer is only given checked IP literals.
	OutboundResolver Resolver
	OutboundDial     DialFunc
	// Events receives the audit events (sign-ins, consents, tokens...);
	// nil discards them. Metrics, when set, counts requests by route.
	Events  audit.Sink
	Metrics *metrics.Metrics
	// Budgets keep the sign-in throttle, registration and rate-limit
	// buckets (budgets.go); nil means in memory, this process's own.
	Budgets storage.Budgets
}

// Provider serves the OpenID Connect and OAuth 2.0 endpoints.
type Provider struct {
	cfg    Config
	store  storage.Store
	keys   KeySource
	log    *slog.Logger
	now    func() time.Time
	oauth2 fosite.OAuth2Provider
	// fositeStore is the storage fosite's handlers use (oauth2).
	fositeStore *fositeStore
	// refreshSignature is the storage key of a refresh token (revocation
	// of a retired one, token.go).
	refreshSignature func(ctx context.Context, token string) string
	sealKey          []byte
	// mfaKeys seal second factors' secrets and key recovery-code hashes.
	mfaKeys  *mfa.Keys
	secure   bool // cookies get Secure and the __Host- prefix
	basePath string
	// remoteKeys caches the key sets clients and trusted issuers publish.
	remoteKeys *remoteKeySets
	// out makes every request to a client-chosen URL (see outbound.go).
	out      *outbound
	throttle *throttle
	// corsOrigins are the browser origins the CORS endpoints answer.
	corsOrigins *originSet
	// ui is the pages' settings and proxies the trusted proxies; a
	// reload swaps them (reload.go).
	ui      atomic.Pointer[uiSettings]
	proxies atomic.Pointer[[]netip.Prefix]
	// oidcValidator checks prompt, max_age and id_token_hint.
	oidcValidator *openid.OpenIDConnectRequestValidator
	// sealer and registrations serve dynamic client registration.
	sealer        *secret.Sealer
	registrations *registrationLimiter
	// tokenLimits are the clients' rate limits at the token endpoint
	// (ratelimit.go).
	tokenLimits *clientLimits
	// discoveryDoc and jwksDoc are the documents as last rendered
	// (rendered.go).
	discoveryDoc, jwksDoc renderCache
	// events and metrics: see Deps (events.go).
	events  audit.Sink
	metrics *metrics.Metrics
	// ready is what /readyz answered last (readyz.go).
	ready readyState
	// webauthn is the passkeys' relying party (nil: passkeys are off),
	// passkeyStates seals their ceremonies' state (passkeys.go).
	webauthn      *webauthn.WebAuthn
	passkeyStates *passkey.States
}

// New wires a provider. It does no I/O.
func New(cfg Config, d Deps) (*Provider, error) {
	cfg = cfg.Defaults()
	u, err := url.Parse(cfg.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("provider: issuer %q is not an http(s) URL", cfg.Issuer)
	}
	if d.Store == nil || d.Keys == nil || d.Templates == nil {
		return nil, errors.New("provider: store, keys and templates are required")
	}
	if len(d.Secret) < 32 {
		return nil, errors.New("provider: secret must be at least 32 bytes")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	// A failure caused by a client going away is not the server's: it is
	// logged at debug (see clientGone).
	d.Logger = slog.New(goneLogHandler{d.Logger.Handler()})
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Budgets == nil {
		d.Budgets = membudgets.New()
	}
	ui, err := newUISettings(UI{OrgName: cfg.OrgName, LogoURL: cfg.LogoURL, PrimaryColor: cfg.PrimaryColor, Templates: d.Templates}, 0)
	if err != nil {
		return nil, err
	}
	out := newOutbound(cfg.Outbound, u, d.OutboundResolver, d.OutboundDial)
	p := &Provider{
		cfg:        cfg,
		store:      d.Store,
		keys:       d.Keys,
		log:        d.Logger,
		now:        d.Now,
		sealKey:    secret.DeriveKey(d.Secret, "interaction"),
		secure:     u.Scheme == "https",
		basePath:   strings.TrimSuffix(u.Path, "/"),
		remoteKeys: newRemoteKeySets(d.Now, out),
		out:        out,
		throttle:   newSharedThrottle(d.Budgets, d.Now),

		sealer:        secret.NewSealer(d.Secret),
		mfaKeys:       mfa.NewKeys(func() ([]byte, error) { return d.Secret, nil }),
		registrations: newSharedRegistrationLimiter(d.Budgets),
		tokenLimits:   newSharedClientLimits(d.Budgets, d.Now, d.Logger),
		events:        audit.OrDiscard(d.Events),
		metrics:       d.Metrics,
	}
	p.ui.Store(ui)
	if p.webauthn, p.passkeyStates, err = newPasskeys(cfg, d); err != nil {
		return nil, err
	}
	p.corsOrigins = &originSet{store: d.Store, ttl: cfg.CORSOriginsTTL, now: d.Now, log: d.Logger}
	cc, err := newCCTokens(d.Secret)
	if err != nil {
		return nil, err
	}
	replays, err := newRefreshReplays(d.Secret, cfg.RefreshReuseGrace)
	if err != nil {
		return nil, err
	}
	p.fositeStore = &fositeStore{
		store: d.Store, now: d.Now, authenticate: p.authenticatePasswordGrant, remoteKeys: p.remoteKeys,
		accessLifespan: cfg.AccessTokenLifespan, cc: cc, replays: replays,
	}
	p.oauth2 = p.newOAuth2(p.fositeStore, d.Secret)
	return p, nil
}

// url returns the absolute URL of an endpoint below the issuer.
func (p *Provider) url(path string) string { return p.cfg.Issuer + path }

// path returns the request path of an endpoint below the issuer.
func (p *Provider) path(path string) string { return p.basePath + path }
