package provider

import (
	"time"

	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// newSession is the session fosite fills and stores with every grant. The
// openid default session carries the subject, ID token claims and expiries,
// which is everything we need; userinfo reads the user afresh.
func newSession() *openid.DefaultSession {
	return &openid.DefaultSession{
		Claims:  &jwt.IDTokenClaims{Extra: map[string]interface{}{}},
		Headers: &jwt.Headers{Extra: map[string]interface{}{}},
	}
}

// userSession is the session for a grant made by a signed-in user.
func userSession(issuer, subject, username string, authTime, requestedAt time.Time) *openid.DefaultSession {
	s := newSession()
	s.Subject = subject
	s.Username = username
	s.Claims.Subject = subject
	s.Claims.Issuer = issuer
	s.Claims.AuthTime = authTime.UTC().Truncate(time.Second)
	s.Claims.RequestedAt = requestedAt.UTC().Truncate(time.Second)
	return s
}
