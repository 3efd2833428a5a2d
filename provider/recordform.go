package provider

import (
	"net/url"

	"github.com/ory/fosite"

	"github.com/smallsso/provider/storage"
)

// recordForm is the part of a request's form that a record of kind keeps:
// what is read back from the record, nothing more.
//
// Access and refresh records keep none. fosite hands them over sanitized
// to its default parameters (grant_type, response_type, scope, client_id:
// Request.Sanitize with an empty list in fosite v0.49.0's oauth2 handlers),
// and no reader of an access or refresh record, fosite's refresh and
// introspection handlers or ours, reads its form: the refresh grant builds
// the new request from the presented one and takes only the ID, session,
// scopes and audience of the stored one, and ID tokens read grant_type,
// max_age, prompt, nonce and id_token_hint from the request being
// answered or from the OIDC record.
//
// The records of an authorization under way keep what fosite sanitized
// them to, which is what their readers need: the code its redirect_uri
// (checked at the exchange), the PKCE record code_challenge and
// code_challenge_method, the OIDC record nonce, max_age, prompt,
// acr_values and id_token_hint (read when the ID token is issued), the
// pushed request its whole form less the client's credentials
// (CreatePARSession).
func recordForm(kind storage.TokenKind, form url.Values) map[string][]string {
	switch kind {
	case storage.KindAccessToken, storage.KindRefreshToken:
		return nil
	}
	return form
}

// keepExpiry says whether a record of kind keeps the session's expiry of
// token type tt. Access and refresh records drop the authorization code's
// and the pushed request's: they are read only from those records, and a
// grant's later sessions are cloned from its refresh record.
func keepExpiry(kind storage.TokenKind, tt fosite.TokenType) bool {
	switch kind {
	case storage.KindAccessToken, storage.KindRefreshToken:
		return tt != fosite.AuthorizeCode && tt != fosite.PushedAuthorizeRequestContext
	}
	return true
}
