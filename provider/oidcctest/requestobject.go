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
