package oidcctest

// Dynamic client registration as the suite performs it for the
// dynamic_client variant (checklist §2.6):
// OIDCCCreateDynamicClientRegistrationRequest,
// CallDynamicRegistrationEndpointAndVerifySuccessfulResponse and the
// cleanup DELETE.

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// Registration is a client the suite registered, with what it needs to
// manage the registration.
type Registration struct {
	Client *Client
	// Body is the registration response.
	Body map[string]any
	// ClientURI and AccessToken are registration_client_uri and
	// registration_access_token, empty when the provider returned neither.
	ClientURI, AccessToken string
}

// NewClientKey is an RSA key for RS256 with a kid, as the suite generates
// for a dynamic client's jwks.
func NewClientKey(t testing.TB) *jose.JSONWebKey {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &jose.JSONWebKey{Key: priv, KeyID: RandomString(12), Algorithm: string(jose.RS256), Use: "sig"}
}

// PublicJWKS is the JWK Set of key's public half, as registered in jwks or
// served at jwks_uri.
func PublicJWKS(t testing.TB, key *jose.JSONWebKey) json.RawMessage {
	t.Helper()
	raw, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// DynamicRegistrationRequest is the suite's registration body for a
// response type and client authentication method: client_name, grant_types
// (authorization_code for a code, implicit for id_token or token),
// response_types, redirect_uris, contacts, token_endpoint_auth_method and,
// with a key, jwks. Modules add their own members.
func DynamicRegistrationRequest(name, responseType, authMethod, redirectURI string, key *jose.JSONWebKey) map[string]any {
	var grants []string
	for _, part := range strings.Fields(responseType) {
		g := "implicit"
		if part == "code" {
			g = "authorization_code"
		}
		if !slices.Contains(grants, g) {
			grants = append(grants, g)
		}
	}
	md := map[string]any{
		"client_name":                name,
		"grant_types":                grants,
		"response_types":             []string{responseType},
		"redirect_uris":              []string{redirectURI},
		"contacts":                   []string{"certification@oidf.org"},
		"token_endpoint_auth_method": authMethod,
	}
	if key != nil {
		raw, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.Public()}})
		md["jwks"] = json.RawMessage(raw)
	}
	return md
}

// RegistrationResponse is a raw answer of the registration endpoint.
type RegistrationResponse struct {
	Status int
	Header http.Header
	Body   map[string]any
}

// Str returns a string member of the body, "" when absent.
func (rr *RegistrationResponse) Str(name string) string { s, _ := rr.Body[name].(string); return s }

// PostRegistration sends md to registration_endpoint as the suite does
// (JSON, Accept: application/json, the initial access token as a Bearer
// token when there is one) and decodes the answer.
func (op *OP) PostRegistration(t testing.TB, md map[string]any, initialAccessToken string) *RegistrationResponse {
	t.Helper()
	raw, err := json.Marshal(md)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, op.Endpoint(t, "registration_endpoint"), bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if initialAccessToken != "" {
		req.Header.Set("Authorization", "Bearer "+initialAccessToken)
	}
	status, hdr, body := op.do(t, req)
	rr := &RegistrationResponse{Status: status, Header: hdr}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &rr.Body); err != nil {
			t.Fatalf("registration endpoint: HTTP %d, body is not a JSON object: %q", status, body)
		}
	}
	return rr
}

// Register registers md and applies
// CallDynamicRegistrationEndpointAndVerifySuccessfulResponse: JSON, HTTP
// 201, no error, a client_id, registration_client_uri and
// registration_access_token both present (and the URI https) or both
// absent, and client_secret_expires_at whenever a client_secret is
// returned. The returned Client uses the first redirect URI and key (for
// private_key_jwt; nil otherwise).
func (op *OP) Register(t testing.TB, md map[string]any, initialAccessToken string, key *jose.JSONWebKey) *Registration {
	t.Helper()
	rr := op.PostRegistration(t, md, initialAccessToken)
	requireJSON(t, "registration response", rr.Header)
	if rr.Status != http.StatusCreated {
		t.Fatalf("registration: HTTP %d %v, want 201", rr.Status, rr.Body)
	}
	if rr.Body["error"] != nil {
		t.Fatalf("registration: error %v", rr.Body)
	}
	id := rr.Str("client_id")
	if id == "" {
		t.Fatalf("registration: no client_id in %v", rr.Body)
	}
	uri, token := rr.Str("registration_client_uri"), rr.Str("registration_access_token")
	_, hasURI := rr.Body["registration_client_uri"]
	_, hasToken := rr.Body["registration_access_token"]
	if hasURI != hasToken || (hasURI && (uri == "" || token == "")) {
		t.Fatalf("registration: registration_client_uri %q and registration_access_token %q must come as a non-empty pair", uri, token)
	}
	if hasURI {
		if err := SecureURL(uri); err != nil {
			t.Fatalf("registration: registration_client_uri %v", err)
		}
	}
	if _, ok := rr.Body["client_secret"]; ok {
		if _, ok := rr.Body["client_secret_expires_at"]; !ok {
			t.Fatal("registration: client_secret without client_secret_expires_at")
		}
	}
	c := &Client{ID: id, Secret: rr.Str("client_secret"), Key: key}
	c.AuthMethod, _ = md["token_endpoint_auth_method"].(string)
	if uris, ok := md["redirect_uris"].([]string); ok && len(uris) > 0 {
		c.RedirectURI = uris[0]
	}
	c.IDTokenAlg, _ = md["id_token_signed_response_alg"].(string)
	return &Registration{Client: c, Body: rr.Body, ClientURI: uri, AccessToken: token}
}

// CheckRegistrationError asserts a refused registration: the status, JSON
// and an error code among allowed, with a well-formed description.
func (op *OP) CheckRegistrationError(t testing.TB, rr *RegistrationResponse, status int, allowed ...string) {
	t.Helper()
	if rr.Status != status {
		t.Fatalf("registration: HTTP %d %v, want %d", rr.Status, rr.Body, status)
	}
	requireJSON(t, "registration error", rr.Header)
	code := rr.Str("error")
	ok := false
	for _, a := range allowed {
		ok = ok || code == a
	}
	if !ok {
		t.Fatalf("registration: error %q (%s), want one of %v", code, rr.Str("error_description"), allowed)
	}
	CheckErrorDescription(t, rr.Str("error_description"))
}

// Unregister is the suite's cleanup: DELETE registration_client_uri with
// the registration access token, expecting 204.
func (op *OP) Unregister(t testing.TB, reg *Registration) {
	t.Helper()
	if reg.ClientURI == "" {
		return
	}
	req, _ := http.NewRequest(http.MethodDelete, reg.ClientURI, nil)
	req.Header.Set("Authorization", "Bearer "+reg.AccessToken)
	if status, _, body := op.do(t, req); status != http.StatusNoContent {
		t.Fatalf("unregister: HTTP %d %s, want 204", status, body)
	}
}

// ExchangeWithAssertionAudience redeems a code as a private_key_jwt client
// whose assertion names audience (the issuer, in
// oidcc-ensure-client-assertion-with-iss-aud-succeeds) instead of the
// token endpoint, and returns the raw response.
func (op *OP) ExchangeWithAssertionAudience(t testing.TB, c *Client, code, audience string) *TokenResponse {
	t.Helper()
	other := *c
	other.AssertionAudience = audience
	return op.TokenRequest(t, &other, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.RedirectURI}})
}
