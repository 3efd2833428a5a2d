package provider

// The OpenID Connect parameters of an authorization request (OIDC Core
// §3.1.2.1, §5.5): prompt, max_age, id_token_hint, login_hint, claims and
// acr_values. fosite's OpenIDConnectRequestValidator owns the rules for
// prompt, max_age and id_token_hint and runs them when it issues the code;
// proceed runs the same validator earlier, with the session the grant
// would get, so that a login it would demand is asked for instead of
// failing the request at the end.

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ory/fosite"
	"github.com/ory/fosite/token/jwt"

	"github.com/smallsso/provider/provider/mfa"

	"github.com/smallsso/provider/storage"
)

// anonymousSubject stands in for the subject while nobody is signed in, so
// the validator can still refuse a malformed request (an unknown prompt
// value, an id_token_hint we did not sign) before the login page is shown.
// It is never a user ID (those are random base32) and never issued.
const anonymousSubject = "-"

// amrPassword is the RFC 8176 method of our only login: a password.
const amrPassword = "pwd"

// errUnmetAuthentication is OpenID Connect Core Unmet Authentication
// Requirements 1.0: the essential acr asked for is one we cannot provide.
var errUnmetAuthentication = &fosite.RFC6749Error{
	ErrorField:       "unmet_authentication_requirements",
	DescriptionField: "The authentication requirements of the request cannot be met.",
	CodeField:        400,
}

// checkAuthzParams refuses, before anyone is asked to sign in, what the
// request itself gets wrong: a claims parameter that is not the JSON of
// OIDC Core §5.5, or an essential acr we do not offer.
func checkAuthzParams(ar fosite.AuthorizeRequester) error {
	cr, err := parseClaimsRequest(ar.GetRequestForm())
	if err != nil {
		return err
	}
	if cr.acrUnmet() {
		return errUnmetAuthentication.WithHintf("The authentication context classes offered are %s.", strings.Join(mfa.ACRValues, " and "))
	}
	return nil
}

// missingResponseType reports an authorization request without
// response_type. It is answered with a page, not a redirect: nothing says
// the client expects an answer at its redirect URI in a form it can read
// (OIDC Core §3.1.2.6 leaves the choice; the conformance suite accepts both).
func missingResponseType(ar fosite.AuthorizeRequester, err error) bool {
	return ar != nil && errors.Is(err, fosite.ErrUnsupportedResponseType) && ar.GetRequestForm().Get("response_type") == ""
}

// needsLogin decides whether the person must sign in (again) before the
// request can be answered: nobody is signed in, prompt=login or max_age
// asks for a newer login, or the client expects another account
// (id_token_hint, or a sub value in the claims parameter). fresh says the
// person signed in during this very request; a fresh login that still
// does not satisfy the request is an error, not another login page.
func (p *Provider) needsLogin(ctx context.Context, ar fosite.AuthorizeRequester, userID string, authTime, requestedAt time.Time, fresh bool) (bool, error) {
	form := ar.GetRequestForm()
	subject, at := userID, authTime
	if subject == "" {
		subject, at = anonymousSubject, requestedAt
	}
	ar.SetSession(userSession(p.cfg.Issuer, subject, "", at, requestedAt))
	need := userID == ""
	err := p.oidcValidator.ValidatePrompt(ctx, ar)
	switch {
	case err == nil:
	case errors.Is(err, fosite.ErrLoginRequired) && !fresh:
		need = true
	default:
		return false, err
	}
	cr, _ := parseClaimsRequest(form) // checked by checkAuthzParams
	otherAccount := userID != "" && cr.subject() != "" && cr.subject() != userID
	if fresh {
		if otherAccount {
			return false, fosite.ErrLoginRequired.WithHint("The signed-in user is not the one the claims parameter asks for.")
		}
		return false, nil
	}
	prompts := fosite.Arguments(strings.Fields(form.Get("prompt")))
	// prompt=login means a login now, even within the second of the last
	// one, which the validator's time comparison cannot tell apart; and
	// max_age=0 is prompt=login (OIDC Core §3.1.2.1), while the validator
	// only enforces positive values.
	if prompts.Has("login") || form.Get("max_age") == "0" || otherAccount {
		need = true
	}
	return need, nil
}

// loginHint is the username to pre-fill on the login page: login_hint as
// sent, or else the account an id_token_hint names.
func (p *Provider) loginHint(ctx context.Context, form url.Values) string {
	if h := form.Get("login_hint"); h != "" {
		return h
	}
	raw := form.Get("id_token_hint")
	if raw == "" {
		return ""
	}
	tok, err := p.oidcValidator.Strategy.Decode(ctx, raw)
	var ve *jwt.ValidationError
	if tok == nil || (err != nil && !(errors.As(err, &ve) && ve.Has(jwt.ValidationErrorExpired))) {
		return ""
	}
	sub, _ := tok.Claims["sub"].(string)
	if sub == "" {
		return ""
	}
	u, err := p.store.GetUser(ctx, sub)
	if err != nil {
		return ""
	}
	return u.Username
}

// consentScopes are the scopes the person is asked to allow: those
// requested, and those whose claims the claims parameter asks for.
func consentScopes(ar fosite.AuthorizeRequester) []string {
	scopes := slices.Clone([]string(ar.GetRequestedScopes()))
	cr, _ := parseClaimsRequest(ar.GetRequestForm()) // checked by checkAuthzParams
	for _, s := range cr.scopes(ar.GetClient().GetScopes()) {
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	return scopes
}

// applyClaimsRequest puts into the grant's session what the claims
// parameter and acr_values ask for: the id_token claims go into the ID
// token now, the userinfo claim names are kept for userinfo (OIDC Core
// §5.5), and acr when requested.
func applyClaimsRequest(sess *session, u storage.User, ar fosite.AuthorizeRequester, amr []string) {
	form := ar.GetRequestForm()
	cr, _ := parseClaimsRequest(form) // checked by checkAuthzParams
	clientScopes := ar.GetClient().GetScopes()
	for k, v := range pickClaims(u, releasable(cr.IDToken, clientScopes)) {
		sess.Claims.Extra[k] = v
	}
	sess.UserinfoClaims = releasable(cr.Userinfo, clientScopes)
	if cr.wantsACR(form) {
		sess.Claims.AuthenticationContextClassReference = mfa.ACR(amr)
	}
	sess.Claims.AuthenticationMethodsReferences = slices.Clone(amr)
}

// printableError keeps error_description within what RFC 6749 §4.1.2.1
// allows (%x20-21 / %x23-5B / %x5D-7E): fosite turns " into ' itself, but
// hints may echo request input (a prompt value, an audience) with any
// character. It also bounds it to maxErrorDescription bytes: fosite's
// hints quote request values (an audience, a scope), and a description
// goes into a redirect's Location or a JSON body, so that no parameter
// can make either as long as itself. Description and hint are folded into
// one description, which is what fosite sends anyway.
func printableError(err error) *fosite.RFC6749Error {
	rfc := fosite.ErrorToRFC6749Error(err)
	// The description with the (translated) hint, without the debug text:
	// that is never sent to clients (SendDebugMessagesToClients is off)
	// and the log has the original error. When both do not fit, the hint
	// is what says what happened (a throttle's "try again in ..."), and
	// fosite's generic sentence for the error code gives way to it.
	desc := rfc.WithExposeDebug(false).GetDescription()
	if len(desc) > maxErrorDescription {
		if hint := rfc.WithExposeDebug(false).WithDescription("").GetDescription(); strings.TrimSpace(hint) != "" {
			desc = strings.TrimSpace(hint)
		}
	}
	// A new error rather than a copy: a copy would keep the hint's
	// translation ID and arguments, from which fosite rebuilds the hint.
	e := &fosite.RFC6749Error{
		ErrorField:       rfc.ErrorField,
		DescriptionField: capDescription(printableASCII(desc)),
		CodeField:        rfc.CodeField,
	}
	return e.WithWrap(rfc)
}

// maxErrorDescription bounds every error_description the provider sends.
const maxErrorDescription = 256

// capDescription cuts s to at most maxErrorDescription bytes, on a rune
// boundary, marking the cut with "...".
func capDescription(s string) string {
	if len(s) <= maxErrorDescription {
		return s
	}
	cut := maxErrorDescription - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func printableASCII(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '"':
			return '\''
		case r == '\\' || r < 0x20 || r > 0x7e:
			return '?'
		}
		return r
	}, s)
}
