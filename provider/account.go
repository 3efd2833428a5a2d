package provider

// The account page: a signed-in person sees their profile, changes their
// password, and sees and takes back the access they gave applications.
// Someone not signed in gets a sign-in form whose sealed interaction is
// marked Account: it posts to /login like every sign-in (same throttle,
// same session renewal) and leads back here. The destination lives inside
// the seal rather than in a return_to parameter, so it cannot be turned
// into an open redirect.

import (
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/smallsso/provider/provider/audit"
	"github.com/smallsso/provider/provider/mfa"
	"github.com/smallsso/provider/provider/revoke"
	"github.com/smallsso/provider/provider/secret"
	"github.com/smallsso/provider/provider/userspec"

	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/templates"
)

// Messages of the account page (catalogue keys).
const (
	msgPasswordChanged  = "Your password was changed. You were signed out on every other device, and apps that kept you signed in will ask you to sign in again."
	msgAppRemoved       = "The app no longer has access to your account."
	msgPasswordFields   = "Please fill in your current password and the new one twice."
	msgWrongPassword    = "Your current password is not correct."
	msgPasswordMismatch = "The two new passwords are not the same."
	msgPasswordShort    = "The new password must have at least %d characters."
	msgPasswordLong     = "The new password is too long."
	msgPasswordSame     = "The new password must be different from the current one."
)

// notices are the confirmations /account shows after a redirect; the
// query names one, so nothing a link carries is ever shown as text.
var notices = map[string]string{"password": msgPasswordChanged, "revoked": msgAppRemoved}

func (p *Provider) handleAccount(w http.ResponseWriter, r *http.Request) {
	s, user, state, err := p.accountSession(r)
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	switch state {
	case accountSignedOut:
		p.showAccountLogin(w, r, "", "", http.StatusOK)
		return
	case accountOwesFactor:
		// A session from before the person enrolled a second factor (or
		// a cookie taken from one) must prove it before it may change
		// factors, mint recovery codes or see the account: a step-up,
		// as for a request that needs mfa.
		f, err := p.factorsOf(r.Context(), user.ID)
		if err != nil {
			p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
			return
		}
		it := interaction{Account: true, RequestedAt: p.now().Unix()}
		p.pend(&it, user.ID, mfa.SessionAMR(s.AMR))
		it.Remember, it.StepUpSID = s.Remember, s.SID
		p.showSecondFactor(w, r, nil, it, user, f, false, "", http.StatusOK)
		return
	}
	notice := ""
	if key := notices[r.URL.Query().Get("done")]; key != "" {
		notice = p.tr(r, key)
	}
	p.showAccount(w, r, user, notice, "", "", http.StatusOK)
}

// accountUser is the signed-in user of r, if any, whose session proved
// every factor they have (see accountSession).
func (p *Provider) accountUser(r *http.Request) (storage.BrowserSession, storage.User, bool, error) {
	s, u, state, err := p.accountSession(r)
	return s, u, err == nil && state == accountSignedIn, err
}

// The states of the account page's session.
const (
	accountSignedOut = iota
	// accountOwesFactor: signed in, but the session has not proved the
	// second factor the person has (it predates the factor).
	accountOwesFactor
	accountSignedIn
)

// accountSession is the signed-in user of r and what their session
// proved.
func (p *Provider) accountSession(r *http.Request) (storage.BrowserSession, storage.User, int, error) {
	s, ok, err := p.currentSession(r.Context(), r)
	if err != nil || !ok {
		return s, storage.User{}, accountSignedOut, err
	}
	u, err := p.store.GetUser(r.Context(), s.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		return s, u, accountSignedOut, nil // deleted since they signed in
	}
	if err != nil {
		return s, u, accountSignedOut, err
	}
	if slices.Contains(mfa.SessionAMR(s.AMR), mfa.AMRMulti) {
		return s, u, accountSignedIn, nil
	}
	f, err := p.factorsOf(r.Context(), u.ID)
	if err != nil {
		return s, u, accountSignedOut, err
	}
	if f.Enrolled() {
		return s, u, accountOwesFactor, nil
	}
	return s, u, accountSignedIn, nil
}

// showAccountLogin is the sign-in form of the account page; problem is a
// catalogue message or one already translated.
func (p *Provider) showAccountLogin(w http.ResponseWriter, r *http.Request, username, problem string, status int) {
	it := interaction{Account: true, RequestedAt: p.now().Unix(), CSRF: p.csrfToken(w, r)}
	if problem != "" {
		problem = p.tr(r, problem)
	}
	w.Header().Set("Cache-Control", "no-store")
	sealed := p.seal(it, stageLogin)
	p.render(w, r, status, templates.PageLogin, templates.LoginPage{
		Passkey:     p.passkeySignIn(it, sealed),
		Brand:       p.brand(),
		Action:      p.path("/login"),
		Interaction: sealed,
		CSRF:        it.CSRF,
		Username:    username,
		Error:       problem,
		Account:     true,
	})
}

// showAccount renders the account page; notice and problem are already
// translated, field names the input problem is about; more adds to the
// page (a section's own problem).
func (p *Provider) showAccount(w http.ResponseWriter, r *http.Request, user storage.User, notice, problem, field string, status int, more ...func(*templates.AccountPage)) {
	apps, err := p.accountApps(r, user.ID)
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	page := templates.AccountPage{
		Brand: p.brand(),
		User: templates.AccountUser{
			Username: user.Username, Name: user.Name, Email: user.Email, EmailVerified: user.EmailVerified,
			Phone: user.PhoneNumber, Groups: user.Groups,
		},
		CSRF:              p.csrfToken(w, r),
		PasswordAction:    p.path("/account/password"),
		RevokeAction:      p.path("/account/revoke"),
		SignOutURL:        p.path("/logout"),
		PasswordMinLength: userspec.PasswordMinLength,
		Apps:              apps,
		Notice:            notice,
		Error:             problem,
		ErrorField:        field,
	}
	if err := p.accountFactors(r, user, &page); err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	if page.Passkeys, err = p.accountPasskeys(r, user.ID, page.CSRF); err != nil { // passkeys.go
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	for _, f := range more {
		f(&page)
	}
	p.render(w, r, status, templates.PageAccount, page)
}

// accountApps are the clients the user let in: a remembered consent that
// has not expired, or a live refresh token, or both.
func (p *Provider) accountApps(r *http.Request, userID string) ([]templates.AccountApp, error) {
	ctx, now := r.Context(), p.now()
	type grant struct {
		scopes    []string
		grantedAt time.Time
		offline   bool
	}
	grants := map[string]*grant{}
	get := func(clientID string) *grant {
		if grants[clientID] == nil {
			grants[clientID] = &grant{}
		}
		return grants[clientID]
	}
	consents, err := p.store.ListConsents(ctx, userID)
	if err != nil {
		return nil, err
	}
	for _, c := range consents {
		if !c.ExpiresAt.IsZero() && now.After(c.ExpiresAt) {
			continue
		}
		g := get(c.ClientID)
		g.scopes, g.grantedAt = c.Scopes, c.GrantedAt
	}
	tokens, err := p.store.ListSubjectTokens(ctx, storage.KindRefreshToken, userID)
	if err != nil {
		return nil, err
	}
	for _, t := range tokens {
		if !t.Active || (!t.ExpiresAt.IsZero() && now.After(t.ExpiresAt)) {
			continue
		}
		g := get(t.ClientID)
		g.offline = true
		for _, s := range t.GrantedScopes {
			if !slices.Contains(g.scopes, s) {
				g.scopes = append(g.scopes, s)
			}
		}
	}
	var apps []templates.AccountApp
	for _, id := range slices.Sorted(maps.Keys(grants)) {
		c, err := p.store.GetClient(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			continue // the client was deleted; nothing is left to revoke
		}
		if err != nil {
			return nil, err
		}
		g := grants[id]
		app := templates.AccountApp{Client: recordInfo(c), Scopes: scopeLines(g.scopes), Offline: g.offline}
		if !g.grantedAt.IsZero() {
			app.GrantedAt = g.grantedAt.UTC().Format(time.DateOnly)
		}
		apps = append(apps, app)
	}
	slices.SortStableFunc(apps, func(a, b templates.AccountApp) int {
		return strings.Compare(strings.ToLower(a.Client.Name), strings.ToLower(b.Client.Name))
	})
	return apps, nil
}

// accountForm checks a form posted from the account page: the CSRF token
// and a signed-in user. On failure it has already answered.
func (p *Provider) accountForm(w http.ResponseWriter, r *http.Request) (storage.BrowserSession, storage.User, bool) {
	if _, ok := p.checkCSRF(r); !ok {
		p.renderError(w, r, pageError{Status: http.StatusForbidden, Message: msgCSRF})
		return storage.BrowserSession{}, storage.User{}, false
	}
	s, user, ok, err := p.accountUser(r)
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return s, user, false
	}
	if !ok {
		// Signed out meanwhile: the account page asks to sign in.
		http.Redirect(w, r, p.path("/account"), http.StatusSeeOther)
		return s, user, false
	}
	return s, user, true
}

func (p *Provider) handleChangePassword(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s, user, ok := p.accountForm(w, r)
	if !ok {
		return
	}
	current, next, confirm := r.PostFormValue("current"), r.PostFormValue("new"), r.PostFormValue("confirm")
	fail := func(field, problem string, status int) {
		p.showAccount(w, r, user, "", problem, field, status)
	}
	// The cheap checks come first, so a typo costs no hash and no throttle.
	switch {
	case current == "" || next == "" || confirm == "":
		fail("current", p.tr(r, msgPasswordFields), http.StatusBadRequest)
		return
	case next != confirm:
		fail("confirm", p.tr(r, msgPasswordMismatch), http.StatusBadRequest)
		return
	case utf8.RuneCountInString(next) < userspec.PasswordMinLength:
		fail("new", p.tr(r, msgPasswordShort, userspec.PasswordMinLength), http.StatusBadRequest)
		return
	case len(next) > userspec.PasswordMaxBytes:
		fail("new", p.tr(r, msgPasswordLong), http.StatusBadRequest)
		return
	}
	// The current password is checked like a sign-in, throttle included:
	// a stolen session must not become a free password oracle.
	_, err := p.authenticate(ctx, p.clientIP(r), user.Username, current)
	if err != nil {
		p.emit(r, passwordChangeEvent(user.Username, user.ID, err))
	}
	var throttled *throttledError
	switch {
	case errors.As(err, &throttled):
		p.log.WarnContext(ctx, "password change throttled", "request_id", requestID(ctx), "user_id", user.ID)
		fail("current", p.tr(r, msgThrottled, minutesToWait(throttled.wait)), http.StatusTooManyRequests)
		return
	case errors.Is(err, errBadCredentials):
		p.log.WarnContext(ctx, "password change: wrong current password", "request_id", requestID(ctx), "user_id", user.ID)
		fail("current", p.tr(r, msgWrongPassword), http.StatusUnauthorized)
		return
	case err != nil:
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	case next == current:
		fail("new", p.tr(r, msgPasswordSame), http.StatusBadRequest)
		return
	}
	hash, err := secret.Hash(next)
	if err == nil {
		err = p.store.UpdateUser(ctx, user.ID, func(u storage.User) (storage.User, error) {
			u.PasswordHash, u.UpdatedAt = hash, p.now().UTC()
			return u, nil
		})
	}
	// A new session ID after the change: whoever may have copied the old
	// cookie loses it with the old password. The public sid and the
	// clients told at logout stay, so logout still reaches them.
	renewedID := ""
	if err == nil {
		var renewed storage.BrowserSession
		renewed, err = p.startSession(ctx, w, r, user.ID, p.now(), s.Remember, mfa.SessionAMR(s.AMR))
		renewedID = renewed.ID
		if err == nil {
			err = p.store.UpdateBrowserSession(ctx, renewed.ID, func(n storage.BrowserSession) (storage.BrowserSession, error) {
				n.SID, n.ClientIDs = s.SID, s.ClientIDs
				return n, nil
			})
		}
	}
	// Whoever knew the old password may have signed in elsewhere or hold
	// a refresh token: the other browser sessions end, and every refresh
	// token goes with the access tokens issued with it. This browser
	// stays signed in; its apps get new tokens by signing in silently.
	var ended []storage.BrowserSession
	if err == nil {
		ended, err = revoke.UserAccess(ctx, p.store, user.ID, renewedID)
	}
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	p.SessionsEnded(ctx, ended)
	if err := p.throttle.forgetKnownSources(ctx, user.Username); err != nil {
		p.log.WarnContext(ctx, "password changed, but the known sign-in places were not forgotten", "request_id", requestID(ctx), "err", err)
	}
	p.emit(r, passwordChangeEvent(user.Username, user.ID, nil))
	p.log.InfoContext(ctx, "password changed", "request_id", requestID(ctx), "user_id", user.ID, "sessions_ended", len(ended))
	http.Redirect(w, r, p.path("/account?done=password"), http.StatusSeeOther)
}

// handleRevokeApp takes back what the user gave a client: the remembered
// consent (so the next sign-in asks again) and every token of theirs the
// client holds (so its refresh tokens fail from now on).
func (p *Provider) handleRevokeApp(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	_, user, ok := p.accountForm(w, r)
	if !ok {
		return
	}
	clientID := r.PostFormValue("client_id")
	if clientID == "" {
		p.renderError(w, r, pageError{Status: http.StatusBadRequest, Message: msgMethodNotAllowed})
		return
	}
	err := p.store.DeleteConsent(ctx, user.ID, clientID)
	if errors.Is(err, storage.ErrNotFound) {
		err = nil
	}
	if err == nil {
		err = p.store.RevokeSubjectClient(ctx, user.ID, clientID)
	}
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	p.emit(r, audit.RevokedByUser(clientID, user.ID))
	p.log.InfoContext(ctx, "app access revoked", "request_id", requestID(ctx), "user_id", user.ID, "client_id", clientID)
	http.Redirect(w, r, p.path("/account?done=revoked"), http.StatusSeeOther)
}

// proveInSession adds the methods a person just proved on the account
// page (enrolling a factor takes one use of it) to their browser
// session's amr, so the page does not ask them for it again at once.
func (p *Provider) proveInSession(r *http.Request, methods ...string) {
	ctx := r.Context()
	s, ok, err := p.currentSession(ctx, r)
	if err == nil && ok {
		err = p.store.UpdateBrowserSession(ctx, s.ID, func(n storage.BrowserSession) (storage.BrowserSession, error) {
			n.AMR = mfa.Combine(mfa.SessionAMR(n.AMR), methods...)
			return n, nil
		})
	}
	if err != nil {
		p.log.WarnContext(ctx, "factor enrolled, but the session's amr was not updated", "request_id", requestID(ctx), "err", err)
	}
}
