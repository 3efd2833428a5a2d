package provider

import (
	"context"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/openid"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/secret"
	"github.com/smallsso/provider/templates"
)

// fositeHandler is one handler fosite composes and the grant type it
// serves, if any, under the name clients register and discovery
// advertises: tokenGrant is a grant_type of the token endpoint,
// authorizeGrant one served at the authorization endpoint alone.
type fositeHandler struct {
	factory        compose.Factory
	tokenGrant     string
	authorizeGrant string
}

// The grants and endpoints this provider supports, in one list. A client
// can only use what is composed here, and only what its registration
// lists (fosite checks grant_types per client). handlerFactories,
// supportedGrantTypes and discovery's grant_types_supported are derived
// from it.
var fositeHandlers = []fositeHandler{
	{factory: compose.OAuth2AuthorizeExplicitFactory, tokenGrant: "authorization_code"},
	// fosite's refresh handler, with the refresh grace (refreshgrace.go).
	{factory: refreshGraceFactory, tokenGrant: "refresh_token"},
	{factory: compose.OAuth2ClientCredentialsGrantFactory, tokenGrant: "client_credentials"},
	// Legacy (RFC 9700 §2.4), only for clients that list "password".
	{factory: compose.OAuth2ResourceOwnerPasswordCredentialsFactory, tokenGrant: "password"},
	// An ID token with the password grant, after the access token it hashes.
	{factory: openIDPasswordFactory},
	{factory: compose.OpenIDConnectExplicitFactory},
	// Implicit (id_token, id_token token) and hybrid (code id_token, code
	// token, code id_token token), for clients that list them; before
	// PKCE, which binds the challenge to the code these handlers issue.
	// OAuth2AuthorizeImplicitFactory is left out: it serves only the bare
	// `token` response type, which no client may register.
	{factory: compose.OpenIDConnectImplicitFactory, authorizeGrant: "implicit"},
	{factory: compose.OpenIDConnectHybridFactory},
	{factory: compose.OpenIDConnectRefreshFactory},
	{factory: compose.OAuth2PKCEFactory},
	{factory: compose.OAuth2TokenIntrospectionFactory},
	{factory: compose.OAuth2TokenRevocationFactory},
	{factory: compose.PushedAuthorizeHandlerFactory},
	{factory: jwtBearerFactory, tokenGrant: clientspec.GrantJWTBearer},
}

// handlerFactories are fositeHandlers' factories, in order.
var handlerFactories = func() []compose.Factory {
	out := make([]compose.Factory, 0, len(fositeHandlers))
	for _, h := range fositeHandlers {
		out = append(out, h.factory)
	}
	return out
}()

// tokenGrantTypes are the grant types fositeHandlers serve at the token
// endpoint, in order.
func tokenGrantTypes() fosite.Arguments {
	var out fosite.Arguments
	for _, h := range fositeHandlers {
		if h.tokenGrant != "" {
			out = append(out, h.tokenGrant)
		}
	}
	return out
}

// grantTypesSupported is discovery's grant_types_supported: the token
// endpoint's grant types, then those of the authorization endpoint alone.
func grantTypesSupported() []string {
	out := []string(tokenGrantTypes())
	for _, h := range fositeHandlers {
		if h.authorizeGrant != "" {
			out = append(out, h.authorizeGrant)
		}
	}
	return out
}

// parURIPrefix starts every request_uri the PAR endpoint hands out (RFC
// 9126 §2.2).
const parURIPrefix = "urn:ietf:params:oauth:request_uri:"

// signingAlg is the default algorithm (ID tokens of clients that registered
// none, JWT access tokens): RS256 is the OIDC baseline every relying party
// supports.
const signingAlg = "RS256"

func (p *Provider) newOAuth2(store *fositeStore, providerSecret []byte) fosite.OAuth2Provider {
	cfg, keys := p.cfg, p.keys
	fc := &fosite.Config{
		IDTokenIssuer:                  cfg.Issuer,
		AccessTokenIssuer:              cfg.Issuer,
		TokenURL:                       cfg.Issuer + "/token",
		AccessTokenLifespan:            cfg.AccessTokenLifespan,
		RefreshTokenLifespan:           cfg.RefreshTokenLifespan,
		IDTokenLifespan:                cfg.IDTokenLifespan,
		AuthorizeCodeLifespan:          cfg.AuthCodeLifespan,
		GlobalSecret:                   secret.DeriveKey(providerSecret, "fosite-hmac"),
		SendDebugMessagesToClients:     false,
		EnforcePKCEForPublicClients:    true,
		EnablePKCEPlainChallengeMethod: false,
		ScopeStrategy:                  fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:       audienceMatching,
		ClientSecretsHasher:            secret.NewHasher(),
		// A refresh token goes to every client allowed the refresh_token
		// grant: plain OAuth clients (requests-oauthlib's auto-refresh,
		// Authlib) never ask for offline_access, and OIDC clients that want
		// none simply are not given the grant.
		RefreshTokenScopes: []string{},
		// state and nonce are the client's own defences, opaque to us:
		// any length will do (a missing state is handled in authorize.go).
		MinParameterEntropy:             1,
		PushedAuthorizeRequestURIPrefix: parURIPrefix,
		// RFC 9126 §2.2: short-lived; a person is not involved yet.
		PushedAuthorizeContextLifespan: 90 * time.Second,
		// RFC 7523 §3: iat is optional; jti is required here so every
		// assertion can be refused on replay. The per-issuer lifetime is
		// enforced by jwtBearerGrant; this is only the ceiling.
		GrantTypeJWTBearerIssuedDateOptional: true,
		GrantTypeJWTBearerIDOptional:         false,
		GrantTypeJWTBearerCanSkipClientAuth:  false,
		GrantTypeJWTBearerMaxDuration:        clientspec.MaxTrustLifetime,
		// fosite's own page submits itself with an inline script, which our
		// Content-Security-Policy blocks.
		FormPostHTMLTemplate: templates.FormPost(p.basePath),
		// Every request to a client-chosen URL goes through the outbound
		// guard, fosite's own included (outboundfosite.go).
		JWKSFetcherStrategy: &guardedJWKSFetcher{keys: p.remoteKeys},
		HTTPClient:          p.out.fositeHTTPClient(),
	}
	signer := &jwtSigner{keys: keys, now: p.now}
	hmacStrategy := compose.NewOAuth2HMACStrategy(fc)
	p.refreshSignature = hmacStrategy.RefreshTokenSignature
	strategy := &compose.CommonStrategy{
		CoreStrategy: coreStrategy{
			AccessTokenStrategy: &accessTokenStrategy{
				opaque: hmacStrategy, sealed: store.cc, keys: keys, issuer: cfg.Issuer,
				lifespan: cfg.AccessTokenLifespan, now: p.now,
			},
			RefreshTokenStrategy:  hmacStrategy,
			AuthorizeCodeStrategy: hmacStrategy,
		},
		OpenIDConnectTokenStrategy: &idTokenStrategy{inner: &openid.DefaultStrategy{Signer: signer, Config: fc}, keys: keys},
		Signer:                     signer,
	}
	cfg2 := &fositeConfig{Config: fc, tokenURLs: []string{fc.TokenURL, cfg.Issuer}}
	// The same validator, with the same signer, as fosite's OIDC handler
	// composes: proceed runs it before any page is shown (see authz.go).
	p.oidcValidator = openid.NewOpenIDConnectRequestValidator(strategy, cfg2)
	f := composeWith(cfg2, store, strategy, handlerFactories...).(*fosite.Fosite)
	wrapIDTokenHandlers(fc)
	// The strategy delegates secrets and public clients to fosite's
	// default, which needs the composed provider.
	auth := &clientAuthenticator{
		fosite: f, store: store, sealer: secret.NewSealer(providerSecret), keys: p.remoteKeys,
		audiences: cfg2.GetTokenURLs, now: p.now,
	}
	fc.ClientAuthenticationStrategy = auth.authenticate
	return cappedErrors{Fosite: f}
}

// fositeConfig is fosite's Config with the settings its struct cannot
// express.
type fositeConfig struct {
	*fosite.Config
	tokenURLs []string
}

// GetTokenURLs is the audience a JWT assertion (client authentication,
// RFC 7523 grant) may name: the token endpoint or the issuer, as RFC 7523
// §3 and OIDC Core §9 allow.
func (c *fositeConfig) GetTokenURLs(context.Context) []string { return c.tokenURLs }

// composeWith is compose.Compose for a Configurator other than
// *fosite.Config, so the overrides above reach every handler.
func composeWith(cfg *fositeConfig, store any, strategy any, factories ...compose.Factory) fosite.OAuth2Provider {
	f := &fosite.Fosite{Store: store.(fosite.Storage), Config: cfg}
	for _, factory := range factories {
		h := factory(cfg, store, strategy)
		if ah, ok := h.(fosite.AuthorizeEndpointHandler); ok {
			cfg.AuthorizeEndpointHandlers.Append(ah)
		}
		if th, ok := h.(fosite.TokenEndpointHandler); ok {
			cfg.TokenEndpointHandlers.Append(th)
		}
		if ti, ok := h.(fosite.TokenIntrospector); ok {
			cfg.TokenIntrospectionHandlers.Append(ti)
		}
		if rh, ok := h.(fosite.RevocationHandler); ok {
			cfg.RevocationHandlers.Append(rh)
		}
		if ph, ok := h.(fosite.PushedAuthorizeEndpointHandler); ok {
			cfg.PushedAuthorizeEndpointHandlers.Append(ph)
		}
	}
	return f
}
