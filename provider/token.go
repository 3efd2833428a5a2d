package provider

// The token endpoint, RFC 6749 §3.2: authorization_code (with PKCE, RFC
// 7636), refresh_token (rotating, RFC 9700 §4.14) and client_credentials.
// fosite authenticates the client and runs the grant; this file decides
// what a client-credentials grant may be given.

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/smallsso/provider/provider/audit"
	"github.com/smallsso/provider/storage"
)

func (p *Provider) handleToken(w http.ResponseWriter, r *http.Request) {
	ctx := context.WithValue(r.Context(), clientIPKey{}, p.clientIP(r))
	sess := newSession()
	if r.ParseForm() == nil {
		foldResources(r.PostForm)
	}
	// A client over its rate limit is refused before its credentials
	// cost anything; only authenticated requests count (ratelimit.go).
	if id := claimedClientID(r); id != "" {
		if wait, over := p.tokenLimits.over(id); over {
			p.writeRateLimited(w, r, id, wait)
			return
		}
	}
	ctx = context.WithValue(ctx, passwordGrantClientKey{}, requestClientID(r))
	ctx, grant := withGrantState(ctx)
	defer func() {
		if grant.tx != nil {
			_ = p.store.RollbackTx(grant.tx) // a no-op once ended
		}
	}()
	ar, err := p.oauth2.NewAccessRequest(ctx, r, sess)
	if ar != nil && ar.GetClient() != nil {
		// fosite sets the client only once it authenticated.
		if wait, ok := p.tokenLimits.take(r.Context(), ar.GetClient().GetID(), rateLimitSpec(ar.GetClient())); !ok {
			p.writeRateLimited(w, r, ar.GetClient().GetID(), wait)
			return
		}
	}
	if ar != nil {
		err = targetError(ar.GetClient(), r.PostForm, err)
	}
	if err != nil {
		// A client that could not be looked up because the store is
		// down is not an invalid client, nor a password that could not be
		// checked a wrong one: 503, so the client retries.
		err = storageUnavailable(w, refineTokenError(r, throttleUnavailable(w, err)))
		p.emit(r, tokenRefusal(r, ar, err))
		p.logProtocolError(r, "token", err)
		p.oauth2.WriteAccessError(ctx, w, ar, err)
		return
	}
	if grant.replay != nil {
		p.answerReplay(ctx, w, r, ar, grant.replay)
		return
	}
	if ar.GetGrantTypes().ExactOne("password") {
		// fosite checked the client may use the grant and these scopes, and
		// set the subject; the token acts for the user like a login would.
		for _, s := range ar.GetRequestedScopes() {
			ar.GrantScope(s)
		}
		for _, a := range ar.GetRequestedAudience() {
			ar.GrantAudience(a)
		}
		sess.Username = strings.TrimSpace(ar.GetRequestForm().Get("username"))
		sess.Claims.Subject, sess.Claims.Issuer = sess.Subject, p.cfg.Issuer
		sess.Claims.AuthTime = p.now().UTC().Truncate(time.Second)
		if err := p.passwordGrantClaims(ctx, sess, ar.GetGrantedScopes()); err != nil {
			p.emit(r, tokenRefusal(r, ar, err))
			p.logProtocolError(r, "token", err)
			p.oauth2.WriteAccessError(ctx, w, ar, err)
			return
		}
	}
	if ar.GetGrantTypes().ExactOne("client_credentials") {
		// fosite has checked the scopes and audience against the client's
		// registration; the client acts for itself, so it is the subject.
		for _, s := range ar.GetRequestedScopes() {
			ar.GrantScope(s)
		}
		for _, a := range ar.GetRequestedAudience() {
			ar.GrantAudience(a)
		}
		sess.Subject = ar.GetClient().GetID()
	}
	if ar.GetGrantTypes().ExactOne("refresh_token") {
		// A deleted user's refresh tokens must stop working at once.
		// fosite replaced the session with the stored one: read it from ar.
		if _, err := p.store.GetUser(ctx, ar.GetSession().GetSubject()); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				err = fosite.ErrInvalidGrant.WithHint("The user of this refresh token no longer exists.").WithWrap(err)
			} else {
				err = storageUnavailable(w, fosite.ErrServerError.WithWrap(err))
			}
			p.emit(r, tokenRefusal(r, ar, err))
			p.logProtocolError(r, "token", err)
			p.oauth2.WriteAccessError(ctx, w, ar, err)
			return
		}
	}
	resp, err := p.oauth2.NewAccessResponse(ctx, ar)
	if grant.replay != nil {
		// Lost a race for a refresh token to a request whose answer is
		// kept: that answer is this one's too (refreshgrace.go).
		p.answerReplay(ctx, w, r, ar, grant.replay)
		return
	}
	if grant.pending != nil && err == nil {
		if err = p.fositeStore.commitRotation(grant, ar, resp); err != nil {
			err = fosite.ErrServerError.WithWrap(err)
		}
	}
	if grant.lost {
		// A racing request with the same code won: this one is a replay.
		err = errCodeUsed()
		if rerr := p.fositeStore.revokeCodeGrant(ctx, grant.requestID); rerr != nil {
			err = fosite.ErrServerError.WithWrap(rerr)
		}
	}
	if err != nil {
		err = storageUnavailable(w, err)
		p.emit(r, tokenRefusal(r, ar, err))
		p.logProtocolError(r, "token", err)
		p.oauth2.WriteAccessError(ctx, w, ar, err)
		return
	}
	p.emit(r, tokensIssued(ar))
	p.oauth2.WriteAccessResponse(ctx, w, ar, resp)
}

// supportedGrantTypes are the grant types the composed handlers serve at
// the token endpoint (fositeHandlers).
var supportedGrantTypes = tokenGrantTypes()

// refineTokenError gives the RFC 6749 §5.2 code where fosite answers with a
// generic invalid_request: a grant type nobody handles is
// unsupported_grant_type, and a request without any client authentication
// is invalid_client.
func refineTokenError(r *http.Request, err error) error {
	var throttled *throttledError
	if errors.As(err, &throttled) {
		return fosite.ErrInvalidGrant.WithHintf("Too many failed sign-ins for this account or address. Try again in %s.", inMinutes(throttled.wait))
	}
	if errors.Is(err, errPasswordGrantMFA) {
		return fosite.ErrInvalidGrant.WithHint("This account must sign in with a second factor, which the password grant cannot ask for: use the authorization code flow.")
	}
	if !errors.Is(err, fosite.ErrInvalidRequest) {
		return err
	}
	if gt := r.PostForm.Get("grant_type"); gt != "" && !supportedGrantTypes.Has(gt) {
		return fosite.ErrUnsupportedGrantType.WithHintf("The grant type %q is not supported.", gt)
	}
	if _, _, basic := r.BasicAuth(); !basic && r.PostForm.Get("client_id") == "" && r.PostForm.Get("client_assertion") == "" {
		return fosite.ErrInvalidClient.WithHint("No client authentication was included.")
	}
	return err
}

// handleRevoke is RFC 7009 token revocation. fosite answers 200 for unknown
// tokens, as §2.2 requires.
func (p *Provider) handleRevoke(w http.ResponseWriter, r *http.Request) {
	err := p.oauth2.NewRevocationRequest(r.Context(), r)
	if err == nil {
		if rerr := p.revokeRetiredRefresh(r.Context(), r); rerr != nil {
			err = fosite.ErrTemporarilyUnavailable.WithWrap(rerr)
		}
	}
	if err != nil {
		err = storageUnavailable(w, err)
		p.logProtocolError(r, "revoke", err)
		if writeUnavailable(w, err) {
			return
		}
	} else {
		p.emit(r, audit.RevokedByClient(requestClientID(r)))
	}
	p.oauth2.WriteRevocationResponse(r.Context(), w, err)
}

// revokeRetiredRefresh ends the family of a retired refresh token that
// its own client revokes (RFC 7009 §2.1). fosite answers 200 for an
// inactive token and revokes nothing, but the retired token's successor,
// which the client may never have received (an answer lost on the way,
// the refresh grace), would then live on until it expired. Presenting a
// retired token is what reuse detection acts on at the token endpoint;
// here it ends the grant the same way.
func (p *Provider) revokeRetiredRefresh(ctx context.Context, r *http.Request) error {
	token := r.PostForm.Get("token")
	if token == "" || p.refreshSignature == nil {
		return nil
	}
	rec, err := p.store.GetToken(ctx, storage.KindRefreshToken, p.refreshSignature(ctx, token))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil
	case err != nil:
		return err
	case rec.Active || rec.ClientID != requestClientID(r):
		return nil
	}
	if err := p.fositeStore.RevokeRefreshToken(ctx, rec.RequestID); err != nil {
		return err
	}
	return p.fositeStore.RevokeAccessToken(ctx, rec.RequestID)
}

// handleIntrospect is RFC 7662 token introspection for authenticated
// clients; an unknown, expired or revoked token is {"active": false}.
func (p *Provider) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ir, err := p.newIntrospectionRequest(ctx, r, newSession())
	if err != nil && storageDown(err) {
		// Not "active": false, which would tell a resource server a good
		// token is dead.
		err = storageUnavailable(w, err)
		p.logProtocolError(r, "introspect", err)
		p.oauth2.WriteAccessError(ctx, w, nil, err)
		return
	}
	if err != nil {
		if rfc := fosite.ErrorToRFC6749Error(err); rfc.ErrorField != fosite.ErrInactiveToken.ErrorField {
			p.logProtocolError(r, "introspect", err)
		}
		if errors.Is(err, fosite.ErrInvalidClient) {
			// RFC 7662 §2.3: invalid client credentials are answered as at
			// the token endpoint; fosite's writer would say {"active":false}.
			p.oauth2.WriteAccessError(ctx, w, nil, err)
			return
		}
		p.oauth2.WriteIntrospectionError(ctx, w, err)
		return
	}
	// A token issued to a person dies with the person: a deleted user's
	// tokens are inactive, as at userinfo and refresh. (Client-credentials
	// tokens have no username.)
	if sess := ir.GetAccessRequester().GetSession(); sess.GetUsername() != "" {
		if _, err := p.store.GetUser(ctx, sess.GetSubject()); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				err = fosite.ErrInactiveToken
			} else {
				err = fosite.ErrServerError.WithWrap(err)
				p.logProtocolError(r, "introspect", err)
			}
			p.oauth2.WriteIntrospectionError(ctx, w, err)
			return
		}
	}
	p.oauth2.WriteIntrospectionResponse(ctx, w, ir)
}

type clientIPKey struct{}

// authenticatePasswordGrant is the password grant's user check: the same
// throttled, constant-cost check as the login page. fosite turns
// ErrNotFound into invalid_grant; a *throttledError comes back wrapped and
// refineTokenError words it.
func (p *Provider) authenticatePasswordGrant(ctx context.Context, username, password string) (string, error) {
	ip, _ := ctx.Value(clientIPKey{}).(string)
	u, err := p.authenticate(ctx, ip, strings.TrimSpace(username), password)
	p.emitFrom(ctx, ip, signInEvent(passwordGrantClient(ctx), strings.TrimSpace(username), u.ID, err))
	switch {
	case errors.Is(err, errBadCredentials):
		return "", fosite.ErrNotFound
	case err != nil:
		return "", err
	}
	// The grant cannot ask for a second factor: whoever owes one is
	// refused here (mfapolicy.go), or it would be the way around it.
	if err := p.passwordGrantAllowed(ctx, passwordGrantClient(ctx), u); err != nil {
		p.emitFrom(ctx, ip, audit.SignInRefusedMFA(passwordGrantClient(ctx), u.Username, u.ID))
		return "", err
	}
	return u.ID, nil
}

// answerReplay gives a refresh token presented again within the refresh
// grace the answer its rotation gave (refreshgrace.go), unless its user
// was deleted since.
func (p *Provider) answerReplay(ctx context.Context, w http.ResponseWriter, r *http.Request, ar fosite.AccessRequester, replay *graceReplay) {
	err := p.fositeStore.replayAfterRace(ctx, replay)
	if err == nil {
		_, err = p.store.GetUser(ctx, replay.rec.Subject)
		if errors.Is(err, storage.ErrNotFound) {
			err = fosite.ErrInvalidGrant.WithHint("The user of this refresh token no longer exists.").WithWrap(err)
		}
	}
	if err != nil {
		if !errors.Is(err, fosite.ErrInvalidGrant) {
			err = storageUnavailable(w, fosite.ErrServerError.WithWrap(err))
		}
		p.logProtocolError(r, "token", err)
		p.oauth2.WriteAccessError(ctx, w, ar, err)
		return
	}
	p.emit(r, audit.TokensReplayed(ar.GetClient().GetID(), replay.rec.Subject, replay.plain.scopes()))
	p.oauth2.WriteAccessResponse(ctx, w, ar, replay.plain.response(p.now()))
}
