package provider

// Logout: OpenID Connect RP-Initiated Logout 1.0 (the end_session_endpoint),
// Back-Channel Logout 1.0 (a logout token POSTed to each client) and
// Front-Channel Logout 1.0 (a hidden iframe per client on the signed-out
// page).

import (
	"context"
	"crypto/rand"
	"errors"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/smallsso/provider/provider/audit"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/templates"
)

const (
	// logoutJWTType is the JOSE typ of a logout token (Back-Channel Logout
	// 1.0 §2.4), so it cannot be mistaken for an ID token.
	logoutJWTType = "logout+jwt"
	// backchannelLogoutEvent is the one member of a logout token's events.
	backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"
	// logoutTokenLifespan is short: the token is delivered at once.
	logoutTokenLifespan = 2 * time.Minute
	// backchannelTimeout bounds how long a person's sign-out waits for the
	// slowest client: every client is told at the same time, and a client
	// that has not answered by then is logged and given up on.
	backchannelTimeout = 3 * time.Second
)

// Messages of rejected sign-out requests.
const (
	msgLogoutRejected  = "Sign-out request rejected"
	msgBadIDTokenHint  = "The application sent a sign-out request with an ID token that was not issued here. You are still signed in."
	msgLogoutMismatch  = "The application sent a sign-out request whose client_id does not match its ID token. You are still signed in."
	msgUnknownClient   = "The application that sent this sign-out request is not registered here. You are still signed in."
	msgBadLogoutParams = "The sign-out request could not be read."
)

// logoutRequest is a parsed, verified end-session request.
type logoutRequest struct {
	form url.Values
	// hint holds the claims of a verified id_token_hint, nil without one.
	hint map[string]any
	// client is the client the request is known to come from: the
	// audience of a verified hint, or the client_id parameter.
	client *storage.Client
	// redirect is the post_logout_redirect_uri with state, only when it is
	// registered for client.
	redirect string
	// redirectRefused is set when a post_logout_redirect_uri was sent that
	// cannot be used: unregistered, or no client to check it against.
	redirectRefused bool
}

// logoutParams are the end-session parameters a confirmation form carries
// over (RP-Initiated Logout 1.0 §2).
var logoutParams = []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales", "logout_hint"}

func (p *Provider) handleLogout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		p.renderError(w, r, pageError{Status: http.StatusBadRequest, Title: msgLogoutRejected, Message: msgBadLogoutParams})
		return
	}
	if name := p.overlongParam(r.Form, logoutParams); name != "" {
		// Never carried on into a redirect or a page.
		p.renderError(w, r, pageError{Status: http.StatusBadRequest, Title: msgLogoutRejected, Message: msgBadLogoutParams})
		return
	}
	// The confirmation form posts back here with csrf and confirm; an RP
	// may also POST the request itself (§2), which is treated like GET.
	confirmed := r.Method == http.MethodPost && r.PostForm.Has("confirm")
	if r.Method == http.MethodPost && !confirmed && !p.hasSessionCookie(r) {
		// An RP's cross-site form POST arrives without our SameSite=Lax
		// session cookie, so the session could not be found; a top-level
		// GET navigation carries it.
		// Only the end-session parameters go along, each bounded above.
		carried := url.Values{}
		for _, name := range logoutParams {
			if v := r.PostForm.Get(name); v != "" {
				carried.Set(name, v)
			}
		}
		http.Redirect(w, r, p.path("/logout")+"?"+carried.Encode(), http.StatusSeeOther)
		return
	}
	if confirmed {
		if _, ok := p.checkCSRF(r); !ok {
			p.renderError(w, r, pageError{Status: http.StatusForbidden, Message: msgCSRF})
			return
		}
	}
	lr, perr := p.parseLogout(ctx, r.Form)
	if perr != nil {
		p.renderError(w, r, *perr)
		return
	}
	s, signedIn, err := p.currentSession(ctx, r)
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	// A request anyone could have sent (a link on another site) must not
	// sign the person out unasked (§6): only a hint for this very session
	// proves the request comes from an application they are signed in to.
	// An application asking to return to an address not registered for it
	// is misbehaving, so the person is asked then too.
	if signedIn && !confirmed && (!lr.forSession(s) || lr.redirectRefused) {
		p.showLogoutConfirmation(w, r, lr, s)
		return
	}
	var frames []string
	if signedIn {
		if frames, err = p.endSession(ctx, s); err != nil {
			p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
			return
		}
		p.emit(r, audit.LoggedOut(lr.clientID(), s.UserID))
	} else if lr.hint != nil && p.hintUnexpired(lr.hint) {
		// No browser session: a relying party's server logging its user
		// out (oauth2-proxy's backend logout). The hint, signed by us and
		// still valid, names the session to end by its sid.
		ended, err := p.endSessionByHint(ctx, lr.hint)
		if err != nil {
			p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
			return
		}
		if ended {
			p.emit(r, audit.LoggedOut(lr.clientID(), hintSubject(lr.hint)))
		}
	}
	// The cookie goes even when its session had already ended. So does
	// the CSRF cookie: every sealed form state (a sign-in part-way
	// through, a passkey ceremony) is bound to it, and none of them may
	// outlive the sign-out in a browser someone else uses next.
	p.setCookie(w, "session", "", -1)
	p.setCookie(w, "csrf", "", -1)
	if lr.redirect != "" && len(frames) == 0 {
		status := http.StatusFound
		if r.Method == http.MethodPost {
			status = http.StatusSeeOther
		}
		http.Redirect(w, r, lr.redirect, status)
		return
	}
	if len(frames) > 0 {
		allowFrames(w, frames)
	}
	p.render(w, r, http.StatusOK, templates.PageLoggedOut, templates.LoggedOutPage{
		Brand:           p.brand(),
		FrontChannel:    frames,
		Continue:        template.URL(lr.redirect), // a registered URI, matched exactly
		RedirectRefused: lr.redirectRefused,
	})
}

func (p *Provider) hasSessionCookie(r *http.Request) bool {
	c, err := r.Cookie(p.cookieName("session"))
	return err == nil && c.Value != ""
}

// parseLogout verifies the hint and works out the client and where to go
// afterwards. Only a broken request is an error; a redirect that cannot be
// verified is dropped (§3), the sign-out itself still happens.
func (p *Provider) parseLogout(ctx context.Context, form url.Values) (logoutRequest, *pageError) {
	lr := logoutRequest{form: form}
	clientID := form.Get("client_id")
	if raw := form.Get("id_token_hint"); raw != "" {
		claims, err := p.verifyIDTokenHint(raw)
		if err != nil {
			return lr, &pageError{Status: http.StatusBadRequest, Title: msgLogoutRejected, Message: msgBadIDTokenHint, Err: err}
		}
		lr.hint = claims
		aud := hintClient(claims)
		if clientID != "" && aud != clientID {
			return lr, &pageError{Status: http.StatusBadRequest, Title: msgLogoutRejected, Message: msgLogoutMismatch}
		}
		clientID = aud
	}
	if clientID != "" {
		c, err := p.store.GetClient(ctx, clientID)
		if errors.Is(err, storage.ErrNotFound) {
			return lr, &pageError{Status: http.StatusBadRequest, Title: msgLogoutRejected, Message: msgUnknownClient}
		}
		if err != nil {
			return lr, &pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err}
		}
		lr.client = &c
	}
	if target := form.Get("post_logout_redirect_uri"); target != "" {
		// A client anyone could register sends people back only with a
		// verified hint: a bare client_id would make /logout a redirector
		// for whoever registered it.
		if lr.client == nil || !slices.Contains(lr.client.PostLogoutRedirectURIs, target) ||
			(lr.client.OpenlyRegistered() && lr.hint == nil) {
			lr.redirectRefused = true
		} else {
			lr.redirect = withState(target, form.Get("state"))
		}
	}
	return lr, nil
}

// hintClient is the client an ID token was issued to: azp, or its only
// audience. An ID token for several audiences without azp names none.
func hintClient(claims map[string]any) string {
	if azp, ok := claims["azp"].(string); ok && azp != "" {
		return azp
	}
	switch aud := claims["aud"].(type) {
	case string:
		return aud
	case []any:
		if len(aud) == 1 {
			s, _ := aud[0].(string)
			return s
		}
	}
	return ""
}

// forSession reports whether the verified hint was issued through session
// s: same sid, or, for a token from before sids, the same person.
func (lr logoutRequest) forSession(s storage.BrowserSession) bool {
	if lr.hint == nil {
		return false
	}
	if sid, ok := lr.hint[sidClaim].(string); ok {
		return s.SID != "" && sid == s.SID
	}
	sub, _ := lr.hint["sub"].(string)
	return sub != "" && sub == s.UserID
}

// withState appends state to a registered URI, keeping the URI's own
// query; nothing else is added (§3).
func withState(target, state string) string {
	if state == "" {
		return target
	}
	u, err := url.Parse(target)
	if err != nil {
		return target // registered URIs are validated; cannot happen
	}
	q := u.Query()
	q.Set("state", state)
	u.RawQuery = q.Encode()
	return u.String()
}

func (p *Provider) showLogoutConfirmation(w http.ResponseWriter, r *http.Request, lr logoutRequest, s storage.BrowserSession) {
	page := templates.LogoutPage{
		Brand:           p.brand(),
		Action:          p.path("/logout"),
		CSRF:            p.csrfToken(w, r),
		RedirectRefused: lr.redirectRefused,
	}
	if u, err := p.store.GetUser(r.Context(), s.UserID); err == nil {
		page.Username = u.Username
	}
	// Cancel: the application the person is signed in to, when a verified
	// hint names it and it has a home page; else the account page, ours.
	// A bare client_id proves nothing, so its client_uri is not followed.
	page.Cancel = p.path("/account")
	if lr.hint != nil && lr.client != nil {
		page.ClientName = newClient(*lr.client).displayName()
		// The client_uri of a client anyone could register was never held
		// to registration.allowed_redirect_hosts: followed only when its
		// host is one the operator trusts for redirects.
		if home := recordInfo(*lr.client).URL; home != "" && (!lr.client.OpenlyRegistered() || p.openRedirectAllowed(home)) {
			page.Cancel = home
		}
	}
	for _, name := range logoutParams {
		if v := lr.form.Get(name); v != "" {
			page.Hidden = append(page.Hidden, templates.Field{Name: name, Value: v})
		}
	}
	p.render(w, r, http.StatusOK, templates.PageLogout, page)
}

// endSession deletes the browser session, tells the clients that signed
// in through it over the back channel, and returns the front-channel
// logout URLs for the page to load.
func (p *Provider) endSession(ctx context.Context, s storage.BrowserSession) ([]string, error) {
	if err := p.store.DeleteBrowserSession(ctx, s.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	p.log.InfoContext(ctx, "logout", "request_id", requestID(ctx), "user_id", s.UserID, "clients", len(s.ClientIDs))
	clients := p.sessionClients(ctx, s)
	p.backchannelLogout(ctx, s, clients)
	var frames []string
	for _, c := range clients {
		if c.FrontchannelLogoutURI == "" {
			continue
		}
		u, err := url.Parse(c.FrontchannelLogoutURI)
		if err != nil {
			continue
		}
		// iss and sid always: sid costs nothing and lets the client find
		// the session whether or not it asked (Front-Channel Logout §2).
		q := u.Query()
		q.Set("iss", p.cfg.Issuer)
		q.Set(sidClaim, s.SID)
		u.RawQuery = q.Encode()
		frames = append(frames, u.String())
	}
	return frames, nil
}

// allowFrames widens this one response's Content-Security-Policy to the
// origins of the front-channel logout iframes, and nothing else.
func allowFrames(w http.ResponseWriter, frames []string) {
	var origins []string
	for _, f := range frames {
		if o, ok := clientspec.WebOrigin(f); ok && !slices.Contains(origins, o) {
			origins = append(origins, o)
		}
	}
	h := w.Header()
	if csp := h.Get("Content-Security-Policy"); csp != "" && len(origins) > 0 {
		h.Set("Content-Security-Policy", csp+"; frame-src "+strings.Join(origins, " "))
	}
}

// backchannelLogout POSTs a logout token to every client with a
// backchannel_logout_uri, all at once, and returns when each has answered
// or backchannelTimeout has passed. It runs before the person's response
// is sent, so a client has ended its own session before the browser
// arrives back there; the person's request being cancelled does not stop
// it.
func (p *Provider) backchannelLogout(ctx context.Context, s storage.BrowserSession, clients []storage.Client) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), backchannelTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range clients {
		if c.BackchannelLogoutURI == "" {
			continue
		}
		wg.Go(func() {
			if err := p.sendLogoutToken(ctx, c, s); err != nil {
				p.log.WarnContext(ctx, "back-channel logout failed", "request_id", requestID(ctx), "client_id", c.ID, "err", err.Error())
			}
		})
	}
	wg.Wait()
}

func (p *Provider) sendLogoutToken(ctx context.Context, c storage.Client, s storage.BrowserSession) error {
	token, err := p.logoutToken(c, s)
	if err != nil {
		return err
	}
	body := url.Values{"logout_token": {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BackchannelLogoutURI, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.out.clientFor(c, req.URL, backchannelTimeout).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	// §2.8: 200 on success; some frameworks answer 204 instead.
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return errors.New("client answered HTTP " + resp.Status)
	}
	return nil
}

// logoutClaims are the claims of a logout token (Back-Channel Logout 1.0
// §2.4). It never has a nonce, so it cannot pass for an ID token.
type logoutClaims struct {
	jwt.Claims
	SID    string              `json:"sid,omitempty"`
	Events map[string]struct{} `json:"events"`
}

// logoutToken is signed like the client's ID tokens, since it verifies
// them the same way (Back-Channel Logout 1.0 §2.6).
func (p *Provider) logoutToken(c storage.Client, s storage.BrowserSession) (string, error) {
	alg := c.IDTokenSignedResponseAlg
	if alg == "" {
		alg = signingAlg
	}
	signer, err := joseSigner(p.keys, alg, logoutJWTType)
	if err != nil {
		return "", err
	}
	now := p.now().UTC()
	return jwt.Signed(signer).Claims(logoutClaims{
		Claims: jwt.Claims{
			Issuer:   p.cfg.Issuer,
			Subject:  s.UserID,
			Audience: jwt.Audience{c.ID},
			IssuedAt: jwt.NewNumericDate(now),
			Expiry:   jwt.NewNumericDate(now.Add(logoutTokenLifespan)),
			ID:       rand.Text(),
		},
		SID:    s.SID,
		Events: map[string]struct{}{backchannelLogoutEvent: {}},
	}).Serialize()
}
