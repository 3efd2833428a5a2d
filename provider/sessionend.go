package provider

// Ending sessions from afar: a password change ends the person's other
// browser sessions and takes back their refresh tokens; a logout request
// a relying party's server sends with an id_token_hint (no browser, no
// cookie) ends the session the hint's sid names and takes back the tokens
// issued in it.

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"

	"github.com/smallsso/provider/storage"
)

// revokedKinds are the records of a grant family that a revocation
// deletes: the tokens themselves. Codes are single-use and short-lived,
// and their replay is refused once the family is gone anyway.
var revokedKinds = []storage.TokenKind{storage.KindRefreshToken, storage.KindAccessToken}

// endUserAccess ends every browser session of userID except keep ("" ends
// them all) and revokes every refresh token of the user together with the
// access tokens issued with it, in one transaction: a refresh racing with
// it either finished before (and its new tokens are revoked here) or finds
// its token gone. It returns the sessions it ended, for their clients to
// be told.
func endUserAccess(ctx context.Context, store storage.Store, userID, keep string) (ended []storage.BrowserSession, err error) {
	txCtx, err := store.BeginTx(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			store.RollbackTx(txCtx)
			ended = nil
		}
	}()
	sessions, err := store.ListUserSessions(txCtx, userID)
	if err != nil {
		return nil, err
	}
	for _, s := range sessions {
		if s.ID == keep {
			continue
		}
		if err := store.DeleteBrowserSession(txCtx, s.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
		ended = append(ended, s)
	}
	tokens, err := store.ListSubjectTokens(txCtx, storage.KindRefreshToken, userID)
	if err != nil {
		return nil, err
	}
	if err := revokeFamilies(txCtx, store, tokens); err != nil {
		return nil, err
	}
	return ended, store.CommitTx(txCtx)
}

// revokeFamilies deletes the tokens of every grant family in tokens.
func revokeFamilies(ctx context.Context, store storage.Store, tokens []storage.TokenRequest) error {
	var families []string
	for _, t := range tokens {
		if !slices.Contains(families, t.RequestID) {
			families = append(families, t.RequestID)
		}
	}
	for _, reqID := range families {
		for _, kind := range revokedKinds {
			if err := store.RevokeByRequestID(ctx, kind, reqID); err != nil {
				return err
			}
		}
	}
	return nil
}

// tokenSID is the sid claim a stored grant's session carries: the browser
// session it was issued through, "" for grants without one (password,
// client credentials, tokens from before sids).
func tokenSID(t storage.TokenRequest) string {
	if len(t.Session) == 0 {
		return ""
	}
	sess := newSession()
	if err := json.Unmarshal(t.Session, sess); err != nil || sess.Claims == nil {
		return ""
	}
	sid, _ := sess.Claims.Extra[sidClaim].(string)
	return sid
}

// endSessionByHint ends the session a relying party's server names with a
// verified id_token_hint: the browser session of the hint's subject with
// the hint's sid, and the tokens issued through it (RP-Initiated Logout
// sent server to server, as oauth2-proxy's backend logout does). Its
// clients are told over the back channel. It reports whether a session
// was found; a hint without sid, or for a session that has ended, ends
// nothing.
func (p *Provider) endSessionByHint(ctx context.Context, hint map[string]any) (bool, error) {
	sid, _ := hint[sidClaim].(string)
	sub, _ := hint["sub"].(string)
	if sid == "" || sub == "" {
		return false, nil
	}
	sessions, err := p.store.ListUserSessions(ctx, sub)
	if err != nil {
		return false, err
	}
	i := slices.IndexFunc(sessions, func(s storage.BrowserSession) bool { return s.SID == sid })
	if i < 0 {
		return false, nil
	}
	s := sessions[i]
	if err := p.revokeSessionTokens(ctx, s); err != nil {
		return false, err
	}
	if _, err := p.endSession(ctx, s); err != nil {
		return false, err
	}
	return true, nil
}

// hintUnexpired reports whether a verified hint has not expired. A
// browser's logout accepts an expired hint (RP-Initiated Logout §2), but
// ending a session from afar asks for a live one: an ID token found in an
// old log or backup ends nothing.
func (p *Provider) hintUnexpired(hint map[string]any) bool {
	exp, ok := hint["exp"].(float64)
	return ok && float64(p.now().Unix()) < exp
}

// revokeSessionTokens revokes the grant families issued through browser
// session s: those whose ID token claims carry its sid.
func (p *Provider) revokeSessionTokens(ctx context.Context, s storage.BrowserSession) error {
	if s.SID == "" {
		return nil
	}
	txCtx, err := p.store.BeginTx(ctx)
	if err != nil {
		return err
	}
	var mine []storage.TokenRequest
	for _, kind := range revokedKinds {
		tokens, err := p.store.ListSubjectTokens(txCtx, kind, s.UserID)
		if err != nil {
			p.store.RollbackTx(txCtx)
			return err
		}
		for _, t := range tokens {
			if tokenSID(t) == s.SID {
				mine = append(mine, t)
			}
		}
	}
	if err := revokeFamilies(txCtx, p.store, mine); err != nil {
		p.store.RollbackTx(txCtx)
		return err
	}
	return p.store.CommitTx(txCtx)
}

// PasswordChanged is LocalAdmin's hook for a password changed through the
// admin socket: the sources that signed in with the old password lose
// their exemption from the account's throttle budget.
func (p *Provider) PasswordChanged(username string) { p.throttle.forgetKnownSources(username) }

// SessionsEnded tells the clients of sessions that ended outside a
// browser's logout (a password change from the command line) over the
// back channel, as a logout would.
// All sessions are told at once, so the wait is that of one logout.
func (p *Provider) SessionsEnded(ctx context.Context, sessions []storage.BrowserSession) {
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Go(func() { p.backchannelLogout(ctx, s, p.sessionClients(ctx, s)) })
	}
	wg.Wait()
}

// sessionClients are the clients that signed in through s and still
// exist.
func (p *Provider) sessionClients(ctx context.Context, s storage.BrowserSession) []storage.Client {
	var clients []storage.Client
	for _, id := range s.ClientIDs {
		c, err := p.store.GetClient(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			continue // deleted since
		}
		if err != nil {
			// The session is gone already; a client we cannot read is
			// logged rather than failing the person's sign-out.
			p.log.WarnContext(ctx, "logout: read client", "request_id", requestID(ctx), "client_id", id, "err", err.Error())
			continue
		}
		clients = append(clients, c)
	}
	return clients
}
