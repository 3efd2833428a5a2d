package provider

import (
	"encoding/json"
	"net/url"
	"slices"

	"github.com/ory/fosite"

	"github.com/smallsso/provider/provider/mfa"
	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/templates"
)

// scopeInfo says in plain words what each scope lets a client see, for the
// consent page, and which claims it releases (OIDC Core §5.4).
var scopeInfo = map[string]struct {
	description string
	claims      []string
}{
	"openid":         {"Know who you are when you sign in", []string{"sub"}},
	"profile":        {"See your name and username", []string{"name", "given_name", "family_name", "preferred_username", "updated_at"}},
	"email":          {"See your email address", []string{"email", "email_verified"}},
	"groups":         {"See which groups you belong to", []string{"groups"}},
	"address":        {"See your postal address", []string{"address"}},
	"phone":          {"See your phone number", []string{"phone_number", "phone_number_verified"}},
	"offline_access": {"Stay connected while you are away (keep access after you sign out)", nil},
}

func claimsSupported() []string {
	out := []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp", "acr", "amr"}
	for _, s := range []string{"profile", "email", "address", "phone", "groups"} {
		out = append(out, scopeInfo[s].claims...)
	}
	return out
}

// userClaims returns the claims the granted scopes release about u.
func userClaims(u storage.User, granted fosite.Arguments) map[string]any {
	c := map[string]any{"sub": u.ID}
	if granted.Has("profile") {
		setIf(c, "name", u.Name)
		setIf(c, "given_name", u.GivenName)
		setIf(c, "family_name", u.FamilyName)
		setIf(c, "preferred_username", u.Username)
		if !u.UpdatedAt.IsZero() {
			c["updated_at"] = u.UpdatedAt.Unix() // OIDC Core §5.1: seconds, a number
		}
	}
	if granted.Has("phone") && u.PhoneNumber != "" {
		c["phone_number"] = u.PhoneNumber
		c["phone_number_verified"] = u.PhoneNumberVerified
	}
	if granted.Has("address") && u.Address != nil && *u.Address != (storage.Address{}) {
		c["address"] = *u.Address
	}
	if granted.Has("email") && u.Email != "" {
		c["email"] = u.Email
		c["email_verified"] = u.EmailVerified
	}
	if granted.Has("groups") {
		groups := u.Groups
		if groups == nil {
			groups = []string{}
		}
		c["groups"] = groups
	}
	return c
}

func setIf(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

// scopeLines describes requested scopes for the consent page; unknown
// scopes have no description and are shown by name, so nothing is granted
// silently. Descriptions are catalogue keys, translated by the page.
func scopeLines(scopes []string) []templates.ScopeLine {
	out := make([]templates.ScopeLine, 0, len(scopes))
	for _, s := range scopes {
		out = append(out, templates.ScopeLine{Name: s, Description: scopeInfo[s].description})
	}
	return out
}

// acrPassword is the authentication context class of a password alone;
// a second factor earns mfa.ACRMFA. Both are published in
// acr_values_supported; the ID token carries the session's (mfa.ACR) when
// a client asks for acr (acr_values, or the acr claim in the claims
// parameter).
const acrPassword = mfa.ACRPassword

// claimsRequest is the `claims` authorization request parameter (OIDC Core
// §5.5): which individual claims a client wants, in userinfo and in the ID
// token, beyond what its scopes release.
type claimsRequest struct {
	Userinfo map[string]*claimSpec `json:"userinfo"`
	IDToken  map[string]*claimSpec `json:"id_token"`
}

// claimSpec is one requested claim; JSON null (the common form) leaves it
// nil: a voluntary claim with no value constraints.
type claimSpec struct {
	Essential bool  `json:"essential"`
	Value     any   `json:"value"`
	Values    []any `json:"values"`
}

func parseClaimsRequest(form url.Values) (claimsRequest, error) {
	var cr claimsRequest
	raw := form.Get("claims")
	if raw == "" {
		return cr, nil
	}
	if err := json.Unmarshal([]byte(raw), &cr); err != nil {
		return cr, fosite.ErrInvalidRequest.WithHint("The claims parameter must be a JSON object as in OpenID Connect Core 5.5.")
	}
	return cr, nil
}

// allows reports whether the spec accepts the value v: no constraint, or v
// among value/values.
func (c *claimSpec) allows(v string) bool {
	if c == nil || (c.Value == nil && c.Values == nil) {
		return true
	}
	return c.Value == v || slices.Contains(c.Values, any(v))
}

// acrUnmet reports whether the ID token must carry an acr we cannot give:
// an essential acr restricted to values other than ours (§5.5.1.1). An
// essential acr of mfa alone is met by a second factor (mfapolicy.go).
func (cr claimsRequest) acrUnmet() bool {
	c := cr.IDToken["acr"]
	return c != nil && c.Essential && !c.allows(mfa.ACRPassword) && !c.allows(mfa.ACRMFA)
}

// wantsACR reports whether the client asked for the acr claim.
func (cr claimsRequest) wantsACR(form url.Values) bool {
	_, ok := cr.IDToken["acr"]
	return ok || form.Get("acr_values") != ""
}

// subject is the sub an ID token claim request insists on, if any
// (§5.5.1: only a positive answer for that End-User).
func (cr claimsRequest) subject() string {
	if c := cr.IDToken["sub"]; c != nil {
		if v, ok := c.Value.(string); ok {
			return v
		}
	}
	return ""
}

// releasable returns the requested claim names that a scope the client is
// registered for would release: the claims parameter is a finer way to ask
// for what the client may have, never a way around its scopes.
func releasable(requested map[string]*claimSpec, clientScopes []string) []string {
	var out []string
	for name := range requested {
		if s := claimScope(name); s != "" && slices.Contains(clientScopes, s) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// scopes are the scopes whose claims the request asks for, so the consent
// page can show them and a remembered consent must cover them.
func (cr claimsRequest) scopes(clientScopes []string) []string {
	var out []string
	for _, m := range []map[string]*claimSpec{cr.Userinfo, cr.IDToken} {
		for _, name := range releasable(m, clientScopes) {
			if s := claimScope(name); !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	slices.Sort(out)
	return out
}

// claimScope is the scope that releases a user claim, "" for claims that
// are not about the user (sub, acr, auth_time, ...).
func claimScope(name string) string {
	for s, info := range scopeInfo {
		if s != "openid" && slices.Contains(info.claims, name) {
			return s
		}
	}
	return ""
}

// pickClaims returns the named claims u has, whatever the scopes.
func pickClaims(u storage.User, names []string) map[string]any {
	all := userClaims(u, fosite.Arguments{"profile", "email", "address", "phone", "groups"})
	out := make(map[string]any, len(names))
	for _, n := range names {
		if v, ok := all[n]; ok && n != "sub" {
			out[n] = v
		}
	}
	return out
}
