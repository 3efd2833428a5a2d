package provider

// The account page's second factors (templates/account-mfa.html): set up
// an authenticator app (the enrolment page of enrol.go, confirmed with one
// code), remove it with the current password, and make a new generation
// of recovery codes. New recovery codes are shown once, on their own page
// (the answer to a POST, never stored in a form nor a URL): reloading the
// account page does not show them again.

import (
	"errors"
	"net/http"
	"time"

	"github.com/smallsso/provider/provider/audit"
	"github.com/smallsso/provider/provider/mfa"
	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/templates"
)

// Messages of the account page's second factors (catalogue keys).
const (
	msgTOTPOn            = "Your authenticator app is set up. From now on, you type a code from it after your password."
	msgTOTPRemoved       = "Your authenticator app was removed."
	msgCodesRenewed      = "Your new recovery codes are ready. The old ones no longer work."
	msgPasswordToRemove  = "Please type your current password to remove the app."
	msgNoFactorForCodes  = "Set up a second step first: recovery codes stand in for it."
	recoveryCodesLowMark = 3
)

// The ?done= notices of this file, beside account.go's.
func init() {
	notices["totp"] = msgTOTPOn
	notices["totp-removed"] = msgTOTPRemoved
	notices["codes"] = msgCodesRenewed
}

// errNoFactor: recovery codes were asked for by a person with no factor.
var errNoFactor = errors.New("no second factor enrolled")

// accountFactors fills the account page's second-factor section.
func (p *Provider) accountFactors(r *http.Request, user storage.User, page *templates.AccountPage) error {
	f, err := p.factorsOf(r.Context(), user.ID)
	if err != nil {
		return err
	}
	page.TOTPAction = p.path("/account/totp")
	page.TOTPRemoveAction = p.path("/account/totp/remove")
	page.RecoveryCodesAction = p.path("/account/recovery-codes")
	if f.TOTP != nil {
		page.TOTPEnrolled = true
		page.TOTPSince = f.TOTP.CreatedAt.UTC().Format(time.DateOnly)
	}
	page.HasFactor = f.Enrolled()
	page.RecoveryCodesLeft = mfa.RecoveryCodesLeft(f)
	page.RecoveryCodesLow = page.HasFactor && page.RecoveryCodesLeft <= recoveryCodesLowMark
	return nil
}

// showAccountMFAError shows the account page with problem (a catalogue
// message, or one already translated) in the second-factor section.
func (p *Provider) showAccountMFAError(w http.ResponseWriter, r *http.Request, user storage.User, problem, field string, status int) {
	problem = p.tr(r, problem)
	p.showAccount(w, r, user, "", "", "", status, func(page *templates.AccountPage) {
		page.MFAError, page.MFAErrorField = problem, field
	})
}

// renderAccountEnrol shows the enrolment page of the account page;
// problem is already translated.
func (p *Provider) renderAccountEnrol(w http.ResponseWriter, r *http.Request, user storage.User, secret, sealed, problem string, status int) {
	page, err := p.totpEnrolPage(user, secret, sealed)
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	page.Action, page.CSRF = p.path("/account/totp/confirm"), p.csrfToken(w, r)
	page.Account, page.CancelURL, page.Error = true, p.path("/account"), problem
	p.render(w, r, status, templates.PageTOTPEnrol, page)
}

// handleAccountTOTP starts setting up an authenticator app: a new key,
// kept nowhere but in the page until a code confirms it.
func (p *Provider) handleAccountTOTP(w http.ResponseWriter, r *http.Request) {
	_, user, ok := p.accountForm(w, r)
	if !ok {
		return
	}
	f, err := p.factorsOf(r.Context(), user.ID)
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	if f.TOTP != nil {
		p.showAccountMFAError(w, r, user, msgTOTPExists, "", http.StatusConflict)
		return
	}
	secret, sealed, err := p.newTOTPCandidate(user)
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	p.renderAccountEnrol(w, r, user, secret, sealed, "", http.StatusOK)
}

// handleAccountTOTPConfirm checks the set-up's code and stores the app;
// a first factor brings recovery codes, shown once.
func (p *Provider) handleAccountTOTPConfirm(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	_, user, ok := p.accountForm(w, r)
	if !ok {
		return
	}
	sealed := r.PostFormValue("key")
	secret, sealedBytes, err := p.openTOTPCandidate(user.ID, sealed)
	if err != nil {
		p.showAccountMFAError(w, r, user, msgEnrolGone, "", http.StatusBadRequest)
		return
	}
	step, problem, err := p.checkEnrolCode(r, user.Username, secret)
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	if problem != nil {
		p.renderAccountEnrol(w, r, user, secret, sealed, problem.message, problem.status)
		return
	}
	codes, err := p.enrolTOTP(ctx, user.ID, sealedBytes, step, false)
	switch {
	case errors.Is(err, mfa.ErrTOTPExists):
		p.showAccountMFAError(w, r, user, msgTOTPExists, "", http.StatusConflict)
		return
	case errors.Is(err, storage.ErrNotFound):
		http.Redirect(w, r, p.path("/account"), http.StatusSeeOther) // deleted meanwhile
		return
	case err != nil:
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	p.emit(r, audit.FactorEnrolled(user.ID, audit.MethodTOTP))
	p.log.InfoContext(ctx, "authenticator app enrolled", "request_id", requestID(ctx), "user_id", user.ID, "during", "account")
	p.proveInSession(r, mfa.AMROTP)
	if codes == nil {
		http.Redirect(w, r, p.path("/account?done=totp"), http.StatusSeeOther)
		return
	}
	p.emit(r, audit.RecoveryCodesMade(user.ID, "first_factor"))
	p.showAccountRecoveryCodes(w, r, codes, false, "totp")
}

// showAccountRecoveryCodes shows a new generation of codes, once; done is
// the notice the account page shows after.
func (p *Provider) showAccountRecoveryCodes(w http.ResponseWriter, r *http.Request, codes []string, regenerated bool, done string) {
	p.render(w, r, http.StatusOK, templates.PageRecoveryCodes, templates.RecoveryCodesPage{
		Brand:       p.brand(),
		Codes:       codes,
		ContinueURL: p.path("/account?done=" + done),
		Regenerated: regenerated,
	})
}

// handleAccountTOTPRemove removes the authenticator app once the current
// password is right (checked like a sign-in, throttle included); with the
// last factor go the recovery codes, which only stood in for it.
func (p *Provider) handleAccountTOTPRemove(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	_, user, ok := p.accountForm(w, r)
	if !ok {
		return
	}
	const field = "totp-password"
	password := r.PostFormValue("password")
	if password == "" {
		p.showAccountMFAError(w, r, user, msgPasswordToRemove, field, http.StatusBadRequest)
		return
	}
	_, err := p.authenticate(ctx, p.clientIP(r), user.Username, password)
	if err != nil {
		p.emit(r, audit.FactorRemoved(user.ID, audit.MethodTOTP, signInReason(err)))
	}
	var throttled *throttledError
	switch {
	case errors.As(err, &throttled):
		p.log.WarnContext(ctx, "authenticator app removal throttled", "request_id", requestID(ctx), "user_id", user.ID)
		p.showAccountMFAError(w, r, user, p.tr(r, msgThrottled, minutesToWait(throttled.wait)), field, http.StatusTooManyRequests)
		return
	case errors.Is(err, errBadCredentials):
		p.log.WarnContext(ctx, "authenticator app removal: wrong password", "request_id", requestID(ctx), "user_id", user.ID)
		p.showAccountMFAError(w, r, user, msgWrongPassword, field, http.StatusUnauthorized)
		return
	case err != nil:
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	now := p.now().UTC()
	removed := false
	err = p.store.UpdateFactors(ctx, user.ID, func(f storage.Factors) (storage.Factors, error) {
		removed = f.TOTP != nil
		f.TOTP = nil
		if !f.Enrolled() {
			f.RecoveryCodes = nil
		}
		f.UpdatedAt = now
		return f, nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		http.Redirect(w, r, p.path("/account"), http.StatusSeeOther)
		return
	}
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	if removed {
		p.emit(r, audit.FactorRemoved(user.ID, audit.MethodTOTP, ""))
		p.log.InfoContext(ctx, "authenticator app removed", "request_id", requestID(ctx), "user_id", user.ID)
	}
	http.Redirect(w, r, p.path("/account?done=totp-removed"), http.StatusSeeOther)
}

// handleAccountRecoveryCodes replaces the recovery codes with a new
// generation, shown once; the old ones stop working.
func (p *Provider) handleAccountRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	_, user, ok := p.accountForm(w, r)
	if !ok {
		return
	}
	codes, stored, err := mfa.NewRecoveryCodes(p.mfaKeys, user.ID)
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	now := p.now().UTC()
	hadCodes := false
	err = p.store.UpdateFactors(ctx, user.ID, func(f storage.Factors) (storage.Factors, error) {
		if !f.Enrolled() {
			return f, errNoFactor
		}
		hadCodes = len(f.RecoveryCodes) > 0
		f.RecoveryCodes, f.UpdatedAt = stored, now
		return f, nil
	})
	switch {
	case errors.Is(err, errNoFactor):
		p.showAccountMFAError(w, r, user, msgNoFactorForCodes, "", http.StatusBadRequest)
		return
	case errors.Is(err, storage.ErrNotFound):
		http.Redirect(w, r, p.path("/account"), http.StatusSeeOther)
		return
	case err != nil:
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	p.emit(r, audit.RecoveryCodesMade(user.ID, "regenerated"))
	p.log.InfoContext(ctx, "recovery codes regenerated", "request_id", requestID(ctx), "user_id", user.ID)
	p.showAccountRecoveryCodes(w, r, codes, hadCodes, "codes")
}
