package provider

// The second factor at sign-in: after a right password (afterPassword),
// or for a signed-in person whose request needs more than their session
// proved (step-up, mfapolicy.go), the person types a code from their
// authenticator app or a recovery code into the one field named code of
// the second-factor page, which posts to /login/mfa with the sealed
// interaction (it.PendingUser, it.PendingAMR). Nothing is written to the
// sessions before the factor is proved: a sign-in cancelled or failed
// here leaves none.

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/smallsso/provider/provider/audit"
	"github.com/smallsso/provider/provider/mfa"
	"github.com/smallsso/provider/provider/secret"

	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/templates"
)

// Messages of the second-factor page (catalogue keys).
const (
	msgCodeMissing  = "Please enter the code."
	msgCodeWrong    = "That code is not correct. Check the code and try again."
	msgCodeUsed     = "That code was already used. Wait for your authenticator app to show a new one."
	msgRecoveryUsed = "That recovery code was already used. Each recovery code works once."
)

// maxCodeLength bounds the code field: a TOTP code is 6 digits and a
// recovery code 11 characters; anything much longer is not a code.
const maxCodeLength = 64

// errFactorGone is a pending second factor that is no longer there (an
// operator reset the person's factors meanwhile), or a step-up whose
// session ended meanwhile: the person starts again.
var errFactorGone = errors.New("second factor or session gone since the page was shown")

// showSecondFactor asks it.PendingUser (user) for a second factor.
// recovery shows the field as one for a recovery code; problem is a
// catalogue message or one already translated.
func (p *Provider) showSecondFactor(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, it interaction, user storage.User, f storage.Factors, recovery bool, problem string, status int) {
	it.CSRF = p.csrfToken(w, r)
	it.UserID, it.AuthTime, it.AMR, it.EnrolledAMR = "", 0, nil, nil
	if !it.Account {
		r = withUILocales(r, it.Params.Get("ui_locales"))
	}
	if problem != "" {
		problem = p.tr(r, problem)
	}
	if f.TOTP == nil {
		recovery = true // nothing else to type
	}
	page := templates.SecondFactorPage{
		Brand:             p.brand(),
		Action:            p.path("/login/mfa"),
		Interaction:       p.seal(it, stageSecondFactor),
		CSRF:              it.CSRF,
		Username:          user.Username,
		Error:             problem,
		Account:           it.Account,
		StepUp:            it.StepUpSID != "",
		Recovery:          recovery,
		HasTOTP:           f.TOTP != nil,
		HasPasskeys:       len(f.Passkeys) > 0,
		RecoveryCodesLeft: mfa.RecoveryCodesLeft(f),
		PasskeyAction:     p.path("/login/passkey"),
	}
	if ar != nil {
		page.ClientName, page.Client = clientName(ar), clientInfo(ar.GetClient())
	}
	w.Header().Set("Cache-Control", "no-store")
	p.render(w, r, status, templates.PageSecondFactor, page)
}

// handleSecondFactor checks the second-factor form: a code (TOTP or
// recovery) for the pending person, Cancel, or a switch between the two
// kinds of code.
func (p *Provider) handleSecondFactor(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	it, ok := p.unsealForm(w, r, stageSecondFactor)
	if !ok {
		return
	}
	if it.PendingUser == "" {
		p.renderError(w, r, pageError{Status: http.StatusBadRequest, Message: msgInteractionGone})
		return
	}
	ar, clientID, ok := p.resumeSignIn(w, r, it)
	if !ok {
		return
	}
	user, err := p.store.GetUser(ctx, it.PendingUser)
	if errors.Is(err, storage.ErrNotFound) {
		p.renderError(w, r, pageError{Status: http.StatusBadRequest, Message: msgInteractionGone})
		return
	}
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	shownRecovery := r.PostFormValue("shown") == "recovery"
	if r.PostFormValue("cancel") != "" {
		p.emit(r, audit.SecondFactorFailed(clientID, user.Username, user.ID, codeMethod(shownRecovery), audit.ReasonCancelled))
		p.log.InfoContext(ctx, "second factor cancelled", "request_id", requestID(ctx), "client_id", clientID, "user_id", user.ID)
		p.cancelSignIn(w, r, ar, it)
		return
	}
	f, err := p.factorsOf(r.Context(), user.ID)
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	if !f.Enrolled() || !p.stepUpSessionLive(r, it) {
		p.renderError(w, r, pageError{Status: http.StatusBadRequest, Message: msgInteractionGone})
		return
	}
	show := func(recovery bool, problem string, status int) {
		p.showSecondFactor(w, r, ar, it, user, f, recovery, problem, status)
	}
	switch r.PostFormValue("switch") {
	case "recovery":
		show(true, "", http.StatusOK)
		return
	case "totp":
		show(false, "", http.StatusOK)
		return
	}
	code := r.PostFormValue("code")
	if strings.TrimSpace(code) == "" {
		show(shownRecovery, msgCodeMissing, http.StatusBadRequest)
		return
	}
	recovery := mfa.LooksLikeRecoveryCode(code)
	method := codeMethod(recovery)
	if len(code) > maxCodeLength {
		// Not a code of any kind: no need to spend a guess on it.
		show(shownRecovery, msgCodeWrong, http.StatusBadRequest)
		return
	}

	// A code guess spends the account's sign-in budget like a password
	// guess: knowing the password buys no more tries at the code.
	ip := p.clientIP(r)
	attempt, wait, err := p.throttle.reserve(ctx, user.Username, ip)
	if err != nil {
		p.emit(r, audit.SecondFactorFailed(clientID, user.Username, user.ID, method, audit.ReasonError))
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	if attempt == nil {
		p.emit(r, audit.SecondFactorFailed(clientID, user.Username, user.ID, method, audit.ReasonThrottled))
		p.log.WarnContext(ctx, "second factor throttled", "request_id", requestID(ctx), "client_id", clientID, "client_ip", ip)
		show(recovery, p.tr(p.pageRequest(r, it), msgThrottled, minutesToWait(wait)), http.StatusTooManyRequests)
		return
	}
	now := p.now()
	// The check and the record that the code is spent are one atomic
	// update of the person's factors: of two requests racing with the
	// same code, one finds it spent.
	err = p.store.UpdateFactors(ctx, user.ID, func(f storage.Factors) (storage.Factors, error) {
		if !f.Enrolled() {
			return f, errFactorGone
		}
		if recovery {
			next, err := mfa.UseRecoveryCode(p.mfaKeys, f, code, now)
			if err != nil {
				return f, err
			}
			next.UpdatedAt = now
			return next, nil
		}
		if f.TOTP == nil {
			return f, mfa.ErrWrongCode
		}
		key, err := p.mfaKeys.OpenTOTP(user.ID, f.TOTP.SecretSealed)
		if err != nil {
			return f, err
		}
		next, err := mfa.CheckTOTP(f, key, code, now)
		if err != nil {
			return f, err
		}
		next.UpdatedAt = now
		return next, nil
	})
	switch {
	case errors.Is(err, mfa.ErrWrongCode), errors.Is(err, mfa.ErrCodeUsed):
		attempt.failed()
		reason, problem := audit.ReasonBadCode, msgCodeWrong
		if errors.Is(err, mfa.ErrCodeUsed) {
			reason, problem = audit.ReasonCodeUsed, msgCodeUsed
			if recovery {
				problem = msgRecoveryUsed
			}
		}
		p.emit(r, audit.SecondFactorFailed(clientID, user.Username, user.ID, method, reason))
		p.log.WarnContext(ctx, "second factor failed", "request_id", requestID(ctx), "client_id", clientID, "client_ip", ip, "method", method, "reason", reason)
		show(recovery, problem, http.StatusUnauthorized)
		return
	case err != nil:
		if cerr := attempt.cancel(ctx); cerr != nil {
			p.log.WarnContext(ctx, "sign-in throttle: tokens not given back", "request_id", requestID(ctx), "err", cerr)
		}
		if errors.Is(err, errFactorGone) || errors.Is(err, storage.ErrNotFound) {
			p.renderError(w, r, pageError{Status: http.StatusBadRequest, Message: msgInteractionGone})
			return
		}
		p.emit(r, audit.SecondFactorFailed(clientID, user.Username, user.ID, method, audit.ReasonError))
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	if err := attempt.succeeded(ctx); err != nil {
		p.log.WarnContext(ctx, "sign-in throttle: success not recorded", "request_id", requestID(ctx), "err", err)
	}
	p.emit(r, audit.SecondFactorSucceeded(clientID, user.Username, user.ID, method))
	if recovery {
		p.log.InfoContext(ctx, "recovery code used", "request_id", requestID(ctx), "user_id", user.ID, "recovery_codes_left", mfa.RecoveryCodesLeft(f)-1)
	}
	p.completeSignIn(w, r, ar, it, user.ID, mfa.Combine(it.PendingAMR, mfa.AMROTP))
}

func codeMethod(recovery bool) string {
	if recovery {
		return audit.MethodRecoveryCode
	}
	return audit.MethodTOTP
}

// pageRequest is r in the language of the interaction's request.
func (p *Provider) pageRequest(r *http.Request, it interaction) *http.Request {
	if it.Account {
		return r
	}
	return withUILocales(r, it.Params.Get("ui_locales"))
}

// cancelSignIn ends a sign-in part-way through without a session: back to
// the client with access_denied, or to the account page (which asks to
// sign in again). A step-up cancelled leaves the session as it was.
func (p *Provider) cancelSignIn(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, it interaction) {
	if it.Account || ar == nil {
		http.Redirect(w, r, p.path("/account"), http.StatusSeeOther)
		return
	}
	p.authorizeError(w, r, ar, fosite.ErrAccessDenied.WithHint("The user cancelled the sign-in."))
}

// stepUpSessionLive reports whether a step-up's session is still this
// browser's (true when it is no step-up).
func (p *Provider) stepUpSessionLive(r *http.Request, it interaction) bool {
	if it.StepUpSID == "" {
		return true
	}
	s, ok, err := p.currentSession(r.Context(), r)
	return err == nil && ok && s.SID == it.StepUpSID && s.UserID == it.PendingUser
}

// renewSession is the session of a step-up: the browser's session, whose
// sid is sid, replaced by one with a new ID (so a cookie fixed or copied
// before does not carry the stronger session), the same sid and clients
// (so logout still reaches them), the combined amr and authTime (the time
// of the last factor). errFactorGone when that session is gone.
func (p *Provider) renewSession(r *http.Request, w http.ResponseWriter, sid, userID string, authTime time.Time, amr []string) (storage.BrowserSession, error) {
	ctx := r.Context()
	old, ok, err := p.currentSession(ctx, r)
	if err != nil {
		return storage.BrowserSession{}, err
	}
	if !ok || old.SID != sid || old.UserID != userID {
		return storage.BrowserSession{}, errFactorGone
	}
	token := secret.NewToken()
	s := storage.BrowserSession{
		ID:        sessionID(token),
		UserID:    userID,
		SID:       old.SID,
		ClientIDs: old.ClientIDs,
		AuthTime:  authTime,
		AMR:       amr,
		CreatedAt: old.CreatedAt,
		ExpiresAt: authTime.Add(p.cfg.LoginSessionLifespan),
		Remember:  old.Remember,
	}
	txCtx, err := p.store.BeginTx(ctx)
	if err != nil {
		return storage.BrowserSession{}, err
	}
	defer p.store.RollbackTx(txCtx) // a no-op once committed
	// Of two renewals racing, one deletes the old session; the other
	// finds it gone and fails.
	if err := p.store.DeleteBrowserSession(txCtx, old.ID); err != nil {
		p.store.RollbackTx(txCtx)
		if errors.Is(err, storage.ErrNotFound) {
			return storage.BrowserSession{}, errFactorGone
		}
		return storage.BrowserSession{}, err
	}
	if err := p.store.CreateBrowserSession(txCtx, s); err != nil {
		p.store.RollbackTx(txCtx)
		return storage.BrowserSession{}, err
	}
	if err := p.store.CommitTx(txCtx); err != nil {
		return storage.BrowserSession{}, err
	}
	maxAge := 0
	if s.Remember {
		maxAge = int(p.cfg.LoginSessionLifespan / time.Second)
	}
	p.setCookie(w, "session", token, maxAge)
	return s, nil
}
