package provider

// Enrolling an authenticator app (TOTP, RFC 6238). Two doors lead to the
// same page (templates.PageTOTPEnrol): a sign-in part-way through, for a
// person who must have a second factor and has none (showEnrolment, then
// POST /login/enrol, the recovery codes, POST /login/continue), and the
// account page (accountmfa.go).
//
// Nothing is stored until the person typed one right code: the candidate
// key travels in the page's form, sealed for that person with the
// provider secret (mfa.Keys.SealTOTP), and is shown in clear only as the
// QR code and the text the person copies. The code that proves it is
// recorded as the factor's last step, so it cannot sign anyone in again,
// and code guesses spend the account's sign-in throttle budget.

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"html/template"
	"image/png"
	"net/http"
	"strings"

	"github.com/ory/fosite"

	"github.com/smallsso/provider/provider/audit"
	"github.com/smallsso/provider/provider/mfa"
	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/templates"
)

// Messages of the enrolment pages (catalogue keys).
const (
	msgEnrolNoCode    = "Please type the 6-digit code the app shows."
	msgEnrolWrongCode = "That code is not right. Type the code the app shows now; if it still fails, check that the time on your phone is set automatically."
	msgEnrolGone      = "This set-up expired or was already finished. Please start again."
	msgTOTPExists     = "An authenticator app is already set up for your account."
	// msgEnrolledElsewhere: the person got a factor meanwhile (another
	// tab, an operator); signing in again asks for it.
	msgAlreadySetUp      = "Already set up"
	msgEnrolledElsewhere = "A second step was set up for your account meanwhile. Please go back to the application and sign in again."
)

var (
	// errFactorExists: a sign-in's enrolment found a factor the person
	// must prove instead.
	errFactorExists = errors.New("a second factor is already enrolled")
)

// totpLabel is the issuer name authenticator apps show beside the account.
func (p *Provider) totpLabel() string { return mfa.IssuerLabel(p.brand().OrgName, p.cfg.Issuer) }

// newTOTPCandidate makes a fresh key for user: its base32 secret and the
// secret sealed for them, as the page carries it (base64url).
func (p *Provider) newTOTPCandidate(user storage.User) (secret, sealed string, err error) {
	key, err := mfa.NewTOTPKey(p.totpLabel(), user.Username)
	if err != nil {
		return "", "", err
	}
	b, err := p.mfaKeys.SealTOTP(user.ID, key.Secret())
	if err != nil {
		return "", "", err
	}
	return key.Secret(), base64.RawURLEncoding.EncodeToString(b), nil
}

// openTOTPCandidate opens a key newTOTPCandidate sealed for userID.
func (p *Provider) openTOTPCandidate(userID, sealed string) (string, []byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(b) == 0 {
		return "", nil, errors.New("no sealed key")
	}
	secret, err := p.mfaKeys.OpenTOTP(userID, b)
	if err != nil {
		return "", nil, err
	}
	return secret, b, nil
}

// totpEnrolPage is the page data showing secret to user: the QR code of
// its otpauth:// URI as an inline PNG and the key in blocks of four.
func (p *Provider) totpEnrolPage(user storage.User, secret, sealed string) (templates.TOTPEnrolPage, error) {
	key, err := mfa.TOTPKeyFromSecret(p.totpLabel(), user.Username, secret)
	if err != nil {
		return templates.TOTPEnrolPage{}, err
	}
	img, err := key.Image(200, 200)
	if err != nil {
		return templates.TOTPEnrolPage{}, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return templates.TOTPEnrolPage{}, err
	}
	return templates.TOTPEnrolPage{
		Brand:    p.brand(),
		Key:      sealed,
		QR:       template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())),
		Secret:   groupKey(secret),
		Username: user.Username,
		// HasWebAuthn: the passkeys work sets it where passkeys are on.
	}, nil
}

// groupKey writes a base32 key in blocks of four for reading and typing.
func groupKey(secret string) string {
	secret = strings.TrimRight(secret, "=")
	var b strings.Builder
	for i, c := range secret {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// enrolCodeProblem is why a code did not enrol a key: a message for the
// page and its status.
type enrolCodeProblem struct {
	message string // already translated
	status  int
}

// checkEnrolCode checks the code typed on the enrolment page against
// secret, spending one try of username's sign-in throttle, and returns
// the time step it matched. A problem is the person's to fix; an error
// is ours.
func (p *Provider) checkEnrolCode(r *http.Request, username, secret string) (int64, *enrolCodeProblem, error) {
	ctx := r.Context()
	code := mfa.NormalizeCode(r.PostFormValue("code"))
	if code == "" {
		return 0, &enrolCodeProblem{p.tr(r, msgEnrolNoCode), http.StatusBadRequest}, nil
	}
	attempt, wait, err := p.throttle.reserve(ctx, username, p.clientIP(r))
	if err != nil {
		return 0, nil, err
	}
	if attempt == nil {
		p.log.WarnContext(ctx, "enrolment code throttled", "request_id", requestID(ctx), "client_ip", p.clientIP(r))
		return 0, &enrolCodeProblem{p.tr(r, msgThrottled, minutesToWait(wait)), http.StatusTooManyRequests}, nil
	}
	step, err := mfa.MatchTOTP(secret, code, p.now())
	if err != nil {
		attempt.failed()
		p.log.WarnContext(ctx, "enrolment code wrong", "request_id", requestID(ctx), "client_ip", p.clientIP(r))
		return 0, &enrolCodeProblem{p.tr(r, msgEnrolWrongCode), http.StatusBadRequest}, nil
	}
	// A right code gives its try back: it was no guess.
	if err := attempt.cancel(ctx); err != nil {
		p.log.WarnContext(ctx, "sign-in throttle: tokens not given back", "request_id", requestID(ctx), "err", err)
	}
	return step, nil, nil
}

// enrolTOTP stores the authenticator app of userID, its key sealed and the
// step of the code that proved it as used. With it come ten recovery codes
// when it is the person's first factor (or they had none left over):
// codes is then the new generation to show, once. signIn refuses any
// enrolled factor (errFactorExists: a person who has one must prove it,
// not add another); otherwise only an authenticator app already there is
// refused (mfa.ErrTOTPExists).
func (p *Provider) enrolTOTP(ctx context.Context, userID string, sealed []byte, step int64, signIn bool) (codes []string, err error) {
	now := p.now().UTC()
	fresh, stored, err := mfa.NewRecoveryCodes(p.mfaKeys, userID)
	if err != nil {
		return nil, err
	}
	err = p.store.UpdateFactors(ctx, userID, func(f storage.Factors) (storage.Factors, error) {
		codes = nil // fn may run again
		if signIn && f.Enrolled() {
			return f, errFactorExists
		}
		f, withCodes, err := mfa.WithTOTP(f, sealed, step, stored, now)
		if withCodes {
			codes = fresh
		}
		return f, err
	})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// factorsOf is userID's factors; none yet is the empty record.
func (p *Provider) factorsOf(ctx context.Context, userID string) (storage.Factors, error) {
	f, err := p.store.GetFactors(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Factors{UserID: userID}, nil
	}
	return f, err
}

// showEnrolment asks a person who must have a second factor and has none
// (mfa.required_for_groups, a client's require_mfa, acr_values=mfa) to
// set up an authenticator app now; it.PendingUser is user.ID,
// it.PendingAMR what they proved. The page posts to /login/enrol.
func (p *Provider) showTOTPEnrolment(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, it interaction, user storage.User) {
	secret, sealed, err := p.newTOTPCandidate(user)
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	p.renderSignInEnrol(w, r, ar, it, user, secret, sealed, "", http.StatusOK)
}

// renderSignInEnrol shows the enrolment page of a sign-in; problem is
// already translated.
func (p *Provider) renderSignInEnrol(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, it interaction, user storage.User, secret, sealed, problem string, status int) {
	page, err := p.totpEnrolPage(user, secret, sealed)
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	it.CSRF = p.csrfToken(w, r)
	it.EnrolledAMR = nil
	r = withUILocales(r, it.Params.Get("ui_locales"))
	page.Action, page.CSRF, page.Interaction = p.path("/login/enrol"), it.CSRF, p.seal(it, stageEnrol)
	page.Required, page.Error = true, problem
	page.HasWebAuthn = p.passkeysOn() // passkeyenrol.go
	if ar != nil {
		page.ClientName, page.Client = clientName(ar), clientInfo(ar.GetClient())
	}
	w.Header().Set("Cache-Control", "no-store")
	p.render(w, r, status, templates.PageTOTPEnrol, page)
}

// pendingForm opens the form of a sign-in part-way through: the CSRF
// token, the sealed interaction with its pending person, the
// authorization request (none for the account page's sign-in) and the
// person. On failure it has already answered.
func (p *Provider) pendingForm(w http.ResponseWriter, r *http.Request, stage string) (interaction, fosite.AuthorizeRequester, storage.User, bool) {
	it, ok := p.unsealForm(w, r, stage)
	if !ok {
		return it, nil, storage.User{}, false
	}
	gone := func() {
		p.renderError(w, r, pageError{Status: http.StatusBadRequest, Message: msgInteractionGone})
	}
	// A step-up's enrolment belongs to the session it steps up: signed
	// out meanwhile, the page left open on a shared computer must not
	// let the next person add their factor to the account.
	if it.PendingUser == "" || !p.stepUpSessionLive(r, it) {
		gone()
		return it, nil, storage.User{}, false
	}
	var ar fosite.AuthorizeRequester
	if !it.Account {
		var err error
		if ar, err = p.resume(r, it); err != nil {
			p.authorizeError(w, r, ar, err)
			return it, nil, storage.User{}, false
		}
	}
	user, err := p.store.GetUser(r.Context(), it.PendingUser)
	if errors.Is(err, storage.ErrNotFound) {
		gone() // deleted since the password was checked
		return it, nil, user, false
	}
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return it, nil, user, false
	}
	return it, ar, user, true
}

// handleLoginEnrol checks the code of the sign-in's enrolment page; a
// right one stores the authenticator app and goes on to the recovery
// codes (a first factor) or straight to the session.
func (p *Provider) handleLoginEnrol(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	it, ar, user, ok := p.pendingForm(w, r, stageEnrol)
	if !ok {
		return
	}
	r = withUILocales(r, it.Params.Get("ui_locales"))
	sealed := r.PostFormValue("key")
	secret, sealedBytes, err := p.openTOTPCandidate(user.ID, sealed)
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusBadRequest, Message: msgInteractionGone})
		return
	}
	step, problem, err := p.checkEnrolCode(r, user.Username, secret)
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	if problem != nil {
		// The same key again: the person's app already holds it.
		p.renderSignInEnrol(w, r, ar, it, user, secret, sealed, problem.message, problem.status)
		return
	}
	codes, err := p.enrolTOTP(ctx, user.ID, sealedBytes, step, true)
	switch {
	case errors.Is(err, errFactorExists):
		p.renderError(w, r, pageError{Status: http.StatusConflict, Title: msgAlreadySetUp, Message: msgEnrolledElsewhere})
		return
	case errors.Is(err, storage.ErrNotFound):
		p.renderError(w, r, pageError{Status: http.StatusBadRequest, Message: msgInteractionGone})
		return
	case err != nil:
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	p.emit(r, audit.FactorEnrolled(user.ID, audit.MethodTOTP))
	p.log.InfoContext(ctx, "authenticator app enrolled", "request_id", requestID(ctx), "user_id", user.ID, "during", "sign-in")
	if codes != nil {
		p.emit(r, audit.RecoveryCodesMade(user.ID, "first_factor"))
	}
	p.afterSignInEnrolment(w, r, ar, it, user.ID, codes, mfa.AMROTP)
}

// afterSignInEnrolment goes on once a pending person enrolled a factor
// and proved it (methods: the amr it earned): to the recovery codes, shown
// once, whose Continue posts to /login/continue, or, with no new codes, to
// the session.
func (p *Provider) afterSignInEnrolment(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, it interaction, userID string, codes []string, methods ...string) {
	if len(codes) == 0 {
		it.EnrolledAMR = nil
		p.completeSignIn(w, r, ar, it, userID, mfa.Combine(it.PendingAMR, methods...))
		return
	}
	it.CSRF = p.csrfToken(w, r)
	it.EnrolledAMR = methods
	w.Header().Set("Cache-Control", "no-store")
	p.render(w, r, http.StatusOK, templates.PageRecoveryCodes, templates.RecoveryCodesPage{
		Brand:       p.brand(),
		Codes:       codes,
		Action:      p.path("/login/continue"),
		CSRF:        it.CSRF,
		Interaction: p.seal(it, stageContinue),
	})
}

// handleLoginContinue ends a sign-in whose person enrolled a factor and
// saw their recovery codes.
func (p *Provider) handleLoginContinue(w http.ResponseWriter, r *http.Request) {
	it, ar, user, ok := p.pendingForm(w, r, stageContinue)
	if !ok {
		return
	}
	if len(it.EnrolledAMR) == 0 {
		// A sign-in that has proved no factor yet cannot skip it here.
		p.renderError(w, r, pageError{Status: http.StatusBadRequest, Message: msgInteractionGone})
		return
	}
	// The factor must still be there: an operator's `users mfa reset`
	// since the codes were shown ends this sign-in too.
	f, err := p.factorsOf(r.Context(), user.ID)
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	if !f.Enrolled() {
		p.renderError(w, r, pageError{Status: http.StatusBadRequest, Message: msgInteractionGone})
		return
	}
	methods := it.EnrolledAMR
	it.EnrolledAMR = nil
	p.completeSignIn(w, r, ar, it, user.ID, mfa.Combine(it.PendingAMR, methods...))
}
