package provider

import (
	"github.com/ory/fosite"

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
	out := []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp"}
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
