package provider

// The login and consent form handlers. Both verify the CSRF token and the
// sealed interaction, rebuild the authorization request, and hand it back
// to proceed.

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/smallsso/provider/provider/audit"
	"github.com/smallsso/provider/provider/mfa"
	"github.com/smallsso/provider/provider/secret"

	"github.com/ory/fosite"

	"github.com/smallsso/provider/storage"
)

var errBadCredentials = errors.New("bad credentials")

// throttledError refuses a password check without making it: the account
// or the address failed too often.
type throttledError struct{ wait time.Duration }

func (e *throttledError) Error() string {
	return "too many failed attempts; try again in " + inMinutes(e.wait)
}

// handleLogin checks the sign-in form of an authorization request, or of
// the account page (an interaction marked Account, which has no request
// to resume and leads back to /account).
func (p *Provider) handleLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	it, ok := p.unsealForm(w, r, stageLogin)
	if !ok {
		return
	}
	it.unpend() // a password starts a sign-in over
	ar, clientID, ok := p.resumeSignIn(w, r, it)
	if !ok {
		return
	}
	username := strings.TrimSpace(r.PostFormValue("username"))
	password := r.PostFormValue("password")
	show := func(problem string, status int) {
		if it.Account {
			p.showAccountLogin(w, r, username, problem, status)
		} else {
			p.showLogin(w, r, ar, it, username, problem, status)
		}
	}
	if username == "" || password == "" {
		show(msgMissingCredential, http.StatusBadRequest)
		return
	}
	ip := p.clientIP(r)
	user, err := p.authenticate(ctx, ip, username, password)
	p.emit(r, signInEvent(clientID, username, user.ID, err))
	var throttled *throttledError
	if errors.As(err, &throttled) {
		p.log.WarnContext(ctx, "login throttled", "request_id", requestID(ctx), "client_id", clientID, "client_ip", ip)
		// Formatted here, in the page's language: the count is not a key.
		show(p.tr(withUILocales(r, it.Params.Get("ui_locales")), msgThrottled, minutesToWait(throttled.wait)), http.StatusTooManyRequests)
		return
	}
	if errors.Is(err, errBadCredentials) {
		p.log.WarnContext(ctx, "login failed", "request_id", requestID(ctx), "client_id", clientID, "client_ip", ip)
		show(msgBadLogin, http.StatusUnauthorized)
		return
	}
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	it.Remember = r.PostFormValue("remember") != ""
	p.afterPassword(w, r, ar, it, user)
}

// afterPassword goes on once the password was right: to the second
// factor the person owes, or straight to a session.
func (p *Provider) afterPassword(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, it interaction, user storage.User) {
	f, err := p.factorsOf(r.Context(), user.ID)
	if err != nil {
		// Fails closed: without knowing the factors, no session.
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	amr := []string{mfa.AMRPassword}
	switch {
	case f.Enrolled():
		// Whoever has a second factor is always asked for it.
		p.pend(&it, user.ID, amr)
		p.showSecondFactor(w, r, ar, it, user, f, false, "", http.StatusOK)
		return
	case p.requiresMFA(ar, user):
		p.pend(&it, user.ID, amr)
		p.showEnrolment(w, r, ar, it, user)
		return
	}
	p.completeSignIn(w, r, ar, it, user.ID, amr)
}

// completeSignIn starts the browser session of a person who proved
// everything they owe (amr: how, RFC 8176) and goes on with the request,
// or back to the account page for a sign-in started there. Nothing before
// it writes a session: a sign-in cancelled or failed half-way leaves none.
func (p *Provider) completeSignIn(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, it interaction, userID string, amr []string) {
	ctx := r.Context()
	now := p.now()
	var sess storage.BrowserSession
	var err error
	if it.StepUpSID != "" {
		// A step-up: the session the person has is renewed (new ID, same
		// sid and clients) with what they proved now.
		sess, err = p.renewSession(r, w, it.StepUpSID, userID, now, amr)
	} else {
		sess, err = p.startSession(ctx, w, r, userID, now, it.Remember, amr)
	}
	if errors.Is(err, errFactorGone) {
		p.renderError(w, r, pageError{Status: http.StatusBadRequest, Message: msgInteractionGone})
		return
	}
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	clientID := "account"
	if ar != nil {
		clientID = ar.GetClient().GetID()
	}
	p.log.InfoContext(ctx, "login", "request_id", requestID(ctx), "user_id", userID, "client_id", clientID, "amr", strings.Join(amr, " "))
	if it.Account {
		http.Redirect(w, r, p.path("/account"), http.StatusSeeOther)
		return
	}
	r = withSession(r, sess)
	it.UserID, it.AuthTime, it.AMR = userID, now.Unix(), amr
	it.PendingUser, it.PendingAMR, it.StepUpSID = "", nil, ""
	p.proceed(w, r, ar, it, false, nil)
}

func (p *Provider) handleConsent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	it, ar, ok := p.resumeForm(w, r, stageConsent)
	if !ok {
		return
	}
	// The person must still be signed in as the user who saw the page.
	s, signedIn, err := p.currentSession(ctx, r)
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	if it.UserID == "" || !signedIn || s.UserID != it.UserID {
		p.renderError(w, r, pageError{Status: http.StatusBadRequest, Message: msgInteractionGone})
		return
	}
	r = withSession(r, s)
	switch r.PostFormValue("decision") {
	case "allow":
		// A consent to remember is written with the code, in its commit.
		var remember *storage.Consent
		if r.PostFormValue("remember") != "" {
			remember = &storage.Consent{UserID: it.UserID, ClientID: ar.GetClient().GetID(), Scopes: consentScopes(ar), GrantedAt: p.now()}
			if p.cfg.ConsentLifespan > 0 {
				remember.ExpiresAt = remember.GrantedAt.Add(p.cfg.ConsentLifespan)
			}
		}
		p.emit(r, audit.ConsentGiven(ar.GetClient().GetID(), it.UserID, consentScopes(ar)))
		p.proceed(w, r, ar, it, true, remember)
	case "deny":
		p.emit(r, audit.ConsentDenied(ar.GetClient().GetID(), it.UserID))
		p.authorizeError(w, r, ar, fosite.ErrAccessDenied.WithHint("The user denied the request."))
	default:
		p.renderError(w, r, pageError{Status: http.StatusBadRequest, Message: msgInteractionGone})
	}
}

// resumeSignIn rebuilds the authorization request a sign-in form
// carries, with the client's ID for logs and audit; an account page
// sign-in has none ("account"). On failure it has already answered.
func (p *Provider) resumeSignIn(w http.ResponseWriter, r *http.Request, it interaction) (fosite.AuthorizeRequester, string, bool) {
	if it.Account {
		return nil, "account", true
	}
	ar, err := p.resume(r, it)
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return nil, "", false
	}
	return ar, ar.GetClient().GetID(), true
}

// resumeForm checks the CSRF token and the sealed interaction of a posted
// form and rebuilds its authorization request. On failure it has already
// answered.
func (p *Provider) resumeForm(w http.ResponseWriter, r *http.Request, stages ...string) (interaction, fosite.AuthorizeRequester, bool) {
	it, ok := p.unsealForm(w, r, stages...)
	if !ok {
		return it, nil, false
	}
	if it.Account {
		p.renderError(w, r, pageError{Status: http.StatusBadRequest, Message: msgInteractionGone})
		return it, nil, false
	}
	ar, err := p.resume(r, it)
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return it, nil, false
	}
	return it, ar, true
}

// unsealForm checks the CSRF token and opens the sealed interaction of a
// posted form. On failure it has already answered.
func (p *Provider) unsealForm(w http.ResponseWriter, r *http.Request, stages ...string) (interaction, bool) {
	csrf, ok := p.checkCSRF(r)
	if !ok {
		p.renderError(w, r, pageError{Status: http.StatusForbidden, Message: msgCSRF})
		return interaction{}, false
	}
	it, err := p.unseal(r.PostFormValue("interaction"), csrf)
	if err == nil && !slices.Contains(stages, it.Stage) {
		err = errBadInteraction // the state of another page's form
	}
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusBadRequest, Message: msgInteractionGone})
		return it, false
	}
	return it, true
}

// authenticate checks a username and password for the login page and the
// password grant alike. An unknown user costs the same hash as a wrong
// password, so timing does not reveal who exists. The attempt is reserved
// against the throttle's budgets before any hash is verified, so checks
// in flight count (see throttle).
func (p *Provider) authenticate(ctx context.Context, ip, username, password string) (storage.User, error) {
	attempt, wait, err := p.throttle.reserve(ctx, username, ip)
	if err != nil {
		return storage.User{}, err // fails closed (budgets.go)
	}
	if attempt == nil {
		return storage.User{}, &throttledError{wait: wait}
	}
	u, err := p.store.GetUserByUsername(ctx, username)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && u.PasswordHash == "") {
		_ = secret.Check(secret.UnknownAccountHash, password)
		attempt.failed()
		return storage.User{}, errUnknownUser
	}
	if err != nil {
		if cerr := attempt.cancel(ctx); cerr != nil {
			p.log.WarnContext(ctx, "sign-in throttle: tokens not given back", "request_id", requestID(ctx), "err", cerr)
		}
		return storage.User{}, err
	}
	if secret.Check(u.PasswordHash, password) != nil {
		attempt.failed()
		return storage.User{}, errBadCredentials
	}
	// A right password of someone who still owes a second factor only
	// gives its own tokens back: it forgives no failure and does not make
	// the address a known one (which would exempt it from the account's
	// budget). Else alternating a right password with wrong codes would
	// buy endless code guesses. The right second factor does both.
	settle := attempt.succeeded
	if f, err := p.store.GetFactors(ctx, u.ID); err == nil && f.Enrolled() {
		settle = attempt.cancel
	} else if err != nil && !errors.Is(err, storage.ErrNotFound) {
		settle = attempt.cancel
	}
	if err := settle(ctx); err != nil {
		// The password was right: the sign-in stands, only the
		// bookkeeping of it is lost.
		p.log.WarnContext(ctx, "sign-in throttle: success not recorded", "request_id", requestID(ctx), "err", err)
	}
	return u, nil
}
