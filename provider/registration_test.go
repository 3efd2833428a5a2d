package provider_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/providertest"
)

// withRegistration enables registration. Redirect hosts are not limited
// (["*"]): these tests are about the protocol, the trusted-hosts policy of
// open registration has its own (outbound_test.go).
func withRegistration(initialAccessToken string) func(*provider.Config) {
	return func(c *provider.Config) {
		c.Registration = provider.RegistrationConfig{Enabled: true, InitialAccessToken: initialAccessToken, AllowedRedirectHosts: []string{"*"}}
	}
}

// sendJSON sends body (a value to marshal, or raw bytes) with a bearer
// token, as a registering client does, and decodes the answer.
func sendJSON(t *testing.T, method, endpoint string, body any, bearer string) (int, http.Header, map[string]any) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, endpoint, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return doJSON(t, req)
}

// registered is a client as the registration response describes it.
type registered struct {
	ID, Secret, Token, URI string
	Body                   map[string]any
}

func (ts *testServer) register(t *testing.T, md map[string]any, iat string) registered {
	t.Helper()
	status, h, body := sendJSON(t, http.MethodPost, ts.URL+"/register", md, iat)
	if status != http.StatusCreated {
		t.Fatalf("register: HTTP %d %v, want 201", status, body)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("register: Content-Type %q", ct)
	}
	if cc := h.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("register: Cache-Control %q, want no-store", cc)
	}
	str := func(k string) string { s, _ := body[k].(string); return s }
	return registered{ID: str("client_id"), Secret: str("client_secret"), Token: str("registration_access_token"), URI: str("registration_client_uri"), Body: body}
}

func webMetadata(extra map[string]any) map[string]any {
	md := map[string]any{"redirect_uris": []string{webRedirect}, "client_name": "Registered App"}
	for k, v := range extra {
		md[k] = v
	}
	return md
}

func discoveryDoc(t *testing.T, ts *testServer) map[string]any {
	t.Helper()
	status, _, doc := sendJSON(t, http.MethodGet, ts.URL+"/.well-known/openid-configuration", nil, "")
	if status != http.StatusOK {
		t.Fatalf("discovery: HTTP %d", status)
	}
	return doc
}

func TestRegistrationDisabledByDefault(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	if ep, ok := discoveryDoc(t, ts)["registration_endpoint"]; ok {
		t.Fatalf("registration_endpoint = %v published while registration is off", ep)
	}
	raw, _ := json.Marshal(webMetadata(nil))
	resp, err := http.Post(ts.URL+"/register", "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("POST /register with registration off: HTTP %d, want 404", resp.StatusCode)
	}
	if n := len(mustListClients(t, ts)); n != 4 {
		t.Fatalf("%d clients after a refused registration, want the 4 configured", n)
	}
}

func mustListClients(t *testing.T, ts *testServer) []string {
	t.Helper()
	cs, err := ts.Store.ListClients(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

// A registered client gets every metadata value back, credentials, and a
// working code flow with the secret it was issued.
func TestRegistrationCodeFlow(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withRegistration(""))
	if ep := discoveryDoc(t, ts)["registration_endpoint"]; ep != ts.URL+"/register" {
		t.Fatalf("registration_endpoint = %v, want %s", ep, ts.URL+"/register")
	}
	before := time.Now().Unix()
	c := ts.register(t, webMetadata(map[string]any{
		"logo_uri": "https://app.example/logo.png", "policy_uri": "https://app.example/privacy",
		"tos_uri": "https://app.example/terms", "client_uri": "https://app.example/",
		"contacts": []string{"ops@app.example"}, "default_max_age": 3600, "require_auth_time": true,
		"post_logout_redirect_uris":    []string{"https://app.example/bye"},
		"id_token_signed_response_alg": "ES256", "userinfo_signed_response_alg": "RS256",
		"no_such_metadata": "ignored",
	}), "")

	b := c.Body
	if c.ID == "" || c.Secret == "" || c.Token == "" {
		t.Fatalf("response lacks client_id, client_secret or registration_access_token: %v", b)
	}
	if c.URI != ts.URL+"/register/"+c.ID {
		t.Fatalf("registration_client_uri = %q", c.URI)
	}
	if v, ok := b["client_secret_expires_at"].(float64); !ok || v != 0 {
		t.Fatalf("client_secret_expires_at = %v, want 0", b["client_secret_expires_at"])
	}
	if v, _ := b["client_id_issued_at"].(float64); int64(v) < before || int64(v) > time.Now().Unix() {
		t.Fatalf("client_id_issued_at = %v", b["client_id_issued_at"])
	}
	want := map[string]any{
		"client_name": "Registered App", "token_endpoint_auth_method": "client_secret_basic",
		"application_type": "web", "subject_type": "public", "logo_uri": "https://app.example/logo.png",
		"policy_uri": "https://app.example/privacy", "tos_uri": "https://app.example/terms", "client_uri": "https://app.example/",
		"default_max_age": float64(3600), "require_auth_time": true,
		"scope":                        "openid profile email address phone groups offline_access",
		"id_token_signed_response_alg": "ES256", "userinfo_signed_response_alg": "RS256",
	}
	for k, v := range want {
		if b[k] != v {
			t.Errorf("%s = %v, want %v", k, b[k], v)
		}
	}
	for k, v := range map[string][]any{
		"grant_types": {"authorization_code"}, "response_types": {"code"}, "redirect_uris": {webRedirect},
		"contacts": {"ops@app.example"}, "post_logout_redirect_uris": {"https://app.example/bye"},
	} {
		if got, _ := b[k].([]any); !slices.Equal(got, v) {
			t.Errorf("%s = %v, want %v", k, b[k], v)
		}
	}
	if _, ok := b["no_such_metadata"]; ok {
		t.Error("unknown metadata was echoed as if registered")
	}

	stored, err := ts.Store.GetClient(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Source != "registration" || stored.RegistrationAccessTokenHash == "" || strings.Contains(stored.RegistrationAccessTokenHash, c.Token) {
		t.Fatalf("stored source %q, token hash %q: want source registration and only a hash of the token", stored.Source, stored.RegistrationAccessTokenHash)
	}
	if strings.Contains(stored.SecretHash, c.Secret) {
		t.Fatal("client secret stored in clear")
	}

	r := newRP(t, ts, c.ID, c.Secret, webRedirect, "openid", "email")
	f := r.authorize(t, providertest.NewBrowser(ts.URL), alicePass, "allow")
	tok, err := r.oauth2.Exchange(context.Background(), f.code(t, ts.URL), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatalf("exchange with the issued secret: %v", err)
	}
	idt, err := r.verifier.Verify(context.Background(), tok.Extra("id_token").(string))
	if err != nil || idt.Nonce != f.nonce {
		t.Fatalf("id token: %v (nonce %q)", err, idt.Nonce)
	}

	// Deleting the registration ends the client and its tokens.
	status, h, _ := sendJSON(t, http.MethodDelete, c.URI, nil, c.Token)
	if status != http.StatusNoContent || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("DELETE: HTTP %d, Cache-Control %q; want 204 no-store", status, h.Get("Cache-Control"))
	}
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if status, _, _ := doJSON(t, req); status != http.StatusUnauthorized {
		t.Fatalf("userinfo with the deleted client's token: HTTP %d, want 401", status)
	}
	if status := introspectAs(t, ts, c.ID, c.Secret); status != http.StatusUnauthorized {
		t.Fatalf("deleted client authenticates: HTTP %d", status)
	}
	if status, _, body := sendJSON(t, http.MethodGet, c.URI, nil, c.Token); status != http.StatusUnauthorized || body["error"] != "invalid_token" {
		t.Fatalf("GET after DELETE: HTTP %d %v, want 401 invalid_token", status, body)
	}
}

// introspectAs authenticates as a client at /introspect and returns the
// status: 200 when the credentials are good, 401 when not.
func introspectAs(t *testing.T, ts *testServer, id, secret string) int {
	t.Helper()
	status, _, _ := postForm(t, ts.URL+"/introspect", url.Values{"token": {"nothing"}}, id, secret)
	return status
}

func TestRegistrationErrors(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withRegistration(""))
	key := newClientKey(t, "k1", jose.RS256)
	privateJWKS, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.priv, KeyID: "k1"}}})
	many := make([]string, 21)
	for i := range many {
		many[i] = webRedirect + "?n=" + string(rune('a'+i))
	}
	tests := []struct {
		name   string
		md     map[string]any
		status int
		code   string
		hint   string
	}{
		{"fragment", map[string]any{"redirect_uris": []string{webRedirect + "#frag"}}, 400, "invalid_redirect_uri", "fragment"},
		{"no redirect_uris", map[string]any{"client_name": "x"}, 400, "invalid_redirect_uri", "redirect_uris is required"},
		{"relative redirect", map[string]any{"redirect_uris": []string{"/callback"}}, 400, "invalid_redirect_uri", "absolute"},
		{"http redirect off loopback", map[string]any{"redirect_uris": []string{"http://app.example/cb"}}, 400, "invalid_redirect_uri", "https"},
		{"private-use scheme for web", map[string]any{"redirect_uris": []string{"org.example.app:/cb"}}, 400, "invalid_redirect_uri", "application_type native"},
		{"oob for web", map[string]any{"redirect_uris": []string{"urn:ietf:wg:oauth:2.0:oob"}}, 400, "invalid_redirect_uri", "native"},
		{"too many redirect_uris", map[string]any{"redirect_uris": many}, 400, "invalid_redirect_uri", "at most 20"},
		{"redirect_uris not an array", map[string]any{"redirect_uris": webRedirect}, 400, "invalid_client_metadata", "redirect_uris must be an array of strings"},
		{"bad application_type", webMetadata(map[string]any{"application_type": "desktop"}), 400, "invalid_client_metadata", "web or native"},
		{"response type without its grant", webMetadata(map[string]any{"response_types": []string{"code"}, "grant_types": []string{"refresh_token"}}), 400, "invalid_client_metadata", "authorization_code grant"},
		{"token response type with code grant", webMetadata(map[string]any{"response_types": []string{"token"}, "grant_types": []string{"authorization_code"}}), 400, "invalid_client_metadata", "implicit grant"},
		{"unknown grant", webMetadata(map[string]any{"grant_types": []string{"authorization_code", "urn:example:magic"}}), 400, "invalid_client_metadata", "not supported"},
		{"client_credentials", map[string]any{"grant_types": []string{"client_credentials"}}, 400, "invalid_client_metadata", "open registration"},
		{"password", webMetadata(map[string]any{"grant_types": []string{"authorization_code", "password"}}), 400, "invalid_client_metadata", "open registration"},
		{"jwt-bearer", map[string]any{"grant_types": []string{"urn:ietf:params:oauth:grant-type:jwt-bearer"}}, 400, "invalid_client_metadata", "open registration"},
		{"pairwise", webMetadata(map[string]any{"subject_type": "pairwise"}), 400, "invalid_client_metadata", "subject_type"},
		{"sector_identifier_uri", webMetadata(map[string]any{"sector_identifier_uri": "https://app.example/sector.json"}), 400, "invalid_client_metadata", "sector_identifier_uri"},
		{"unsigned id token", webMetadata(map[string]any{"id_token_signed_response_alg": "none"}), 400, "invalid_client_metadata", "id_token_signed_response_alg"},
		{"HMAC userinfo", webMetadata(map[string]any{"userinfo_signed_response_alg": "HS256"}), 400, "invalid_client_metadata", "userinfo_signed_response_alg"},
		{"encrypted id token", webMetadata(map[string]any{"id_token_encrypted_response_alg": "RSA-OAEP"}), 400, "invalid_client_metadata", "encrypt"},
		{"unknown auth method", webMetadata(map[string]any{"token_endpoint_auth_method": "tls_client_auth"}), 400, "invalid_client_metadata", "token_endpoint_auth_method"},
		{"private_key_jwt without keys", webMetadata(map[string]any{"token_endpoint_auth_method": "private_key_jwt"}), 400, "invalid_client_metadata", "jwks or jwks_uri"},
		{"jwks and jwks_uri", webMetadata(map[string]any{"token_endpoint_auth_method": "private_key_jwt", "jwks": json.RawMessage(jwksJSON(t, key)), "jwks_uri": "https://app.example/jwks"}), 400, "invalid_client_metadata", "not both"},
		{"private key in jwks", webMetadata(map[string]any{"token_endpoint_auth_method": "private_key_jwt", "jwks": json.RawMessage(privateJWKS)}), 400, "invalid_client_metadata", "not a public key"},
		{"jwks not an object", webMetadata(map[string]any{"token_endpoint_auth_method": "private_key_jwt", "jwks": []string{"x"}}), 400, "invalid_client_metadata", "jwks"},
		{"jwks_uri over http", webMetadata(map[string]any{"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://app.example/jwks"}), 400, "invalid_client_metadata", "https"},
		{"assertion alg for another method", webMetadata(map[string]any{"token_endpoint_auth_method": "private_key_jwt", "jwks": json.RawMessage(jwksJSON(t, key)), "token_endpoint_auth_signing_alg": "HS256"}), 400, "invalid_client_metadata", "HS256"},
		{"operator scope", webMetadata(map[string]any{"scope": "openid api:read"}), 400, "invalid_client_metadata", "api:read"},
		{"logo over http", webMetadata(map[string]any{"logo_uri": "http://app.example/logo.png"}), 400, "invalid_client_metadata", "logo_uri"},
		{"javascript policy", webMetadata(map[string]any{"policy_uri": "javascript:alert(1)"}), 400, "invalid_client_metadata", "policy_uri"},
		{"negative default_max_age", webMetadata(map[string]any{"default_max_age": -1}), 400, "invalid_client_metadata", "default_max_age"},
		{"default_max_age not a number", webMetadata(map[string]any{"default_max_age": "soon"}), 400, "invalid_client_metadata", "default_max_age must be a whole number"},
		{"client_name with a newline", webMetadata(map[string]any{"client_name": "a\nb"}), 400, "invalid_client_metadata", "control"},
		{"too many contacts", webMetadata(map[string]any{"contacts": many}), 400, "invalid_client_metadata", "contacts"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := sendJSON(t, http.MethodPost, ts.URL+"/register", tc.md, "")
			wantRegError(t, status, h, body, tc.status, tc.code, tc.hint)
		})
	}

	raw := func(name, contentType string, body []byte, wantStatus int, hint string) {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, ts.URL+"/register", bytes.NewReader(body))
			req.Header.Set("Content-Type", contentType)
			status, h, resp := doJSON(t, req)
			wantRegError(t, status, h, resp, wantStatus, "invalid_client_metadata", hint)
		})
	}
	raw("not JSON", "application/json", []byte("redirect_uris=x"), 400, "JSON object")
	raw("JSON array", "application/json", []byte(`["x"]`), 400, "JSON object")
	raw("form content type", "application/x-www-form-urlencoded", []byte(`{}`), 400, "application/json")
	raw("too large", "application/json", append([]byte(`{"client_name":"`), bytes.Repeat([]byte("a"), 70_000)...), 413, "larger than")

	if n := len(mustListClients(t, ts)); n != 4 {
		t.Fatalf("%d clients after refused registrations, want the 4 configured", n)
	}
}

func wantRegError(t *testing.T, status int, h http.Header, body map[string]any, wantStatus int, code, hint string) {
	t.Helper()
	desc, _ := body["error_description"].(string)
	if status != wantStatus || body["error"] != code || !strings.Contains(desc, hint) {
		t.Fatalf("HTTP %d %v, want %d %s mentioning %q", status, body, wantStatus, code, hint)
	}
	if strings.ContainsAny(desc, "\"\\") {
		t.Fatalf("error_description %q has characters RFC 6749 §5.2 forbids", desc)
	}
	if h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("Content-Type %q, Cache-Control %q", h.Get("Content-Type"), h.Get("Cache-Control"))
	}
}

func TestRegistrationNativeAndPublic(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withRegistration(""))
	c := ts.register(t, map[string]any{
		"application_type": "native", "token_endpoint_auth_method": "none",
		"redirect_uris": []string{"org.example.app:/cb", "http://127.0.0.1/cb", "urn:ietf:wg:oauth:2.0:oob"},
		"grant_types":   []string{"authorization_code", "refresh_token"},
	}, "")
	if c.Secret != "" || c.Body["client_secret_expires_at"] != nil {
		t.Fatalf("public client got a secret: %v", c.Body)
	}
	if c.Body["application_type"] != "native" || c.Body["token_endpoint_auth_method"] != "none" {
		t.Fatalf("response %v", c.Body)
	}
	// The public client runs the code flow with PKCE on a loopback port of
	// its choosing (RFC 8252 §7.3).
	r := newRP(t, ts, c.ID, "", "http://127.0.0.1:49152/cb", "openid", "offline_access")
	f := r.authorize(t, providertest.NewBrowser(ts.URL), alicePass, "allow")
	tok, err := r.oauth2.Exchange(context.Background(), f.code(t, ts.URL), oauth2.VerifierOption(f.verifier))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("exchange: %v (refresh token %q)", err, tok.RefreshToken)
	}
}

func TestRegistrationInitialAccessToken(t *testing.T) {
	t.Parallel()
	const iat = "initial-access-token-0123456789"
	ts := newTestServer(t, withRegistration(iat))
	for name, bearer := range map[string]string{"missing": "", "wrong": "initial-access-token-0123456788"} {
		t.Run(name, func(t *testing.T) {
			status, h, body := sendJSON(t, http.MethodPost, ts.URL+"/register", webMetadata(nil), bearer)
			if status != http.StatusUnauthorized || body["error"] != "invalid_token" || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Fatalf("HTTP %d %v %v, want 401 invalid_token with WWW-Authenticate", status, body, h)
			}
		})
	}
	ts.register(t, webMetadata(nil), iat)

	// The operator vouched for whoever holds the token: service grants are
	// open to them, still limited to the published scopes.
	c := ts.register(t, map[string]any{"grant_types": []string{"client_credentials"}, "scope": "openid profile"}, iat)
	if got, _ := c.Body["response_types"].([]any); len(got) != 0 {
		t.Fatalf("response_types = %v for a client_credentials client, want none", got)
	}
	status, _, body := postForm(t, ts.URL+"/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"profile"}}, c.ID, c.Secret)
	wantToken(t, status, body)
}

func TestRegistrationClientConfiguration(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withRegistration(""))
	c := ts.register(t, webMetadata(map[string]any{"contacts": []string{"a@app.example"}}), "")
	other := ts.register(t, webMetadata(nil), "")

	t.Run("read", func(t *testing.T) {
		status, h, body := sendJSON(t, http.MethodGet, c.URI, nil, c.Token)
		if status != http.StatusOK || h.Get("Cache-Control") != "no-store" {
			t.Fatalf("GET: HTTP %d %v, Cache-Control %q", status, body, h.Get("Cache-Control"))
		}
		if _, ok := body["client_secret"]; ok {
			t.Fatal("GET returns the client secret; only its hash is kept")
		}
		delete(c.Body, "client_secret")
		if !reflect.DeepEqual(body, c.Body) {
			t.Errorf("GET says %v\nregistration said %v", body, c.Body)
		}
	})

	t.Run("refused", func(t *testing.T) {
		for name, tc := range map[string]struct{ uri, token string }{
			"no token":             {c.URI, ""},
			"wrong token":          {c.URI, c.Token + "x"},
			"other client's token": {c.URI, other.Token},
			"config client":        {ts.URL + "/register/web", c.Token},
			"unknown client":       {ts.URL + "/register/nobody", c.Token},
		} {
			for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
				status, h, body := sendJSON(t, method, tc.uri, webMetadata(nil), tc.token)
				if status != http.StatusUnauthorized || body["error"] != "invalid_token" || h.Get("WWW-Authenticate") == "" {
					t.Errorf("%s %s: HTTP %d %v, want 401 invalid_token", name, method, status, body)
				}
			}
		}
		if _, err := ts.Store.GetClient(context.Background(), "web"); err != nil {
			t.Fatalf("config client touched: %v", err)
		}
	})

	t.Run("update keeps the secret", func(t *testing.T) {
		md := webMetadata(map[string]any{"client_id": c.ID, "client_secret": c.Secret, "client_name": "Renamed",
			"redirect_uris": []string{"https://app.example/cb"}, "registration_access_token": "ignored"})
		status, _, body := sendJSON(t, http.MethodPut, c.URI, md, c.Token)
		if status != http.StatusOK || body["client_name"] != "Renamed" {
			t.Fatalf("PUT: HTTP %d %v", status, body)
		}
		if _, ok := body["client_secret"]; ok {
			t.Fatal("PUT issued a new secret without need")
		}
		if _, ok := body["contacts"]; ok {
			t.Fatal("contacts left out of the PUT are still registered (RFC 7592 §2.2: omitted means deleted)")
		}
		if got, _ := body["redirect_uris"].([]any); len(got) != 1 || got[0] != "https://app.example/cb" {
			t.Fatalf("redirect_uris = %v", body["redirect_uris"])
		}
		if status := introspectAs(t, ts, c.ID, c.Secret); status != http.StatusOK {
			t.Fatalf("the secret stopped working after an update: HTTP %d", status)
		}
	})

	t.Run("update refusals", func(t *testing.T) {
		for name, tc := range map[string]struct {
			md         map[string]any
			code, hint string
		}{
			"other client_id":        {webMetadata(map[string]any{"client_id": other.ID}), "invalid_client_metadata", "client_id"},
			"chosen secret":          {webMetadata(map[string]any{"client_secret": "my-own-secret"}), "invalid_client_metadata", "client_secret"},
			"added service grant":    {webMetadata(map[string]any{"grant_types": []string{"authorization_code", "client_credentials"}}), "invalid_client_metadata", "client_credentials"},
			"redirect_uris left out": {map[string]any{"client_name": "x"}, "invalid_redirect_uri", "redirect_uris"},
		} {
			status, h, body := sendJSON(t, http.MethodPut, c.URI, tc.md, c.Token)
			t.Run(name, func(t *testing.T) { wantRegError(t, status, h, body, 400, tc.code, tc.hint) })
		}
	})

	t.Run("change of method", func(t *testing.T) {
		key := newClientKey(t, "k1", jose.RS256)
		status, _, body := sendJSON(t, http.MethodPut, c.URI, webMetadata(map[string]any{
			"token_endpoint_auth_method": "private_key_jwt", "jwks": json.RawMessage(jwksJSON(t, key))}), c.Token)
		if status != http.StatusOK || body["client_secret"] != nil || body["client_secret_expires_at"] != nil {
			t.Fatalf("PUT to private_key_jwt: HTTP %d %v", status, body)
		}
		if status := introspectAs(t, ts, c.ID, c.Secret); status != http.StatusUnauthorized {
			t.Fatalf("the old secret still works for a private_key_jwt client: HTTP %d", status)
		}
		status, _, body = sendJSON(t, http.MethodPut, c.URI, webMetadata(map[string]any{"token_endpoint_auth_method": "client_secret_post"}), c.Token)
		secret, _ := body["client_secret"].(string)
		if status != http.StatusOK || secret == "" || body["client_secret_expires_at"] != float64(0) {
			t.Fatalf("PUT back to a secret: HTTP %d %v, want a new secret", status, body)
		}
		if status := introspectAs(t, ts, c.ID, secret); status != http.StatusOK {
			t.Fatalf("the new secret does not work: HTTP %d", status)
		}
		// client_secret_jwt stores the secret sealed: a new one again.
		status, _, body = sendJSON(t, http.MethodPut, c.URI, webMetadata(map[string]any{"token_endpoint_auth_method": "client_secret_jwt"}), c.Token)
		if s, _ := body["client_secret"].(string); status != http.StatusOK || len(s) < 32 {
			t.Fatalf("PUT to client_secret_jwt: HTTP %d %v", status, body)
		}
	})

	t.Run("delete", func(t *testing.T) {
		status, _, body := sendJSON(t, http.MethodDelete, other.URI, nil, other.Token)
		if status != http.StatusNoContent || body != nil {
			t.Fatalf("DELETE: HTTP %d %v, want 204 without body", status, body)
		}
		if _, err := ts.Store.GetClient(context.Background(), other.ID); err == nil {
			t.Fatal("client still stored after DELETE")
		}
		if status, _, _ := sendJSON(t, http.MethodDelete, other.URI, nil, other.Token); status != http.StatusUnauthorized {
			t.Fatalf("second DELETE: HTTP %d, want 401", status)
		}
	})
}

// A private_key_jwt client registered with its keys inline or at a
// jwks_uri completes the code flow, authenticating with a signed assertion
// as the conformance suite does.
func TestRegistrationPrivateKeyJWT(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withRegistration(""))
	key := newClientKey(t, "rp-key-1", jose.RS256)
	pub := newJWKSServer(t, jwksJSON(t, key))
	for name, keys := range map[string]map[string]any{
		"jwks":     {"jwks": json.RawMessage(jwksJSON(t, key))},
		"jwks_uri": {"jwks_uri": pub.URL + "/jwks.json"},
	} {
		t.Run(name, func(t *testing.T) {
			md := webMetadata(keys)
			md["token_endpoint_auth_method"] = "private_key_jwt"
			md["token_endpoint_auth_signing_alg"] = "RS256"
			c := ts.register(t, md, "")
			if c.Secret != "" {
				t.Fatal("a private_key_jwt client got a secret")
			}
			if _, ok := keys["jwks_uri"]; ok && c.Body["jwks_uri"] != pub.URL+"/jwks.json" {
				t.Fatalf("jwks_uri = %v", c.Body["jwks_uri"])
			}
			if _, ok := keys["jwks"]; ok && c.Body["jwks"] == nil {
				t.Fatal("jwks not echoed")
			}
			r := newRP(t, ts, c.ID, "", webRedirect, "openid")
			f := r.authorize(t, providertest.NewBrowser(ts.URL), alicePass, "allow")
			form := url.Values{
				"grant_type": {"authorization_code"}, "code": {f.code(t, ts.URL)}, "redirect_uri": {webRedirect},
				"code_verifier": {f.verifier}, "client_assertion_type": {assertionType},
				"client_assertion": {key.sign(t, assertionClaims(ts, c.ID, time.Now()))},
			}
			status, _, body := postForm(t, ts.URL+"/token", form, "", "")
			wantToken(t, status, body)
			idt, err := r.provider.Verifier(&oidc.Config{ClientID: c.ID}).Verify(context.Background(), body["id_token"].(string))
			if err != nil || idt.Nonce != f.nonce {
				t.Fatalf("id token: %v", err)
			}
			// Without an assertion the client is not authenticated.
			status, _, body = postForm(t, ts.URL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {c.ID}}, "", "")
			wantError(t, status, body, 401, "invalid_client", "")
		})
	}
}

func TestRegistrationRateLimit(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withRegistration(""))
	md := map[string]any{"redirect_uris": []string{webRedirect}, "token_endpoint_auth_method": "none"}
	for i := range 50 {
		if status, _, body := sendJSON(t, http.MethodPost, ts.URL+"/register", md, ""); status != http.StatusCreated {
			t.Fatalf("registration %d: HTTP %d %v", i+1, status, body)
		}
	}
	status, h, body := sendJSON(t, http.MethodPost, ts.URL+"/register", md, "")
	if status != http.StatusTooManyRequests || body["error"] == nil || h.Get("Retry-After") == "" {
		t.Fatalf("registration 51: HTTP %d %v (Retry-After %q), want 429", status, body, h.Get("Retry-After"))
	}
}

// The login and consent pages show what the client registered about
// itself: its logo and links to its policy and terms.
func TestRegistrationLogoAndLinksOnPages(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withRegistration(""))
	c := ts.register(t, webMetadata(map[string]any{
		"logo_uri": "https://app.example/logo.png", "policy_uri": "https://app.example/privacy", "tos_uri": "https://app.example/terms",
	}), "")
	r := newRP(t, ts, c.ID, c.Secret, webRedirect, "openid")
	b := providertest.NewBrowser(ts.URL)
	page, err := b.Get(context.Background(), r.oauth2.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil || page.Status != http.StatusOK {
		t.Fatalf("login page: %v %v", err, page)
	}
	if !hasImage(page.Body, "https://app.example/logo.png") {
		t.Error("login page lacks the logo")
	}
	for _, want := range []string{`href="https://app.example/privacy"`, `href="https://app.example/terms"`, "Registered App"} {
		if !strings.Contains(page.Body, want) {
			t.Errorf("login page lacks %s", want)
		}
	}
	form, err := page.ParseForm()
	if err != nil {
		t.Fatal(err)
	}
	page, err = b.Submit(context.Background(), page, form, url.Values{"username": {"alice"}, "password": {alicePass}})
	if err != nil || !strings.Contains(page.Body, `name="decision"`) {
		t.Fatalf("consent page: %v %v", err, page)
	}
	if !hasImage(page.Body, "https://app.example/logo.png") {
		t.Error("consent page lacks the logo")
	}
	for _, want := range []string{`href="https://app.example/privacy"`, `href="https://app.example/terms"`} {
		if !strings.Contains(page.Body, want) {
			t.Errorf("consent page lacks %s", want)
		}
	}
	// A client without them shows none.
	page, err = providertest.NewBrowser(ts.URL).Get(context.Background(), newRP(t, ts, "web", "web-secret", webRedirect, "openid").oauth2.AuthCodeURL("st"))
	if err != nil || strings.Contains(page.Body, "<img") || strings.Contains(page.Body, "Privacy policy") {
		t.Fatalf("login page of a client without logo or links: %v %s", err, page.Body)
	}
}
