package provider

// A passkey as the second factor a person must enrol during a sign-in
// (showEnrolment: mfa.required_for_groups, a client's require_mfa,
// acr_values=mfa): the enrolment page offers it beside the authenticator
// app. Registering it for the pending person proves it (the authenticator
// verified them), so the sign-in goes on like an app's enrolment: the
// recovery codes, then the session (afterSignInEnrolment).

import (
	"net/http"

	"github.com/smallsso/provider/provider/mfa"
	"github.com/smallsso/provider/provider/passkey"
)

// handleLoginPasskeyEnrolOptions: POST /login/passkey/enrol/options
// (csrf, interaction): registration options for the pending person.
func (p *Provider) handleLoginPasskeyEnrolOptions(w http.ResponseWriter, r *http.Request) {
	it, csrf, ok := p.passkeyInteraction(w, r, func(it interaction) bool {
		return it.PendingUser != "" && it.Stage == stageEnrol && p.stepUpSessionLive(r, it)
	})
	if !ok {
		return
	}
	user, err := p.store.GetUser(r.Context(), it.PendingUser)
	if err != nil {
		p.passkeyJSONError(w, r, http.StatusBadRequest, msgInteractionGone)
		return
	}
	p.passkeyRegisterOptions(w, r, user, csrf)
}

// handleLoginPasskeyEnrol: POST /login/passkey/enrol (csrf, interaction,
// state, credential, name) registers the pending person's first passkey
// and goes on with their sign-in.
func (p *Provider) handleLoginPasskeyEnrol(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !p.passkeysOn() {
		p.handleNotFound(w, r)
		return
	}
	it, ar, user, ok := p.pendingForm(w, r, stageEnrol)
	if !ok {
		return
	}
	r = p.pageRequest(r, it)
	fail := func(problem string, status int) {
		secret, sealed, err := p.newTOTPCandidate(user)
		if err != nil {
			p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
			return
		}
		p.renderSignInEnrol(w, r, ar, it, user, secret, sealed, p.tr(r, problem), status)
	}
	name, problem := p.passkeyName(r)
	if problem != "" {
		fail(problem, http.StatusBadRequest)
		return
	}
	cred, codes, err := p.registerPasskey(w, r, user, name, true, fail)
	if err != nil {
		return // answered
	}
	p.log.InfoContext(ctx, "passkey enrolled", "request_id", requestID(ctx), "user_id", user.ID, "during", "sign-in")
	p.afterSignInEnrolment(w, r, ar, it, user.ID, codes, passkey.AMR(cred), mfa.AMRUser)
}
