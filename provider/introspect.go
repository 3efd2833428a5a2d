package provider

import (
	"slices"

	"github.com/ory/fosite"

	"github.com/smallsso/provider/provider/clientspec"
)

// mayIntrospect is who may learn about a token at /introspect: the client
// it was issued to, a client its audience names (a resource server the
// token is meant for), and a client the operator declared with
// `introspect: any`. Anyone else is told the token is inactive, exactly as
// for an unknown token, so introspection reveals nothing about other
// clients' tokens (RFC 7662 §4).
func mayIntrospect(caller fosite.Client, ar fosite.Requester, tu fosite.TokenUse) bool {
	if c, ok := caller.(*client); ok && c.rec.Introspect == clientspec.IntrospectAny {
		return true
	}
	owner := ar.GetClient()
	if owner == nil {
		return false
	}
	if owner.GetID() == caller.GetID() {
		return true
	}
	aud := ar.GetGrantedAudience()
	if tu == fosite.AccessToken {
		if c, ok := owner.(*client); ok && c.rec.AccessTokenFormat == accessTokenFormatJWT {
			// A JWT access token says its audience itself, defaults included.
			aud = tokenAudience(owner, aud)
		}
	}
	return slices.Contains(aud, caller.GetID())
}
