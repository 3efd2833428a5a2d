package oidcctest

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// RequestObject is ConvertAuthorizationEndpointRequestToRequestObject: the
// request's parameters as JWT claims. Without a key it is unsigned (alg
// none, empty signature); with one it is signed with the key's algorithm
// and kid and carries iss = client_id, aud = issuer, iat and exp, as the
// suite's signed request objects do.
func (op *OP) RequestObject(t testing.TB, r *Request, key *jose.JSONWebKey) string {
	t.Helper()
	claims := map[string]any{}
	for k, v := range r.Params {
		claims[k] = v[0]
	}
	if key == nil {
		payload, err := json.Marshal(claims)
		if err != nil {
			t.Fatal(err)
		}
		enc := base64.RawURLEncoding
		return enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + enc.EncodeToString(payload) + "."
	}
	now := op.now()
	claims["iss"], claims["aud"] = r.Client.ID, op.Issuer
	claims["iat"], claims["exp"] = now.Unix(), now.Add(5*time.Minute).Unix()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: key},
		(&jose.SignerOptions{}).WithType("oauth-authz-req+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// requiredDuplicates are the parameters the suite repeats outside a
// request object (OIDC Core §6.1, RFC 6749 §3.1.2.3).
var requiredDuplicates = []string{"response_type", "client_id", "scope", "redirect_uri"}

// Outer is the request the browser carries for a request object
// (AbstractBuildRequestObjectRedirectToAuthorizationEndpoint): name
// ("request" or "request_uri") = value, the required duplicates of r, and
// any parameter of outer that r has not or has with another value. State,
// nonce and the rest travel only inside the object. The checks of the
// response still use r.
func (r *Request) Outer(name, value string, outer url.Values) *Request {
	p := url.Values{name: {value}}
	for _, k := range requiredDuplicates {
		if v := r.Params.Get(k); v != "" {
			p.Set(k, v)
		}
	}
	for k, v := range outer {
		if !slices.Equal(r.Params[k], v) {
			p[k] = v
		}
	}
	return &Request{Client: r.Client, Params: p, Post: r.Post}
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
