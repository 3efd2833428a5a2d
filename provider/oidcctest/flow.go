package oidcctest

import (
	"net/url"
	"testing"

	"github.com/smallsso/provider/provider/providertest"
)

// Flow is one whole authorization as OIDCCServerTest runs it.
type Flow struct {
	Request  *Request
	Result   *Result
	Response Response
	// AuthIDToken is the authorization endpoint's ID token (implicit and
	// hybrid), IDToken the token endpoint's (code and hybrid).
	AuthIDToken, IDToken *IDToken
	// Token is the token endpoint's response for flows with a code.
	Token *TokenResponse
	// AccessToken is the token the flow ended with: the token endpoint's,
	// or the fragment's for response types without a code.
	AccessToken string
	// Userinfo is the userinfo response for AccessToken (GET), when there
	// is an access token and the scope has openid.
	Userinfo map[string]any
}

// Run performs the suite's happy flow for r: the authorization request
// with the person signing in as login, the callback checks, the
// authorization endpoint ID token with at_hash/c_hash required as its
// response type demands, the code exchange with the token endpoint ID
// token, VerifyIdTokenSubConsistentHybridFlow, and one userinfo call.
// tokenParams are added to the code exchange (code_verifier, say).
func (op *OP) Run(t testing.TB, b *providertest.Browser, r *Request, login *Login, tokenParams url.Values) *Flow {
	t.Helper()
	return op.Finish(t, r, op.Authorize(t, b, r, login), tokenParams)
}

// Finish is the part of Run after the authorization request, for flows
// whose browser request differs from the request the response is checked
// against (request objects): the callback checks, the authorization
// endpoint ID token, the code exchange and one userinfo call.
func (op *OP) Finish(t testing.TB, r *Request, res *Result, tokenParams url.Values) *Flow {
	t.Helper()
	f := &Flow{Request: r, Result: res}
	f.Response = op.CheckSuccess(t, r, res)
	resp := f.Response
	if resp.IDToken != "" {
		f.AuthIDToken = op.CheckIDToken(t, r.Client, resp.IDToken, IDTokenCheck{
			Nonce: r.Nonce(), AccessToken: resp.AccessToken, Code: resp.Code,
			RequireAtHash: r.Has("token"), RequireCHash: r.Has("code"),
		})
	}
	f.AccessToken = resp.AccessToken
	if resp.Code != "" {
		f.Token = op.Exchange(t, r.Client, resp.Code, tokenParams)
		f.AccessToken = f.Token.Str("access_token")
		f.IDToken = op.CheckIDToken(t, r.Client, f.Token.Str("id_token"), IDTokenCheck{
			Nonce: r.Nonce(), AccessToken: f.AccessToken, Code: resp.Code,
		})
		if f.AuthIDToken != nil && f.AuthIDToken.Str("sub") != f.IDToken.Str("sub") {
			t.Fatalf("VerifyIdTokenSubConsistentHybridFlow: sub %q then %q", f.AuthIDToken.Str("sub"), f.IDToken.Str("sub"))
		}
	}
	if f.AccessToken != "" {
		f.Userinfo = op.CheckUserinfo(t, op.Userinfo(t, f.AccessToken, "get"), f.Subject())
	}
	return f
}

// Subject is the sub of the flow's latest ID token, "" without one.
func (f *Flow) Subject() string {
	switch {
	case f.IDToken != nil:
		return f.IDToken.Str("sub")
	case f.AuthIDToken != nil:
		return f.AuthIDToken.Str("sub")
	}
	return ""
}

// LatestIDToken is the ID token a logout request would send as
// id_token_hint: the token endpoint's if there was one.
func (f *Flow) LatestIDToken() *IDToken {
	if f.IDToken != nil {
		return f.IDToken
	}
	return f.AuthIDToken
}
