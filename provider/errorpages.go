package provider

// What an error page tells a person: what happened, in plain words, and
// what they can do about it. The OAuth error code and the request ID stay
// on the page for whoever they ask for help; the protocol's own wording
// (fosite's descriptions and hints, library messages) goes to the log
// only.

import (
	"net/http"

	"github.com/ory/fosite"
)

// Titles and messages of the sign-in request errors, by what went wrong.
const (
	msgTitleUnknownApp   = "Unknown application"
	msgTitleBadRequest   = "Sign-in request rejected"
	msgTitleUnavailable  = "Sign-in is not available right now"
	msgTitleSignInNeeded = "Please sign in"

	msgUnknownApp       = "The application that sent you here is not registered with this sign-in service, so you cannot sign in to it here."
	msgBadScope         = "The application asked for access it is not allowed to ask for."
	msgAppNotAllowed    = "The application is not allowed to sign people in this way."
	msgUnsupportedKind  = "The application asked for a kind of sign-in that this service does not offer."
	msgBadRequestObject = "The application's sign-in request could not be read or verified."
	msgSignInNeeded     = "The application asked to sign you in without showing a page, but you need to sign in first."
	msgSignInCancelled  = "The sign-in was cancelled."
)

// What a person can do, shown under the message.
const (
	adviceGoBack        = "Please go back to the application you came from and try again."
	adviceTellOwner     = "Please go back to the application. If this happens again, its sign-in settings need fixing: tell the people who run it, and give them the error code and request ID below."
	adviceUnknownApp    = "Please check that you followed a link from the right application, or tell the people who run the application: it has to be registered here before anyone can sign in to it."
	adviceSignInFromApp = "Please go back to the application and sign in from there."
	adviceTryLater      = "If it keeps happening, contact your organisation's support and give them the request ID below."
)

// authorizePage is what the page of a rejected authorization request
// says for the OAuth error code code.
func authorizePage(code string) (title, message, advice string) {
	switch code {
	case fosite.ErrInvalidClient.ErrorField:
		return msgTitleUnknownApp, msgUnknownApp, adviceUnknownApp
	case fosite.ErrInvalidScope.ErrorField:
		return msgTitleBadRequest, msgBadScope, adviceTellOwner
	case fosite.ErrUnauthorizedClient.ErrorField:
		return msgTitleBadRequest, msgAppNotAllowed, adviceTellOwner
	case fosite.ErrUnsupportedResponseType.ErrorField, fosite.ErrUnsupportedResponseMode.ErrorField,
		fosite.ErrRequestNotSupported.ErrorField, fosite.ErrRequestURINotSupported.ErrorField,
		fosite.ErrRegistrationNotSupported.ErrorField, fosite.ErrUnsupportedGrantType.ErrorField:
		return msgTitleBadRequest, msgUnsupportedKind, adviceTellOwner
	case fosite.ErrInvalidRequestURI.ErrorField, fosite.ErrInvalidRequestObject.ErrorField:
		return msgTitleBadRequest, msgBadRequestObject, adviceTellOwner
	case fosite.ErrLoginRequired.ErrorField, fosite.ErrConsentRequired.ErrorField,
		fosite.ErrInteractionRequired.ErrorField, "account_selection_required":
		return msgTitleSignInNeeded, msgSignInNeeded, adviceSignInFromApp
	case fosite.ErrAccessDenied.ErrorField:
		return msgTitleBadRequest, msgSignInCancelled, adviceGoBack
	case fosite.ErrServerError.ErrorField, fosite.ErrTemporarilyUnavailable.ErrorField:
		return msgTitleUnavailable, msgInternal, adviceTryLater
	}
	// invalid_request (a missing or unregistered redirect_uri, say) and
	// anything not named above.
	return msgTitleBadRequest, msgBadAuthorize, adviceTellOwner
}

// defaultAdvice is what a page suggests when its error names nothing more
// specific; messages that already say what to do need nothing more.
func defaultAdvice(e pageError) string {
	switch e.Message {
	case msgInternal, msgCSRF, msgInteractionGone, msgCrossOrigin:
		if e.Status >= http.StatusInternalServerError {
			return adviceTryLater
		}
		return ""
	}
	if e.Status >= http.StatusInternalServerError {
		return adviceTryLater
	}
	return adviceGoBack
}
