package clientspec

import (
	"slices"
	"strings"
)

// responseTypeGrants is every response type a client may register, in its
// canonical spelling, with the grants it needs (OIDC Registration §2: the
// response_types and grant_types a client registers must agree).
var responseTypeGrants = []responseTypeRule{
	{"code", []string{"authorization_code"}},
	{"id_token", []string{"implicit"}},
	{"id_token token", []string{"implicit"}},
	{"code id_token", []string{"authorization_code", "implicit"}},
	{"code token", []string{"authorization_code", "implicit"}},
	{"code id_token token", []string{"authorization_code", "implicit"}},
}

type responseTypeRule struct {
	responseType string
	grants       []string
}

// ResponseTypes is the discovery list, in the order above.
func ResponseTypes() []string {
	out := make([]string, len(responseTypeGrants))
	for i, rt := range responseTypeGrants {
		out[i] = rt.responseType
	}
	return out
}

// CheckResponseTypes puts each registered response type in its canonical
// spelling (the words of a response type are a set: "token id_token" is
// "id_token token") and checks that grants allow each one.
func CheckResponseTypes(types, grants []string) ([]string, error) {
	out := make([]string, 0, len(types))
	usesImplicit := false
	for _, raw := range types {
		words := strings.Fields(raw)
		slices.Sort(words)
		i := slices.IndexFunc(responseTypeGrants, func(rt responseTypeRule) bool {
			want := strings.Fields(rt.responseType)
			slices.Sort(want)
			return slices.Equal(words, want)
		})
		if i < 0 {
			return nil, Invalidf("response type %q is not supported (supported: %s)", raw, strings.Join(ResponseTypes(), ", "))
		}
		rt := responseTypeGrants[i]
		if slices.Contains(out, rt.responseType) {
			return nil, Invalidf("response type %q is listed twice", rt.responseType)
		}
		for _, g := range rt.grants {
			if !slices.Contains(grants, g) {
				why := ""
				if g == "implicit" {
					why = ": it returns tokens from the authorization endpoint"
				}
				return nil, Invalidf("response type %q needs the %s grant in grant_types%s", rt.responseType, g, why)
			}
		}
		usesImplicit = usesImplicit || slices.Contains(rt.grants, "implicit")
		out = append(out, rt.responseType)
	}
	if slices.Contains(grants, "implicit") && !usesImplicit {
		return nil, Invalidf("the implicit grant is used only through response_types; list the ones the client uses (id_token, id_token token, code id_token, code token, code id_token token)")
	}
	return out, nil
}
