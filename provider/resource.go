package provider

// RFC 8707 resource indicators. fosite knows only its own `audience`
// parameter, so `resource` values are folded into it before fosite parses
// the request: one list, gated by the client's registered audiences, ends
// up as the token's granted audience (and the aud of a JWT access token).
//
// At the token endpoint a `resource` narrows nothing for the
// authorization_code and refresh_token grants: the token gets the audience
// of the grant (fosite copies it), and `resource` is only checked against
// the client's registration.

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ory/fosite"
)

// audienceMatching decides whether a client may ask for an audience: a
// registered URL also covers the paths below it.
var audienceMatching fosite.AudienceMatchingStrategy = fosite.DefaultAudienceMatchingStrategy

// errInvalidTarget is RFC 8707 §2's error; fosite has no such error.
var errInvalidTarget = &fosite.RFC6749Error{
	ErrorField:       "invalid_target",
	DescriptionField: "The requested resource is invalid, unknown, or malformed.",
	CodeField:        http.StatusBadRequest,
}

// foldResources adds the resource values of form to its audience values.
func foldResources(form url.Values) {
	res := form["resource"]
	if len(res) == 0 {
		return
	}
	aud := fosite.GetAudiences(form)
	for _, r := range res {
		if r != "" && !slices.Contains(aud, r) {
			aud = append(aud, r)
		}
	}
	form["audience"] = aud
}

// targetError answers invalid_target for resource indicators that are
// malformed or not registered for the client c, where fosite says
// invalid_request (an audience it refuses) or nothing at all (a fragment
// its URL matching ignores). Any other outcome err stands. The hints do
// not quote the value: it is the client's own and may be long.
func targetError(c fosite.Client, form url.Values, err error) error {
	if c == nil || (err != nil && !errors.Is(err, fosite.ErrInvalidRequest)) {
		return err
	}
	for _, r := range form["resource"] {
		u, perr := url.Parse(r)
		if perr != nil || !u.IsAbs() || strings.ContainsAny(r, "# ") {
			return errInvalidTarget.WithHint("A resource must be an absolute URI without a fragment.")
		}
		if audienceMatching(c.GetAudience(), []string{r}) != nil {
			return errInvalidTarget.WithHint("The client is not registered for a requested resource.")
		}
	}
	return err
}
