package provider_test

// Pushed authorization requests (RFC 9126).

import (
	"github.com/smallsso/provider/storage"

	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/providertest"
)

func TestPushedAuthorizationRequest(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	secret := ts.addClient(t, clientspec.Spec{ID: "pushy", Secret: "pushy-secret-0123456789", ClientSettings: storage.ClientSettings{
		RedirectURIs: []string{webRedirect},
		GrantTypes:   []string{"authorization_code"},
		Scopes:       []string{"openid", "profile"},
		RequirePAR:   true,
	}})
	ctx := context.Background()

	doc := discover(t, ts)
	if doc["pushed_authorization_request_endpoint"] != ts.URL+"/par" {
		t.Fatalf("discovery: pushed_authorization_request_endpoint = %v", doc["pushed_authorization_request_endpoint"])
	}

	verifier := oauth2.GenerateVerifier()
	params := url.Values{
		"response_type": {"code"}, "client_id": {"pushy"}, "redirect_uri": {webRedirect}, "scope": {"openid profile"},
		"state": {"pushed-state-1"}, "nonce": {"pushed-nonce-1"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
	}
	push := func(t *testing.T) string {
		status, _, body := postForm(t, ts.URL+"/par", params, "pushy", secret)
		uri, _ := body["request_uri"].(string)
		if status != http.StatusCreated || !strings.HasPrefix(uri, "urn:ietf:params:oauth:request_uri:") || body["expires_in"] == nil {
			t.Fatalf("push: HTTP %d %v", status, body)
		}
		return uri
	}

	// The browser carries only client_id and request_uri.
	uri := push(t)
	authURL := ts.URL + "/authorize?" + url.Values{"client_id": {"pushy"}, "request_uri": {uri}}.Encode()
	loc, err := providertest.NewBrowser(ts.URL).SignIn(ctx, authURL, "alice", alicePass, "allow")
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	if q.Get("state") != "pushed-state-1" || q.Get("code") == "" || !strings.HasPrefix(loc.String(), webRedirect) {
		t.Fatalf("redirect %s", loc)
	}
	status, _, body := postForm(t, ts.URL+"/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {webRedirect}, "code_verifier": {verifier},
	}, "pushy", secret)
	if status != http.StatusOK || body["id_token"] == nil {
		t.Fatalf("token: HTTP %d %v", status, body)
	}

	// A request_uri works once.
	page, err := providertest.NewBrowser(ts.URL).Get(ctx, authURL)
	if err != nil {
		t.Fatal(err)
	}
	if page.Location != nil || page.Status != http.StatusBadRequest || !strings.Contains(page.Body, "invalid_request_uri") {
		t.Errorf("reused request_uri: HTTP %d location %v", page.Status, page.Location)
	}

	// This client must push: the same parameters in the URL are refused,
	// back to the (registered) redirect URI.
	page, err = providertest.NewBrowser(ts.URL).Get(ctx, ts.URL+"/authorize?"+params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if page.Location == nil || page.Location.Query().Get("error") != "invalid_request" || page.Location.Query().Get("state") != "pushed-state-1" {
		t.Errorf("unpushed request: HTTP %d location %v", page.Status, page.Location)
	}

	// Pushing needs client authentication, and is checked like /authorize.
	if status, _, body := postForm(t, ts.URL+"/par", params, "pushy", "wrong"); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
		t.Errorf("push with a wrong secret: HTTP %d %v", status, body)
	}
	bad := url.Values{}
	for k, v := range params {
		bad[k] = v
	}
	bad.Set("redirect_uri", "https://evil.example/cb")
	if status, _, body := postForm(t, ts.URL+"/par", bad, "pushy", secret); status != http.StatusBadRequest || body["error"] != "invalid_request" {
		t.Errorf("push with an unregistered redirect: HTTP %d %v", status, body)
	}

	// A client that is not required to push may still do it.
	params.Set("client_id", "web")
	status, _, body = postForm(t, ts.URL+"/par", params, "web", "web-secret")
	if status != http.StatusCreated {
		t.Fatalf("web push: HTTP %d %v", status, body)
	}
	loc, err = providertest.NewBrowser(ts.URL).SignIn(ctx, ts.URL+"/authorize?"+url.Values{"client_id": {"web"}, "request_uri": {body["request_uri"].(string)}}.Encode(), "alice", alicePass, "allow")
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("web via PAR: %v %v", loc, err)
	}
}

func discover(t *testing.T, ts *testServer) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/.well-known/openid-configuration", nil)
	status, _, doc := doJSON(t, req)
	if status != http.StatusOK {
		t.Fatalf("discovery: HTTP %d", status)
	}
	return doc
}
