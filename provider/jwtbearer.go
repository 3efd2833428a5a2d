package provider

// The JWT bearer authorization grant, RFC 7523 §2.1 and §3. fosite's
// rfc7523 handler verifies the signature, aud, exp, nbf and jti; this
// wrapper adds what fosite has no setting for: the per-issuer lifetime
// limit, iat in the future, the algorithm allow-list, the client's own
// scopes and audiences, and invalid_grant (not jti_known or server_error)
// for a replay.
//
// The client must authenticate, be confidential and be registered for the
// grant: an assertion says who the subject is, not which client may act on
// it. RFC 7523 §3.1 makes client authentication optional; here fosite's
// CanSkipClientAuth stays false, so a stolen assertion alone is not enough.

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/rfc7523"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/storage"
)

// assertionClockSkew is how far in the future an assertion's iat may be:
// the issuer's clock may run slightly ahead of ours.
const assertionClockSkew = time.Minute

type jwtBearerGrant struct {
	*rfc7523.Handler
	store  *fositeStore
	config fosite.Configurator
}

var _ fosite.TokenEndpointHandler = (*jwtBearerGrant)(nil)

// jwtBearerFactory is compose.RFC7523AssertionGrantFactory wrapped in
// jwtBearerGrant.
func jwtBearerFactory(config fosite.Configurator, store any, strategy any) any {
	return &jwtBearerGrant{
		Handler: compose.RFC7523AssertionGrantFactory(config, store, strategy).(*rfc7523.Handler),
		store:   store.(*fositeStore),
		config:  config,
	}
}

func (g *jwtBearerGrant) HandleTokenEndpointRequest(ctx context.Context, req fosite.AccessRequester) error {
	if err := g.CheckRequest(ctx, req); err != nil {
		return err
	}
	if req.GetClient().IsPublic() {
		return fosite.ErrUnauthorizedClient.WithHint("A public client cannot use the jwt-bearer grant.")
	}
	raw := req.GetRequestForm().Get("assertion")
	if raw == "" {
		return g.Handler.HandleTokenEndpointRequest(ctx, req)
	}
	tok, err := jwt.ParseSigned(raw, clientspec.KeyAssertionAlgs)
	if err != nil {
		return fosite.ErrInvalidGrant.WithHintf("The assertion must be a JWT in JWS compact form signed with one of %s.", strings.Join(clientspec.AlgNames(clientspec.KeyAssertionAlgs), ", ")).WithWrap(err)
	}
	var claims jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil {
		return fosite.ErrInvalidGrant.WithHint("The assertion's claims cannot be read.").WithWrap(err)
	}
	if claims.Issuer == "" || claims.Subject == "" {
		return fosite.ErrInvalidGrant.WithHint("The assertion must contain the iss and sub claims.")
	}
	ti, err := g.store.trustFor(ctx, claims.Issuer, claims.Subject)
	if errors.Is(err, storage.ErrNotFound) {
		return fosite.ErrInvalidGrant.WithHint("The assertion's issuer is not trusted for its subject.")
	}
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	// Checked before the signature: refusing an unverified assertion is
	// always safe, and spares the key lookup.
	if err := checkAssertionTimes(claims, ti.MaxLifetime, g.store.now()); err != nil {
		return err
	}
	client := req.GetClient()
	for _, s := range req.GetRequestedScopes() {
		if !g.config.GetScopeStrategy(ctx)(client.GetScopes(), s) {
			return fosite.ErrInvalidScope.WithHint("The OAuth 2.0 Client is not allowed to request one of the scopes.")
		}
	}
	if err := g.config.GetAudienceStrategy(ctx)(client.GetAudience(), req.GetRequestedAudience()); err != nil {
		return err
	}

	ctx = withAssertion(ctx, assertionCtx{trust: ti, alg: tok.Headers[0].Algorithm})
	err = g.Handler.HandleTokenEndpointRequest(ctx, req)
	if errors.Is(err, fosite.ErrJTIKnown) {
		// RFC 7523 §3.1: every invalid assertion is invalid_grant.
		return fosite.ErrInvalidGrant.WithHint("The assertion was already used (its jti is known).").WithWrap(fosite.ErrJTIKnown)
	}
	if err != nil {
		return err
	}
	// fosite grants the assertion's audience, which names this server;
	// the token's audience is what the client asked for and may have.
	if ar, ok := req.(*fosite.AccessRequest); ok {
		ar.GrantedAudience = nil
	}
	for _, a := range req.GetRequestedAudience() {
		req.GrantAudience(a)
	}
	return nil
}

// checkAssertionTimes enforces exp, iat and the issuer's max lifetime. exp
// - iat may not exceed maxLife; without iat, exp may not be further than
// maxLife from now. fosite checks exp and nbf again, with the same result.
func checkAssertionTimes(c jwt.Claims, maxLife time.Duration, now time.Time) error {
	if maxLife <= 0 {
		maxLife = clientspec.DefaultTrustLifetime
	}
	if c.Expiry == nil {
		return fosite.ErrInvalidGrant.WithHint("The assertion must contain an exp claim.")
	}
	exp := c.Expiry.Time()
	if !exp.After(now) {
		return fosite.ErrInvalidGrant.WithHint("The assertion has expired.")
	}
	if c.NotBefore != nil && c.NotBefore.Time().After(now) {
		return fosite.ErrInvalidGrant.WithHint("The assertion is not valid yet (nbf).")
	}
	start := now
	if c.IssuedAt != nil {
		start = c.IssuedAt.Time()
		if start.After(now.Add(assertionClockSkew)) {
			return fosite.ErrInvalidGrant.WithHint("The assertion was issued in the future (iat).")
		}
	}
	if exp.Sub(start) > maxLife {
		return fosite.ErrInvalidGrant.WithHintf("The assertion's lifetime exceeds the %s this issuer is allowed.", maxLife)
	}
	return nil
}
