package provider

// The pages of a sign-in part-way through (interaction.PendingUser): the
// second factor a person owes and the enrolment of one they must have.

import (
	"net/http"

	"github.com/ory/fosite"

	"github.com/smallsso/provider/storage"
)

// showEnrolment asks a person who must have a second factor and has none
// (mfa.required_for_groups, a client's require_mfa, acr_values=mfa) to
// enrol one now; it.PendingUser is user.ID, it.PendingAMR what they
// proved. Completing it ends in completeSignIn (enrol.go).
func (p *Provider) showEnrolment(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, it interaction, user storage.User) {
	p.showTOTPEnrolment(w, r, ar, it, user)
}
