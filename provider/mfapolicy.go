package provider

// Who must prove a second factor, and when: the policy (a group in
// mfa.required_for_groups, a client's require_mfa) and the request
// (acr_values=mfa, an essential acr claim of mfa). A signed-in person
// whose session proved less steps up: the second-factor page without a
// new password, or the enrolment of a factor when they have none.

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/ory/fosite"

	"github.com/smallsso/provider/provider/mfa"
	"github.com/smallsso/provider/storage"
)

// requiresMFA reports whether user must prove a second factor for ar (nil
// for a sign-in on the account page, where only the groups count).
func (p *Provider) requiresMFA(ar fosite.AuthorizeRequester, user storage.User) bool {
	if p.mfaRequiredForUser(user) {
		return true
	}
	if ar == nil {
		return false
	}
	return clientRequiresMFA(ar.GetClient()) || requestAsksMFA(ar)
}

// mfaRequiredForUser reports whether user is in one of the groups of
// mfa.required_for_groups.
func (p *Provider) mfaRequiredForUser(user storage.User) bool {
	for _, g := range p.cfg.MFA.RequiredForGroups {
		if slices.Contains(user.Groups, g) {
			return true
		}
	}
	return false
}

// clientRequiresMFA reports a client with require_mfa, which only the
// operator sets (registration ignores it). Unlike skip_consent it is
// honoured on any record: it only ever asks for more.
func clientRequiresMFA(c fosite.Client) bool {
	cl, ok := c.(*client)
	return ok && cl.rec.RequireMFA
}

// requestAsksMFA reports a request that asks for the mfa context class:
// acr_values naming it (and not password: acr_values lists the classes
// the client accepts, in order of preference, OIDC Core §3.1.2.1, so
// "password mfa" accepts a password), or an essential acr claim in the
// claims parameter that allows mfa and not password.
func requestAsksMFA(ar fosite.AuthorizeRequester) bool {
	form := ar.GetRequestForm()
	if values := strings.Fields(form.Get("acr_values")); slices.Contains(values, mfa.ACRMFA) && !slices.Contains(values, mfa.ACRPassword) {
		return true
	}
	cr, _ := parseClaimsRequest(form) // checked by checkAuthzParams
	c := cr.IDToken["acr"]
	return c != nil && c.Essential && c.allows(mfa.ACRMFA) && !c.allows(mfa.ACRPassword)
}

// stepUp asks a signed-in person (s, user) whose session did not prove a
// second factor for one, when ar needs it or they have one (a session
// from before they enrolled it, or a cookie copied from one, gets no more
// than a sign-in would): the second-factor page if they have a factor,
// the enrolment otherwise. It reports whether it answered. A request with
// prompt=none cannot show a page: login_required.
func (p *Provider) stepUp(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, it interaction, user storage.User, amr []string, prompts fosite.Arguments) bool {
	if slices.Contains(amr, mfa.AMRMulti) {
		return false
	}
	f, err := p.factorsOf(r.Context(), user.ID)
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return true
	}
	if !f.Enrolled() && !p.requiresMFA(ar, user) {
		return false
	}
	if prompts.Has("none") {
		p.authorizeError(w, r, ar, fosite.ErrLoginRequired.WithHint("The user must prove a second factor before this request can be answered."))
		return true
	}
	s, ok, err := p.currentSession(r.Context(), r)
	if err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
		return true
	}
	if !ok || s.UserID != user.ID {
		// No session to step up (it ended during this request): sign in.
		p.showLogin(w, r, ar, it, user.Username, "", http.StatusOK)
		return true
	}
	p.pend(&it, user.ID, amr)
	it.Remember, it.StepUpSID = s.Remember, s.SID
	if f.Enrolled() {
		p.showSecondFactor(w, r, ar, it, user, f, false, "", http.StatusOK)
	} else {
		p.showEnrolment(w, r, ar, it, user)
	}
	return true
}

// errPasswordGrantMFA refuses the password grant to a person who owes a
// second factor (refineTokenError words it as invalid_grant).
var errPasswordGrantMFA = errors.New("password grant refused: a second factor is required")

// passwordGrantAllowed refuses the resource-owner password grant, which
// has no page to ask for a second factor, to a person who has one
// enrolled, is in a group that must use one, or signs in to a client that
// requires one. It runs after the password was found right, so it tells
// nothing about an account to someone without its password.
func (p *Provider) passwordGrantAllowed(ctx context.Context, clientID string, u storage.User) error {
	if p.mfaRequiredForUser(u) {
		return errPasswordGrantMFA
	}
	if clientID != "" {
		c, err := clientRecord(ctx, p.store, clientID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if err == nil && c.RequireMFA {
			return errPasswordGrantMFA
		}
	}
	f, err := p.store.GetFactors(ctx, u.ID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil
	case err != nil:
		return err
	case f.Enrolled():
		return errPasswordGrantMFA
	}
	return nil
}
