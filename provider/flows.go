package provider

// Implicit and hybrid response types (OIDC Core §3.2, §3.3; OAuth 2.0
// Multiple Response Type Encoding Practices) and the response modes
// (query, fragment, OAuth 2.0 Form Post Response Mode).
//
// RFC 9700 §2.1.2 discourages returning tokens from the authorization
// endpoint, so nothing but `code` is ever a default: a client gets an
// implicit or hybrid response type only by listing it in response_types,
// together with the implicit grant (OIDC Registration §2).

import (
	"net/http"

	"github.com/ory/fosite"
)

// responseModes are the ways a response can reach the client; every client
// may pick any of them with response_mode.
var responseModes = []fosite.ResponseModeType{fosite.ResponseModeQuery, fosite.ResponseModeFragment, fosite.ResponseModeFormPost}

func responseModeNames() []string {
	out := make([]string, len(responseModes))
	for i, m := range responseModes {
		out[i] = string(m)
	}
	return out
}

// GetResponseModes implements fosite.ResponseModeClient: without it fosite
// refuses every explicit response_mode.
func (c *client) GetResponseModes() []fosite.ResponseModeType { return responseModes }

// writeFormPostError sends an error to the client as an auto-submitting
// form, with the state and iss every response of ours carries.
func (p *Provider) writeFormPostError(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, err error) {
	v := fosite.ErrorToRFC6749Error(err).ToValues()
	v.Set("state", ar.GetState())
	setIssDropAbsentState(v, p.cfg.Issuer)
	u := *ar.GetRedirectURI()
	u.Fragment = ""
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.Header().Set("Content-Type", "text/html;charset=UTF-8")
	fosite.WriteAuthorizeFormPostResponse(u.String(), v, fosite.GetPostFormHTMLTemplate(r.Context(), p.oauth2.(cappedErrors).Fosite), w)
}

// checkResponseType refuses, before anyone is asked to sign in, what
// fosite would only refuse once the response is built.
func checkResponseType(ar fosite.AuthorizeRequester) error {
	types := ar.GetResponseTypes()
	if ar.GetResponseMode() == fosite.ResponseModeDefault {
		// A pushed request keeps its explicit mode only; the default
		// follows the response type as for any other request.
		if types.ExactOne("code") {
			ar.SetDefaultResponseMode(fosite.ResponseModeQuery)
		} else {
			ar.SetDefaultResponseMode(fosite.ResponseModeFragment)
		}
	}
	switch {
	case isOOB(ar) && !types.ExactOne("code"):
		return fosite.ErrInvalidRequest.WithHint("The out-of-band redirect URI can only show a code: use response_type code.")
	case !types.ExactOne("code") && ar.GetResponseMode() == fosite.ResponseModeQuery:
		// Multiple Response Types §2.1: tokens must not end up in a URL
		// query, where logs and Referer headers keep them.
		return fosite.ErrUnsupportedResponseMode.WithHint("response_mode query cannot carry tokens; use fragment or form_post.")
	case types.Has("id_token") && !ar.GetRequestedScopes().Has("openid"):
		return fosite.ErrInvalidScope.WithHint("The id_token response type needs the openid scope.")
	case types.Has("id_token") && ar.GetRequestForm().Get("nonce") == "":
		// OIDC Core §3.2.2.1, §3.3.2.11: an ID token from the
		// authorization endpoint is replayable without a nonce.
		return fosite.ErrInvalidRequest.WithHint("The nonce parameter is required when an ID token is returned from the authorization endpoint.")
	}
	return nil
}
