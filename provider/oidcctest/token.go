package oidcctest

import (
	"encoding/json"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TokenResponse is one answer of the token endpoint.
type TokenResponse struct {
	Status int
	Header http.Header
	Body   map[string]any
}

// Str returns a string member of the body, "" when absent.
func (tr *TokenResponse) Str(name string) string { s, _ := tr.Body[name].(string); return s }

// TokenRequest posts form to the token endpoint with the client's
// authentication applied, as the suite's client authentication steps do.
func (op *OP) TokenRequest(t testing.TB, c *Client, form url.Values) *TokenResponse {
	t.Helper()
	endpoint := op.Endpoint(t, "token_endpoint")
	form = maps.Clone(form) // Set below replaces values, never appends
	if form == nil {
		form = url.Values{}
	}
	basic := false
	switch c.AuthMethod {
	case "", "client_secret_basic":
		basic = true
	case "client_secret_post":
		form.Set("client_id", c.ID)
		form.Set("client_secret", c.Secret)
	case "private_key_jwt", "client_secret_jwt":
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		aud := endpoint
		if c.AssertionAudience != "" {
			aud = c.AssertionAudience
		}
		form.Set("client_assertion", op.ClientAssertion(t, c, aud))
	case "none":
		form.Set("client_id", c.ID)
	default:
		t.Fatalf("unknown auth method %q", c.AuthMethod)
	}
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if basic {
		// RFC 6749 §2.3.1: form-encode both before Basic.
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	status, hdr, body := op.do(t, req)
	tr := &TokenResponse{Status: status, Header: hdr}
	if err := json.Unmarshal(body, &tr.Body); err != nil {
		t.Fatalf("token endpoint: HTTP %d, body is not a JSON object: %q", status, body)
	}
	return tr
}

// ClientAssertion is CreateClientAuthenticationAssertionClaims signed with
// the client's key (private_key_jwt) or secret (client_secret_jwt):
// iss = sub = client_id, aud = audience, a 20-character jti, exp = iat+60.
func (op *OP) ClientAssertion(t testing.TB, c *Client, audience string) string {
	t.Helper()
	var key jose.SigningKey
	switch c.AuthMethod {
	case "client_secret_jwt":
		key = jose.SigningKey{Algorithm: jose.HS256, Key: []byte(c.Secret)}
	default:
		if c.Key == nil {
			t.Fatal("private_key_jwt needs Client.Key")
		}
		key = jose.SigningKey{Algorithm: jose.SignatureAlgorithm(c.Key.Algorithm), Key: c.Key}
	}
	signer, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := op.now()
	s, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: c.ID, Subject: c.ID, Audience: jwt.Audience{audience}, ID: RandomString(20),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Exchange redeems a code and applies the suite's token endpoint checks
// (checklist §2.5): HTTP 200 and JSON, no error, access_token, token_type
// Bearer, a positive expires_in if present, an id_token, and no-store
// caching.
func (op *OP) Exchange(t testing.TB, c *Client, code string, extra url.Values) *TokenResponse {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.RedirectURI}}
	for k, v := range extra {
		form[k] = v
	}
	tr := op.TokenRequest(t, c, form)
	op.CheckTokenSuccess(t, tr)
	if tr.Str("id_token") == "" {
		t.Fatal("the token response has no id_token")
	}
	return tr
}

// CheckTokenSuccess is the part of the token checks that refresh responses
// share (RefreshTokenRequestSteps, checklist §3.9).
func (op *OP) CheckTokenSuccess(t testing.TB, tr *TokenResponse) {
	t.Helper()
	if tr.Status != http.StatusOK || tr.Body["error"] != nil {
		t.Fatalf("token endpoint: HTTP %d %v", tr.Status, tr.Body)
	}
	requireJSON(t, "token response", tr.Header)
	if !strings.Contains(tr.Header.Get("Cache-Control"), "no-store") {
		t.Fatalf("token response Cache-Control = %q, want no-store", tr.Header.Get("Cache-Control"))
	}
	if p := tr.Header.Get("Pragma"); p != "" && p != "no-cache" {
		t.Fatalf("token response Pragma = %q", p)
	}
	at := tr.Str("access_token")
	if at == "" {
		t.Fatal("token response has no access_token")
	}
	CheckRandomValue(t, "access token", at)
	if !strings.EqualFold(tr.Str("token_type"), "Bearer") {
		t.Fatalf("token_type = %v, want Bearer", tr.Body["token_type"])
	}
	if v, ok := tr.Body["expires_in"]; ok {
		if n, isNum := v.(float64); !isNum || n <= 0 {
			t.Fatalf("expires_in = %v, want a positive number", v)
		}
	}
	if rt := tr.Str("refresh_token"); rt != "" {
		CheckRandomValue(t, "refresh token", rt)
	}
}

// CheckTokenError asserts an RFC 6749 §5.2 error: the status (400, or 401
// for invalid_client), JSON, the error code and a well-formed description.
func (op *OP) CheckTokenError(t testing.TB, tr *TokenResponse, code string) {
	t.Helper()
	want := http.StatusBadRequest
	if code == "invalid_client" && tr.Status == http.StatusUnauthorized {
		want = http.StatusUnauthorized
	}
	if tr.Status != want || tr.Str("error") != code {
		t.Fatalf("token endpoint: HTTP %d %v, want %d %s", tr.Status, tr.Body, want, code)
	}
	requireJSON(t, "token error", tr.Header)
	CheckErrorDescription(t, tr.Str("error_description"))
}

// Refresh sends a refresh_token grant (with scope when not empty) and
// returns the raw response.
func (op *OP) Refresh(t testing.TB, c *Client, refreshToken, scope string) *TokenResponse {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return op.TokenRequest(t, c, form)
}

// UserinfoResponse is one answer of the userinfo endpoint.
type UserinfoResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// Userinfo calls the userinfo endpoint the way the named module does:
// "get" (oidcc-userinfo-get), "post-header" or "post-body".
func (op *OP) Userinfo(t testing.TB, accessToken, method string) *UserinfoResponse {
	t.Helper()
	endpoint := op.Endpoint(t, "userinfo_endpoint")
	var req *http.Request
	switch method {
	case "get":
		req, _ = http.NewRequest(http.MethodGet, endpoint, nil)
		req.Header.Set("Authorization", "Bearer "+accessToken)
	case "post-header":
		req, _ = http.NewRequest(http.MethodPost, endpoint, nil)
		req.Header.Set("Authorization", "Bearer "+accessToken)
	case "post-body":
		req, _ = http.NewRequest(http.MethodPost, endpoint, strings.NewReader(url.Values{"access_token": {accessToken}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	default:
		t.Fatalf("unknown userinfo method %q", method)
	}
	status, hdr, body := op.do(t, req)
	return &UserinfoResponse{Status: status, Header: hdr, Body: body}
}

// CheckUserinfo applies AbstractOIDCCUserInfoTest's checks to a plain JSON
// response: HTTP 200, application/json, a JSON object, standard claim
// types, and sub equal to the ID token's (when sub is not empty).
func (op *OP) CheckUserinfo(t testing.TB, ur *UserinfoResponse, sub string) map[string]any {
	t.Helper()
	if ur.Status != http.StatusOK {
		t.Fatalf("userinfo: HTTP %d %s", ur.Status, ur.Body)
	}
	mt, _, _ := mime.ParseMediaType(ur.Header.Get("Content-Type"))
	if mt != "application/json" {
		t.Fatalf("userinfo: Content-Type %q, want application/json", ur.Header.Get("Content-Type"))
	}
	var claims map[string]any
	if err := json.Unmarshal(ur.Body, &claims); err != nil {
		t.Fatalf("userinfo: not a JSON object: %v", err)
	}
	if s, _ := claims["sub"].(string); s == "" {
		t.Fatal("userinfo: no sub")
	}
	if sub != "" && claims["sub"] != sub {
		t.Fatalf("userinfo sub = %v, want the id_token's %q", claims["sub"], sub)
	}
	CheckStandardClaims(t, "userinfo", claims, op.now())
	return claims
}
