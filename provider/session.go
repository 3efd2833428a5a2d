package provider

import (
	"slices"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// session is what fosite fills and stores with every grant: the openid
// default session (subject, ID token claims, expiries) plus the claims the
// authorization request's `claims` parameter asked userinfo to return (OIDC
// Core §5.5), which outlive the request itself. Userinfo reads the user
// afresh; only the names travel.
type session struct {
	openid.DefaultSession
	UserinfoClaims []string `json:"userinfo_claims,omitempty"`
}

// Clone keeps the type: fosite clones the session on refresh, and the
// embedded DefaultSession's Clone would drop UserinfoClaims.
func (s *session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	return &session{
		DefaultSession: *s.DefaultSession.Clone().(*openid.DefaultSession),
		UserinfoClaims: slices.Clone(s.UserinfoClaims),
	}
}

func newSession() *session {
	return &session{DefaultSession: openid.DefaultSession{
		Claims:  &jwt.IDTokenClaims{Extra: map[string]interface{}{}},
		Headers: &jwt.Headers{Extra: map[string]interface{}{}},
	}}
}

// userSession is the session for a grant made by a signed-in user.
func userSession(issuer, subject, username string, authTime, requestedAt time.Time) *session {
	s := newSession()
	s.Subject = subject
	s.Username = username
	s.Claims.Subject = subject
	s.Claims.Issuer = issuer
	s.Claims.AuthTime = authTime.UTC().Truncate(time.Second)
	s.Claims.RequestedAt = requestedAt.UTC().Truncate(time.Second)
	return s
}
