package provider

// The audit events the handlers emit, one line each: p.emit(r, audit.X(...)).
// The same events feed the metrics (cmd/provider fans Deps.Events out to
// the audit log and provider/metrics).

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/ory/fosite"

	"github.com/smallsso/provider/provider/audit"
)

// errUnknownUser is errBadCredentials for a username nobody has (or one
// without a password); only the audit log tells the two apart.
var errUnknownUser = errors.Join(errBadCredentials)

// Emit records e as the event of r: it is stamped with the time, r's
// request ID and the client's address (after trusted_proxies). It is how
// code outside this file's handlers (a rate limiter, say) reports an
// event: p.Emit(r, audit.RateLimitedClient(id, "token")).
func (p *Provider) Emit(r *http.Request, e audit.Event) { p.emit(r, e) }

func (p *Provider) emit(r *http.Request, e audit.Event) {
	p.emitFrom(r.Context(), p.clientIP(r), e)
}

// emitFrom is emit where only the context and the address are at hand
// (the password grant's check, called by fosite).
func (p *Provider) emitFrom(ctx context.Context, addr string, e audit.Event) {
	e.Time, e.RequestID, e.ClientAddr = p.now().UTC(), requestID(ctx), addr
	p.events.Record(ctx, e)
}

// signInReason is why authenticate refused, as the audit log says it.
func signInReason(err error) string {
	var throttled *throttledError
	switch {
	case errors.As(err, &throttled):
		return audit.ReasonThrottled
	case errors.Is(err, errUnknownUser):
		return audit.ReasonUnknownUser
	case errors.Is(err, errBadCredentials):
		return audit.ReasonBadPassword
	}
	return audit.ReasonError
}

// signInEvent is the outcome of authenticate for username (as typed).
func signInEvent(clientID, username, sub string, err error) audit.Event {
	if err != nil {
		return audit.SignInFailed(clientID, username, signInReason(err))
	}
	return audit.SignInSucceeded(clientID, username, sub)
}

// passwordChangeEvent is the outcome of the account page's check of the
// current password, or of the change when err is nil.
func passwordChangeEvent(username, sub string, err error) audit.Event {
	e := audit.PasswordChange(sub, "")
	if err != nil {
		e = audit.PasswordChange(sub, signInReason(err))
	}
	e.Username = username
	return e
}

// tokenRefusal is the event of a failed token request: a refresh token
// reused (its family revoked), a code replayed (its tokens revoked), or
// another refusal with its OAuth error code.
func tokenRefusal(r *http.Request, ar fosite.AccessRequester, err error) audit.Event {
	clientID := requestClientID(r)
	if ar != nil && ar.GetClient() != nil && ar.GetClient().GetID() != "" {
		clientID = ar.GetClient().GetID()
	}
	grant := r.PostForm.Get("grant_type")
	rfc := fosite.ErrorToRFC6749Error(err)
	switch {
	case grant == "refresh_token" && errors.Is(err, fosite.ErrInactiveToken):
		return audit.RefreshTokenReused(clientID)
	case grant == "authorization_code" && strings.HasPrefix(rfc.HintField, "The authorization code has already been used."):
		return audit.CodeReplayed(clientID)
	}
	if !supportedGrantTypes.Has(grant) {
		grant = "" // whatever was sent, it names nothing
	}
	return audit.TokenRequestRefused(clientID, grant, rfc.ErrorField)
}

// tokensIssued is the event of a successful token request.
func tokensIssued(ar fosite.AccessRequester) audit.Event {
	grant := ""
	if gt := ar.GetGrantTypes(); len(gt) > 0 {
		grant = gt[0]
	}
	return audit.TokensIssued(ar.GetClient().GetID(), ar.GetSession().GetSubject(), grant, ar.GetGrantedScopes())
}

// implicitIssued is the event of an authorization response that carries
// tokens (implicit and hybrid response types); a code alone is not one.
func implicitIssued(ar fosite.AuthorizeRequester, sub string) (audit.Event, bool) {
	rt := ar.GetResponseTypes()
	if !rt.Has("token") && !rt.Has("id_token") {
		return audit.Event{}, false
	}
	return audit.TokensIssued(ar.GetClient().GetID(), sub, "implicit", ar.GetGrantedScopes()), true
}

// requestClientID is the client a request names, before (or without)
// authenticating it: the HTTP Basic user or the client_id parameter.
// Never the secret.
func requestClientID(r *http.Request) string {
	if id, _, ok := r.BasicAuth(); ok {
		if u, err := url.QueryUnescape(id); err == nil {
			return u
		}
		return id
	}
	return r.PostForm.Get("client_id")
}

type passwordGrantClientKey struct{}

// passwordGrantClient is the client of the token request whose password
// grant is being checked (fosite authenticated it before the check).
func passwordGrantClient(ctx context.Context) string {
	id, _ := ctx.Value(passwordGrantClientKey{}).(string)
	return id
}

// clientID is the relying party a logout request came from, if known.
func (lr logoutRequest) clientID() string {
	if lr.client == nil {
		return ""
	}
	return lr.client.ID
}

// hintSubject is the sub of a verified id_token_hint.
func hintSubject(hint map[string]any) string {
	sub, _ := hint["sub"].(string)
	return sub
}
