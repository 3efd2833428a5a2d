package provider

import (
	"context"
	"errors"
	"maps"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/smallsso/provider/storage"
)

// openIDPasswordHandler issues an ID token with the password grant when
// openid was granted, as the refresh handler does for refreshes: fosite
// has none for this grant, and relying parties that sign people in with a
// password (kubelogin's password mode) need one. The session's claims are
// set in handleToken, as for a sign-in on the login page.
type openIDPasswordHandler struct {
	*openid.IDTokenHandleHelper
	config fosite.IDTokenLifespanProvider
}

var _ fosite.TokenEndpointHandler = (*openIDPasswordHandler)(nil)

func openIDPasswordFactory(config fosite.Configurator, _ any, strategy any) any {
	return &openIDPasswordHandler{
		IDTokenHandleHelper: &openid.IDTokenHandleHelper{IDTokenStrategy: strategy.(openid.OpenIDConnectTokenStrategy)},
		config:              config,
	}
}

// HandleTokenEndpointRequest has nothing to check: fosite's password
// handler authenticates the person.
func (h *openIDPasswordHandler) HandleTokenEndpointRequest(context.Context, fosite.AccessRequester) error {
	return fosite.ErrUnknownRequest
}

// PopulateTokenEndpointResponse runs after the password handler has put
// the access token in the response, for at_hash.
func (h *openIDPasswordHandler) PopulateTokenEndpointResponse(ctx context.Context, req fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, req) || !req.GetGrantedScopes().Has("openid") {
		return fosite.ErrUnknownRequest
	}
	sess, ok := req.GetSession().(openid.Session)
	if !ok || sess.IDTokenClaims().Subject == "" {
		return fosite.ErrServerError.WithDebug("The password grant's session has no ID token subject.")
	}
	sess.IDTokenClaims().AccessTokenHash = h.GetAccessTokenHash(ctx, req, resp)
	// fosite's ID token strategy reads authorization request parameters
	// (prompt, max_age, id_token_hint, acr_values) from the form; they mean
	// nothing to this grant and must not make it fail.
	ar, ok := req.(*fosite.AccessRequest)
	if !ok {
		return fosite.ErrServerError.WithDebug("Unexpected access request type.")
	}
	clone := *ar
	clone.Form = maps.Clone(ar.Form)
	for _, k := range []string{"prompt", "max_age", "id_token_hint", "acr_values"} {
		clone.Form.Del(k)
	}
	lifespan := fosite.GetEffectiveLifespan(req.GetClient(), fosite.GrantTypePassword, fosite.IDToken, h.config.GetIDTokenLifespan(ctx))
	return h.IssueExplicitIDToken(ctx, lifespan, &clone, resp)
}

func (h *openIDPasswordHandler) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool {
	return false
}

func (h *openIDPasswordHandler) CanHandleTokenEndpointRequest(_ context.Context, req fosite.AccessRequester) bool {
	return req.GetGrantTypes().ExactOne("password")
}

// passwordGrantClaims fills a password grant's session like a sign-in on
// the login page: the claims the granted scopes release (in the ID token
// as well as userinfo) and amr pwd.
func (p *Provider) passwordGrantClaims(ctx context.Context, sess *session, granted fosite.Arguments) error {
	u, err := p.store.GetUser(ctx, sess.GetSubject())
	if errors.Is(err, storage.ErrNotFound) {
		return fosite.ErrInvalidGrant.WithHint("The user no longer exists.")
	} else if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	for k, v := range userClaims(u, granted) {
		if k != "sub" {
			sess.Claims.Extra[k] = v
		}
	}
	sess.Claims.AuthenticationMethodsReferences = []string{amrPassword}
	sess.Claims.RequestedAt = sess.Claims.AuthTime
	return nil
}
