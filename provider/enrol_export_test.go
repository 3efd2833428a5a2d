package provider

import (
	"net/http"
	"net/http/httptest"

	"github.com/smallsso/provider/provider/mfa"
)

// EnrolmentPageForTest answers the authorization request authURL as the
// sign-in does for a person who must set up a second factor and has none:
// userID's password was right (PendingAMR [pwd]), and the enrolment page
// follows. csrf is the CSRF cookie of the browser that will post the
// page's form. The sign-in's own door to it (afterPassword's policy) is
// the sign-in work's; this one lets the enrolment be tested on its own.
func (p *Provider) EnrolmentPageForTest(authURL, userID, csrf string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, authURL, nil)
	r.AddCookie(&http.Cookie{Name: p.cookieName("csrf"), Value: csrf})
	w := httptest.NewRecorder()
	if err := r.ParseForm(); err != nil {
		panic(err)
	}
	markAbsentState(r.Form)
	ar, err := p.oauth2.NewAuthorizeRequest(r.Context(), r)
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return w
	}
	user, err := p.store.GetUser(r.Context(), userID)
	if err != nil {
		panic(err)
	}
	it := interaction{Params: ar.GetRequestForm(), RequestedAt: p.now().Unix()}
	p.pend(&it, user.ID, []string{mfa.AMRPassword})
	p.showEnrolment(w, r, ar, it, user)
	return w
}
