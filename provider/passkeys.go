package provider

// Passkeys (WebAuthn): registering them on the account page, and signing
// in with one, alone (a discoverable credential with user verification:
// two factors in one) or as the second factor a person owes after their
// password (interaction.PendingUser). Every ceremony is two requests: the
// script asks for the options (JSON) and gets them with the ceremony's
// state sealed (passkey.States: bound to the browser's CSRF token, five
// minutes), then posts the authenticator's answer with that state in an
// ordinary form. Nothing is written before the answer is verified.

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/ory/fosite"

	"github.com/smallsso/provider/provider/audit"
	"github.com/smallsso/provider/provider/mfa"
	"github.com/smallsso/provider/provider/passkey"
	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/templates"
)

// Messages of passkeys (catalogue keys).
const (
	msgPasskeyAdded     = "Your passkey was added. You can use it to sign in from now on."
	msgPasskeyRemoved   = "The passkey was removed."
	msgPasskeyStale     = "Too much time passed, or the page was open in another window. Please try again."
	msgPasskeyFailed    = "The passkey could not be verified. Please try again, or use another way to sign in."
	msgPasskeyUnknown   = "This passkey is not registered for any account here. It may have been removed; sign in another way."
	msgPasskeyNotYours  = "This passkey belongs to another account. Use one of your own passkeys."
	msgPasskeyNone      = "You have no passkey. Use another way to sign in."
	msgPasskeyCloned    = "This passkey was refused: its security counter went backwards, a sign it may have been copied. Sign in another way and remove it on your account page."
	msgPasskeyExists    = "This passkey is already registered."
	msgPasskeyGone      = "That passkey was already removed."
	msgPasskeyNameLong  = "The name is too long: at most 64 characters."
	msgPasskeySignedOut = "You were signed out. Reload the page and sign in again."
	msgPasskeyPassword  = "Please enter your password to remove the passkey."
	msgPasskeyAddPass   = "Please enter your password to add a passkey."
	msgPasskeyDefault   = "Passkey %s"
)

// passkeyNameMax is the longest name a passkey may have, in characters.
const passkeyNameMax = 64

func init() {
	notices["passkey"] = msgPasskeyAdded
	notices["passkey-removed"] = msgPasskeyRemoved
}

var (
	errPasskeyExists = errors.New("passkey already registered")
	errPasskeyGone   = errors.New("passkey not registered")
	errPasskeyCloned = errors.New("passkey sign counter did not increase")
)

// newPasskeys is the relying party of cfg, or nil when passkeys are off:
// the issuer's host is an IP address and no rp_id names a domain.
func newPasskeys(cfg Config, d Deps) (*webauthn.WebAuthn, *passkey.States, error) {
	wa, err := passkey.New(cfg.Issuer, cfg.MFA.WebAuthnRPID, cfg.OrgName)
	if errors.Is(err, passkey.ErrIPHost) {
		d.Logger.Debug("passkeys are off: the issuer's host is an IP address")
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return wa, passkey.NewStates(d.Secret, d.Now), nil
}

func (p *Provider) passkeysOn() bool { return p.webauthn != nil }

// passkeySignIn is the passkey button of a sign-in page for it.
func (p *Provider) passkeySignIn(it interaction, sealed string) *templates.PasskeySignIn {
	if !p.passkeysOn() {
		return nil
	}
	return &templates.PasskeySignIn{
		Base:          p.basePath,
		OptionsAction: p.path("/login/passkey/options"),
		Action:        p.path("/login/passkey"),
		CSRF:          it.CSRF,
		Interaction:   sealed,
	}
}

// passkeyProblem puts problem (translated) in the account page's
// passkeys section (showAccount's other errors belong to its forms).
func passkeyProblem(problem string) func(*templates.AccountPage) {
	return func(page *templates.AccountPage) {
		if page.Passkeys != nil {
			page.Passkeys.Error = problem
		}
	}
}

// accountPasskeys is the passkeys section of user's account page.
func (p *Provider) accountPasskeys(r *http.Request, userID, csrf string) (*templates.AccountPasskeys, error) {
	if !p.passkeysOn() {
		return nil, nil
	}
	f, err := p.store.GetFactors(r.Context(), userID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	sec := &templates.AccountPasskeys{
		Base:          p.basePath,
		CSRF:          csrf,
		OptionsAction: p.path("/account/passkeys/options"),
		Action:        p.path("/account/passkeys"),
		RemoveAction:  p.path("/account/passkeys/remove"),
		DefaultName:   p.tr(r, msgPasskeyDefault, p.now().UTC().Format(time.DateOnly)),
	}
	for _, pk := range f.Passkeys {
		k := templates.AccountPasskey{
			ID:        base64.RawURLEncoding.EncodeToString(pk.ID),
			Name:      pk.Name,
			CreatedAt: pk.CreatedAt.UTC().Format(time.DateOnly),
		}
		if !pk.LastUsedAt.IsZero() {
			k.LastUsedAt = pk.LastUsedAt.UTC().Format("2006-01-02 15:04 UTC")
		}
		if c, err := passkey.Open(p.mfaKeys, userID, pk); err == nil {
			k.Synced = c.Flags.BackupEligible
		}
		sec.List = append(sec.List, k)
	}
	return sec, nil
}

// passkeyJSONError answers a script's options request that cannot be
// served: message (a catalogue key) is shown on the page as it is.
func (p *Provider) passkeyJSONError(w http.ResponseWriter, r *http.Request, status int, message string, args ...any) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]string{"error": p.tr(r, message, args...)})
}

// passkeyOptions answers the options of a ceremony with its sealed state.
func (p *Provider) passkeyOptions(w http.ResponseWriter, r *http.Request, kind, csrf string, options any, st passkey.State) {
	sealed, err := p.passkeyStates.Seal(kind, csrf, st)
	if err != nil {
		p.log.ErrorContext(r.Context(), "passkey options", "request_id", requestID(r.Context()), "err", err)
		p.passkeyJSONError(w, r, http.StatusInternalServerError, msgInternal)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"options": options, "state": sealed})
}

// passkeyUser is user and their factors as a ceremony sees them.
func (p *Provider) passkeyUser(ctx context.Context, user storage.User) (*passkey.User, storage.Factors, error) {
	f, err := p.store.GetFactors(ctx, user.ID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, f, err
	}
	u, bad, err := passkey.NewUser(p.mfaKeys, user, f)
	if bad > 0 {
		p.log.WarnContext(ctx, "passkeys that do not open (another provider secret?) are ignored", "request_id", requestID(ctx), "user_id", user.ID, "count", bad)
	}
	return u, f, err
}

// handlePasskeyRegisterOptions: POST /account/passkeys/options (csrf).
func (p *Provider) handlePasskeyRegisterOptions(w http.ResponseWriter, r *http.Request) {
	if !p.passkeysOn() {
		p.passkeyJSONError(w, r, http.StatusNotFound, msgNotFound)
		return
	}
	csrf, ok := p.checkCSRF(r)
	if !ok {
		p.passkeyJSONError(w, r, http.StatusForbidden, msgPasskeyStale)
		return
	}
	_, user, signedIn, err := p.accountUser(r)
	if err != nil {
		p.log.ErrorContext(r.Context(), "passkey options", "request_id", requestID(r.Context()), "err", err)
		p.passkeyJSONError(w, r, http.StatusInternalServerError, msgInternal)
		return
	}
	if !signedIn {
		p.passkeyJSONError(w, r, http.StatusUnauthorized, msgPasskeySignedOut)
		return
	}
	p.passkeyRegisterOptions(w, r, user, csrf)
}

// passkeyRegisterOptions are the options to register a passkey for user:
// discoverable, user verification required, none of their passkeys again.
func (p *Provider) passkeyRegisterOptions(w http.ResponseWriter, r *http.Request, user storage.User, csrf string) {
	ctx := r.Context()
	wu, _, err := p.passkeyUser(ctx, user)
	if err != nil {
		p.log.ErrorContext(ctx, "passkey options", "request_id", requestID(ctx), "err", err)
		p.passkeyJSONError(w, r, http.StatusInternalServerError, msgInternal)
		return
	}
	opts := []webauthn.RegistrationOption{
		webauthn.WithExclusions(webauthn.Credentials(wu.Credentials).CredentialDescriptors()),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
	}
	if name := p.brand().OrgName; name != "" {
		opts = append(opts, webauthn.WithRegistrationRelyingPartyName(name))
	}
	creation, session, err := p.webauthn.BeginRegistration(wu, opts...)
	if err != nil {
		p.log.ErrorContext(ctx, "passkey options", "request_id", requestID(ctx), "err", err)
		p.passkeyJSONError(w, r, http.StatusInternalServerError, msgInternal)
		return
	}
	p.passkeyOptions(w, r, passkey.KindRegister, csrf, creation, passkey.State{UserID: user.ID, Session: *session})
}

// handlePasskeyRegister: POST /account/passkeys (csrf, state,
// credential, name, password) registers the passkey the browser created.
//
// It takes the password (checked like a sign-in, throttle included): a
// passkey signs in on its own and outlives a password change, so a
// session alone (a cookie taken from an open browser) must not be enough
// to add one.
func (p *Provider) handlePasskeyRegister(w http.ResponseWriter, r *http.Request) {
	if !p.passkeysOn() {
		p.handleNotFound(w, r)
		return
	}
	ctx := r.Context()
	_, user, ok := p.accountForm(w, r)
	if !ok {
		return
	}
	fail := func(problem string, status int) {
		p.showAccount(w, r, user, "", "", "", status, passkeyProblem(p.tr(r, problem)))
	}
	name, problem := p.passkeyName(r)
	if problem != "" {
		fail(problem, http.StatusBadRequest)
		return
	}
	password := r.PostFormValue("password")
	if password == "" {
		fail(msgPasskeyAddPass, http.StatusBadRequest)
		return
	}
	_, err := p.authenticate(ctx, p.clientIP(r), user.Username, password)
	var throttled *throttledError
	switch {
	case errors.As(err, &throttled):
		p.emit(r, audit.FactorEnrolledRefused(user.ID, audit.MethodPasskey, audit.ReasonThrottled))
		fail(p.tr(r, msgThrottled, minutesToWait(throttled.wait)), http.StatusTooManyRequests)
		return
	case errors.Is(err, errBadCredentials) || errors.Is(err, errUnknownUser):
		p.log.WarnContext(ctx, "passkey registration: wrong password", "request_id", requestID(ctx), "user_id", user.ID)
		p.emit(r, audit.FactorEnrolledRefused(user.ID, audit.MethodPasskey, audit.ReasonBadPassword))
		fail(msgWrongPassword, http.StatusUnauthorized)
		return
	case err != nil:
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	_, codes, err := p.registerPasskey(w, r, user, name, false, fail)
	if err != nil {
		return // answered
	}
	if codes != nil {
		p.showPasskeyCodes(w, r, name, codes, p.path("/account"))
		return
	}
	http.Redirect(w, r, p.path("/account?done=passkey"), http.StatusSeeOther)
}

// passkeyName is the name field, or the default name.
func (p *Provider) passkeyName(r *http.Request) (string, string) {
	name := strings.Join(strings.Fields(r.PostFormValue("name")), " ")
	if name == "" {
		return p.tr(r, msgPasskeyDefault, p.now().UTC().Format(time.DateOnly)), ""
	}
	if utf8.RuneCountInString(name) > passkeyNameMax || !utf8.ValidString(name) {
		return "", msgPasskeyNameLong
	}
	return name, ""
}

// errAnswered is registerPasskey's error once it has shown the problem.
var errAnswered = errors.New("answered")

// registerPasskey verifies the posted registration (state, credential)
// for user and stores the passkey as name. The person's first factor
// comes with recovery codes, returned to be shown once. During a sign-in
// (signIn) it must be their first factor: one they have must be proved
// instead. On failure it has called fail (or shown an error page) and
// returns errAnswered.
func (p *Provider) registerPasskey(w http.ResponseWriter, r *http.Request, user storage.User, name string, signIn bool, fail func(problem string, status int)) (*webauthn.Credential, []string, error) {
	ctx := r.Context()
	csrf, _ := p.checkCSRF(r)
	st, err := p.passkeyStates.Open(passkey.KindRegister, csrf, r.PostFormValue("state"))
	if err != nil || st.UserID != user.ID {
		fail(msgPasskeyStale, http.StatusBadRequest)
		return nil, nil, errAnswered
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes([]byte(r.PostFormValue("credential")))
	if err != nil {
		p.log.WarnContext(ctx, "passkey registration: unreadable answer", "request_id", requestID(ctx), "user_id", user.ID, "err", err)
		fail(msgPasskeyFailed, http.StatusBadRequest)
		return nil, nil, errAnswered
	}
	wu, _, err := p.passkeyUser(ctx, user)
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return nil, nil, errAnswered
	}
	cred, err := p.webauthn.CreateCredential(wu, st.Session, parsed)
	if err != nil {
		p.log.WarnContext(ctx, "passkey registration refused", "request_id", requestID(ctx), "user_id", user.ID, "err", webauthnErr(err))
		fail(msgPasskeyFailed, http.StatusBadRequest)
		return nil, nil, errAnswered
	}
	sealed, err := passkey.Seal(p.mfaKeys, user.ID, cred)
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return nil, nil, errAnswered
	}
	codes, hashes, err := mfa.NewRecoveryCodes(p.mfaKeys, user.ID)
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return nil, nil, errAnswered
	}
	now := p.now().UTC()
	first := false
	err = p.store.UpdateFactors(ctx, user.ID, func(f storage.Factors) (storage.Factors, error) {
		for _, pk := range f.Passkeys {
			if bytes.Equal(pk.ID, cred.ID) {
				return f, errPasskeyExists
			}
		}
		if signIn && f.Enrolled() {
			return f, errFactorExists
		}
		first = !f.Enrolled()
		f.Passkeys = append(slices.Clone(f.Passkeys), storage.Passkey{ID: cred.ID, Name: name, CredentialSealed: sealed, CreatedAt: now})
		if first {
			f.RecoveryCodes = hashes
		}
		f.UpdatedAt = now
		return f, nil
	})
	switch {
	case errors.Is(err, errPasskeyExists):
		fail(msgPasskeyExists, http.StatusConflict)
		return nil, nil, errAnswered
	case errors.Is(err, errFactorExists):
		p.renderError(w, r, pageError{Status: http.StatusConflict, Title: msgAlreadySetUp, Message: msgEnrolledElsewhere})
		return nil, nil, errAnswered
	case errors.Is(err, storage.ErrNotFound):
		p.renderError(w, r, pageError{Status: http.StatusBadRequest, Message: msgInteractionGone})
		return nil, nil, errAnswered
	case err != nil:
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return nil, nil, errAnswered
	}
	p.emit(r, audit.FactorEnrolled(user.ID, audit.MethodPasskey))
	if !signIn {
		p.proveInSession(r, passkey.AMR(cred), mfa.AMRUser)
	}
	if first {
		p.emit(r, audit.RecoveryCodesMade(user.ID, "first_factor"))
	}
	p.log.InfoContext(ctx, "passkey added", "request_id", requestID(ctx), "user_id", user.ID, "synced", cred.Flags.BackupEligible, "first_factor", first)
	if !first {
		return cred, nil, nil
	}
	return cred, codes, nil
}

// showPasskeyCodes shows the recovery codes of a first passkey, once.
func (p *Provider) showPasskeyCodes(w http.ResponseWriter, r *http.Request, name string, codes []string, next string) {
	w.Header().Set("Cache-Control", "no-store")
	p.render(w, r, http.StatusOK, templates.PagePasskeyAdded, templates.PasskeyAddedPage{
		Brand: p.brand(), Name: name, RecoveryCodes: codes, AccountURL: next,
	})
}

// handlePasskeyRemove: POST /account/passkeys/remove (csrf, id, password).
// Like removing an authenticator app, it takes the password (checked
// like a sign-in, throttle included): a session left open somewhere must
// not be enough to strip an account of its factors. Removing the last
// factor removes the recovery codes too.
func (p *Provider) handlePasskeyRemove(w http.ResponseWriter, r *http.Request) {
	if !p.passkeysOn() {
		p.handleNotFound(w, r)
		return
	}
	ctx := r.Context()
	_, user, ok := p.accountForm(w, r)
	if !ok {
		return
	}
	fail := func(problem string, status int) {
		p.showAccount(w, r, user, "", "", "", status, passkeyProblem(problem))
	}
	id, err := base64.RawURLEncoding.DecodeString(r.PostFormValue("id"))
	if err != nil || len(id) == 0 {
		fail(p.tr(r, msgPasskeyGone), http.StatusBadRequest)
		return
	}
	password := r.PostFormValue("password")
	if password == "" {
		fail(p.tr(r, msgPasskeyPassword), http.StatusBadRequest)
		return
	}
	_, err = p.authenticate(ctx, p.clientIP(r), user.Username, password)
	var throttled *throttledError
	switch {
	case errors.As(err, &throttled):
		p.emit(r, audit.FactorRemoved(user.ID, audit.MethodPasskey, audit.ReasonThrottled))
		fail(p.tr(r, msgThrottled, minutesToWait(throttled.wait)), http.StatusTooManyRequests)
		return
	case errors.Is(err, errBadCredentials) || errors.Is(err, errUnknownUser):
		p.log.WarnContext(ctx, "passkey removal: wrong password", "request_id", requestID(ctx), "user_id", user.ID)
		p.emit(r, audit.FactorRemoved(user.ID, audit.MethodPasskey, audit.ReasonBadPassword))
		fail(p.tr(r, msgWrongPassword), http.StatusUnauthorized)
		return
	case err != nil:
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	now := p.now().UTC()
	err = p.store.UpdateFactors(ctx, user.ID, func(f storage.Factors) (storage.Factors, error) {
		i := slices.IndexFunc(f.Passkeys, func(pk storage.Passkey) bool { return bytes.Equal(pk.ID, id) })
		if i < 0 {
			return f, errPasskeyGone
		}
		f.Passkeys = slices.Delete(slices.Clone(f.Passkeys), i, i+1)
		if !f.Enrolled() {
			f.RecoveryCodes = nil
		}
		f.UpdatedAt = now
		return f, nil
	})
	switch {
	case errors.Is(err, errPasskeyGone) || errors.Is(err, storage.ErrNotFound):
		fail(p.tr(r, msgPasskeyGone), http.StatusNotFound)
		return
	case err != nil:
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	p.emit(r, audit.FactorRemoved(user.ID, audit.MethodPasskey, ""))
	p.log.InfoContext(ctx, "passkey removed", "request_id", requestID(ctx), "user_id", user.ID)
	http.Redirect(w, r, p.path("/account?done=passkey-removed"), http.StatusSeeOther)
}

// passkeyObject names a passkey in the audit log: the start of its
// credential ID (public: the browser sends it with every assertion).
func passkeyObject(id []byte) string {
	s := base64.RawURLEncoding.EncodeToString(id)
	if len(s) > 16 {
		s = s[:16]
	}
	return s
}

// webauthnErr is what the log says of a refused ceremony: the library's
// detail, which names the check that failed and carries no key material.
func webauthnErr(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		if pe.DevInfo != "" {
			return pe.Details + ": " + pe.DevInfo
		}
		return pe.Details
	}
	return err.Error()
}

// handlePasskeyLoginOptions: POST /login/passkey/options (csrf,
// interaction). For a person owing a second factor the options list their
// passkeys; otherwise any passkey of this site may answer (discoverable).
func (p *Provider) handlePasskeyLoginOptions(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	it, csrf, ok := p.passkeyInteraction(w, r, passkeyStage)
	if !ok {
		return
	}
	uv := webauthn.WithUserVerification(protocol.VerificationRequired)
	if it.PendingUser == "" {
		assertion, session, err := p.webauthn.BeginDiscoverableLogin(uv)
		if err != nil {
			p.log.ErrorContext(ctx, "passkey options", "request_id", requestID(ctx), "err", err)
			p.passkeyJSONError(w, r, http.StatusInternalServerError, msgInternal)
			return
		}
		p.passkeyOptions(w, r, passkey.KindLogin, csrf, assertion, passkey.State{Session: *session})
		return
	}
	user, err := p.store.GetUser(ctx, it.PendingUser)
	if errors.Is(err, storage.ErrNotFound) {
		p.passkeyJSONError(w, r, http.StatusBadRequest, msgInteractionGone)
		return
	}
	var wu *passkey.User
	if err == nil {
		wu, _, err = p.passkeyUser(ctx, user)
	}
	if err != nil {
		p.log.ErrorContext(ctx, "passkey options", "request_id", requestID(ctx), "err", err)
		p.passkeyJSONError(w, r, http.StatusInternalServerError, msgInternal)
		return
	}
	if len(wu.Credentials) == 0 {
		p.passkeyJSONError(w, r, http.StatusBadRequest, msgPasskeyNone)
		return
	}
	assertion, session, err := p.webauthn.BeginLogin(wu, uv)
	if err != nil {
		p.log.ErrorContext(ctx, "passkey options", "request_id", requestID(ctx), "err", err)
		p.passkeyJSONError(w, r, http.StatusInternalServerError, msgInternal)
		return
	}
	p.passkeyOptions(w, r, passkey.KindLogin, csrf, assertion, passkey.State{UserID: user.ID, Session: *session})
}

// handlePasskeyLogin: POST /login/passkey (csrf, interaction, state,
// credential) checks the assertion and signs the person in: with a
// passkey alone amr is hwk (or swk for a synced passkey), user and mfa;
// as a second factor it adds those to what the password proved.
//
// A sign counter that does not go up (the library's CloneWarning) means
// two copies of the key may exist: the sign-in is refused and logged.
// Passkeys that keep no counter (0, as synced ones do) are not affected.
func (p *Provider) handlePasskeyLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !p.passkeysOn() {
		p.handleNotFound(w, r)
		return
	}
	it, ok := p.unsealForm(w, r, stageLogin, stageSecondFactor)
	if !ok {
		return
	}
	if !passkeyStage(it) {
		p.renderError(w, r, pageError{Status: http.StatusBadRequest, Message: msgInteractionGone})
		return
	}
	ar, clientID, ok := p.resumeSignIn(w, r, it)
	if !ok {
		return
	}
	second := it.PendingUser != ""
	if !second {
		it.Remember = r.PostFormValue("remember") != ""
	}
	var user storage.User
	fail := func(reason, problem string, status int) {
		if reason != "" {
			p.emit(r, audit.SecondFactorFailed(clientID, user.Username, user.ID, audit.MethodPasskey, reason))
		}
		p.passkeyLoginFailed(w, r, ar, it, user, problem, status)
	}
	csrf, _ := p.checkCSRF(r)
	st, err := p.passkeyStates.Open(passkey.KindLogin, csrf, r.PostFormValue("state"))
	if err != nil || st.UserID != it.PendingUser {
		fail("", msgPasskeyStale, http.StatusBadRequest)
		return
	}
	// A ceremony answers once: its challenge is spent before the
	// assertion is checked, so the same post sent again (the back
	// button's "resubmit" after the person signed out) signs nobody in.
	// Passkeys that keep no counter (synced ones) make this the only
	// replay defence.
	now := p.now()
	err = p.store.CreateJTI(ctx, storage.JTI{ID: "webauthn:" + st.Session.Challenge, ExpiresAt: now.Add(passkey.StateTTL + time.Minute)}, now)
	switch {
	case errors.Is(err, storage.ErrAlreadyExists):
		p.log.WarnContext(ctx, "passkey sign-in: ceremony answered again", "request_id", requestID(ctx), "client_id", clientID)
		fail("", msgPasskeyStale, http.StatusBadRequest)
		return
	case err != nil:
		p.renderError(w, r, pageError{Status: http.StatusServiceUnavailable, Message: msgInternal, Err: err})
		return
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes([]byte(r.PostFormValue("credential")))
	if err != nil {
		p.log.WarnContext(ctx, "passkey sign-in: unreadable answer", "request_id", requestID(ctx), "client_id", clientID, "err", err)
		fail("", msgPasskeyFailed, http.StatusBadRequest)
		return
	}
	// Whose passkey: the person owing a second factor, or whoever the
	// authenticator's user handle names.
	userID := it.PendingUser
	if !second {
		userID = string(parsed.Response.UserHandle)
	}
	if userID != "" && len(userID) <= passkey.MaxUserHandle {
		user, err = p.store.GetUser(ctx, userID)
	} else {
		err = storage.ErrNotFound
	}
	switch {
	case errors.Is(err, storage.ErrNotFound) && second:
		p.renderError(w, r, pageError{Status: http.StatusBadRequest, Message: msgInteractionGone})
		return
	case errors.Is(err, storage.ErrNotFound):
		p.log.WarnContext(ctx, "passkey sign-in: unknown user handle", "request_id", requestID(ctx), "client_id", clientID)
		user = storage.User{}
		fail(audit.ReasonUnknownPasskey, msgPasskeyUnknown, http.StatusUnauthorized)
		return
	case err != nil:
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	if second && !p.stepUpSessionLive(r, it) {
		p.renderError(w, r, pageError{Status: http.StatusBadRequest, Message: msgInteractionGone})
		return
	}
	if h := parsed.Response.UserHandle; second && len(h) > 0 && string(h) != user.ID {
		p.log.WarnContext(ctx, "passkey second factor: another account's passkey", "request_id", requestID(ctx), "client_id", clientID, "user_id", user.ID)
		fail(audit.ReasonUnknownPasskey, msgPasskeyNotYours, http.StatusUnauthorized)
		return
	}
	// Every check of a passkey spends the account's sign-in budget, as a
	// password or a code does, and a success gives it back.
	ip := p.clientIP(r)
	attempt, wait, err := p.throttle.reserve(ctx, user.Username, ip)
	if err != nil {
		p.emit(r, audit.SecondFactorFailed(clientID, user.Username, user.ID, audit.MethodPasskey, audit.ReasonError))
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	if attempt == nil {
		p.log.WarnContext(ctx, "passkey sign-in throttled", "request_id", requestID(ctx), "client_id", clientID, "client_ip", ip)
		fail(audit.ReasonThrottled, p.tr(p.pageRequest(r, it), msgThrottled, minutesToWait(wait)), http.StatusTooManyRequests)
		return
	}
	cred, err := p.checkPasskey(ctx, user, second, st, parsed)
	if err == nil {
		err = p.usePasskey(ctx, user.ID, cred, parsed.Response.AuthenticatorData.Counter)
	}
	switch {
	case errors.Is(err, errPasskeyCloned):
		attempt.failed()
		p.log.WarnContext(ctx, "passkey refused: sign counter did not increase (cloned authenticator?)", "request_id", requestID(ctx), "client_id", clientID, "user_id", user.ID, "credential", passkeyObject(parsed.RawID))
		fail(audit.ReasonPasskeyCloned, msgPasskeyCloned, http.StatusUnauthorized)
		return
	case errors.Is(err, errPasskeyGone):
		attempt.failed()
		p.log.WarnContext(ctx, "passkey sign-in: credential not registered", "request_id", requestID(ctx), "client_id", clientID, "user_id", user.ID)
		problem := msgPasskeyUnknown
		if second {
			problem = msgPasskeyNotYours
		}
		fail(audit.ReasonUnknownPasskey, problem, http.StatusUnauthorized)
		return
	case errors.As(err, new(*protocol.Error)):
		attempt.failed()
		p.log.WarnContext(ctx, "passkey refused", "request_id", requestID(ctx), "client_id", clientID, "user_id", user.ID, "err", webauthnErr(err))
		fail(audit.ReasonBadPasskey, msgPasskeyFailed, http.StatusUnauthorized)
		return
	case err != nil:
		if cerr := attempt.cancel(ctx); cerr != nil {
			p.log.WarnContext(ctx, "sign-in throttle: tokens not given back", "request_id", requestID(ctx), "err", cerr)
		}
		p.emit(r, audit.SecondFactorFailed(clientID, user.Username, user.ID, audit.MethodPasskey, audit.ReasonError))
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return
	}
	if err := attempt.succeeded(ctx); err != nil {
		p.log.WarnContext(ctx, "sign-in throttle: success not recorded", "request_id", requestID(ctx), "err", err)
	}
	p.emit(r, audit.SecondFactorSucceeded(clientID, user.Username, user.ID, audit.MethodPasskey))
	amr := mfa.Combine(it.PendingAMR, passkey.AMR(cred), mfa.AMRUser)
	p.completeSignIn(w, r, ar, it, user.ID, amr)
}

// checkPasskey verifies the assertion against user's passkeys: any of
// them for a passkey alone (the user handle named user), those the
// options listed for a second factor.
func (p *Provider) checkPasskey(ctx context.Context, user storage.User, second bool, st passkey.State, parsed *protocol.ParsedCredentialAssertionData) (*webauthn.Credential, error) {
	wu, _, err := p.passkeyUser(ctx, user)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(wu.Credentials, func(c webauthn.Credential) bool { return bytes.Equal(c.ID, parsed.RawID) }) {
		return nil, errPasskeyGone
	}
	if second {
		return p.webauthn.ValidateLogin(wu, st.Session, parsed)
	}
	return p.webauthn.ValidateDiscoverableLogin(func(_, handle []byte) (webauthn.User, error) {
		if string(handle) != user.ID {
			return nil, errPasskeyGone
		}
		return wu, nil
	}, st.Session, parsed)
}

// usePasskey records a verified use of cred: its new sign counter and
// flags, and the time. The counter is compared with the stored one inside
// the update, so two uses racing cannot both pass with the same count.
func (p *Provider) usePasskey(ctx context.Context, userID string, cred *webauthn.Credential, counter uint32) error {
	now := p.now().UTC()
	return p.store.UpdateFactors(ctx, userID, func(f storage.Factors) (storage.Factors, error) {
		i := slices.IndexFunc(f.Passkeys, func(pk storage.Passkey) bool { return bytes.Equal(pk.ID, cred.ID) })
		if i < 0 {
			return f, errPasskeyGone
		}
		stored, err := passkey.Open(p.mfaKeys, userID, f.Passkeys[i])
		if err != nil {
			return f, err
		}
		if cred.Authenticator.CloneWarning || ((counter != 0 || stored.Authenticator.SignCount != 0) && counter <= stored.Authenticator.SignCount) {
			return f, errPasskeyCloned
		}
		stored.Authenticator.SignCount = counter
		stored.Flags = cred.Flags
		sealed, err := passkey.Seal(p.mfaKeys, userID, &stored)
		if err != nil {
			return f, err
		}
		f.Passkeys = slices.Clone(f.Passkeys)
		f.Passkeys[i].CredentialSealed = sealed
		f.Passkeys[i].LastUsedAt = now
		f.UpdatedAt = now
		return f, nil
	})
}

// passkeyLoginFailed shows the page the passkey was tried from again,
// with the problem (a catalogue key or a translated message): the
// second-factor page, or the sign-in page.
func (p *Provider) passkeyLoginFailed(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, it interaction, user storage.User, problem string, status int) {
	switch {
	case it.PendingUser != "":
		f, err := p.factorsOf(r.Context(), it.PendingUser)
		if err != nil {
			p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
			return
		}
		if user.ID == "" {
			if user, err = p.store.GetUser(r.Context(), it.PendingUser); err != nil {
				p.renderError(w, r, pageError{Status: http.StatusBadRequest, Message: msgInteractionGone})
				return
			}
		}
		p.showSecondFactor(w, r, ar, it, user, f, false, problem, status)
	case it.Account:
		p.showAccountLogin(w, r, "", problem, status)
	default:
		p.showLogin(w, r, ar, it, "", problem, status)
	}
}

// passkeyStage says whether it may go to a passkey sign-in: the login
// form's state for a passkey alone, the second-factor page's (with its
// pending person) for a passkey as second factor.
func passkeyStage(it interaction) bool {
	if it.PendingUser == "" {
		return it.Stage == stageLogin
	}
	return it.Stage == stageSecondFactor
}

// passkeyInteraction opens the sealed interaction a page's script posts
// to a ceremony's options endpoint, with the CSRF token it is bound to,
// when accept takes it. On failure it has already answered in JSON.
func (p *Provider) passkeyInteraction(w http.ResponseWriter, r *http.Request, accept func(interaction) bool) (interaction, string, bool) {
	if !p.passkeysOn() {
		p.passkeyJSONError(w, r, http.StatusNotFound, msgNotFound)
		return interaction{}, "", false
	}
	csrf, ok := p.checkCSRF(r)
	if !ok {
		p.passkeyJSONError(w, r, http.StatusForbidden, msgPasskeyStale)
		return interaction{}, "", false
	}
	it, err := p.unseal(r.PostFormValue("interaction"), csrf)
	if err != nil || !accept(it) {
		p.passkeyJSONError(w, r, http.StatusBadRequest, msgInteractionGone)
		return interaction{}, "", false
	}
	return it, csrf, true
}
