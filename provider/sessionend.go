package provider

// Ending sessions from afar: a password change ends the person's other
// browser sessions and takes back their refresh tokens; a logout request
// a relying party's server sends with an id_token_hint (no browser, no
// cookie) ends the session the hint's sid names and takes back the tokens
// issued in it.

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/smallsso/provider/provider/revoke"
	"github.com/smallsso/provider/storage"
)

// tokenSID is the sid claim a stored grant's session carries: the browser
// session it was issued through, "" for grants without one (password,
// client credentials, tokens from before sids).
func tokenSID(t storage.TokenRequest) string {
	if len(t.Session) == 0 {
		return ""
	}
	sess := newSession()
	if err := decodeSession(t.Session, t.Subject, sess); err != nil || sess.Claims == nil {
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
	defer p.store.RollbackTx(txCtx) // a no-op once committed
	var mine []storage.TokenRequest
	for _, kind := range revoke.Kinds {
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
	if err := revoke.Families(txCtx, p.store, mine); err != nil {
		p.store.RollbackTx(txCtx)
		return err
	}
	return p.store.CommitTx(txCtx)
}

// PasswordChanged is LocalAdmin's hook for a password changed through the
// admin socket: the sources that signed in with the old password lose
// their exemption from the account's throttle budget.
func (p *Provider) PasswordChanged(username string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.throttle.forgetKnownSources(ctx, username); err != nil {
		p.log.Warn("password changed, but the known sign-in places were not forgotten", "err", err)
	}
}

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
