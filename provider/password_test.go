package provider_test

// The resource owner password credentials grant (RFC 6749 §4.3): legacy,
// off unless a client lists it, throttled like the login page.

import (
	"github.com/smallsso/provider/storage"

	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/smallsso/provider/provider/admin"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/providertest"
	"github.com/smallsso/provider/provider/userspec"
)

func passwordClient(t *testing.T, ts *testServer) string {
	return ts.addClient(t, clientspec.Spec{ID: "legacy", Secret: "legacy-secret-0123456789",
		ClientSettings: storage.ClientSettings{GrantTypes: []string{"password", "refresh_token"}, Scopes: []string{"openid", "profile", "read"}}})
}

func passwordGrant(t *testing.T, ts *testServer, username, password, scope string) (int, map[string]any) {
	t.Helper()
	status, _, body := postForm(t, ts.URL+"/token", url.Values{
		"grant_type": {"password"}, "username": {username}, "password": {password}, "scope": {scope},
	}, "legacy", "legacy-secret-0123456789")
	return status, body
}

func TestPasswordGrant(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	passwordClient(t, ts)

	status, body := passwordGrant(t, ts, "alice", alicePass, "openid profile read")
	if status != http.StatusOK || body["access_token"] == nil || body["refresh_token"] == nil {
		t.Fatalf("HTTP %d %v", status, body)
	}
	if body["scope"] != "openid profile read" {
		t.Errorf("scope %v", body["scope"])
	}
	info := ts.introspect(t, body["access_token"].(string))
	if info["active"] != true || info["sub"] != ts.alice.ID || info["username"] != "alice" || info["client_id"] != "legacy" {
		t.Errorf("introspection %v", info)
	}
	// The token reads the user like one from a browser sign-in.
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+body["access_token"].(string))
	if status, _, ui := doJSON(t, req); status != http.StatusOK || ui["sub"] != ts.alice.ID || ui["name"] != "Alice Liddell" {
		t.Errorf("userinfo: HTTP %d %v", status, ui)
	}

	// The password never lands in storage with the token.
	rec, err := ts.Store.GetToken(context.Background(), "access", accessSignature(body["access_token"].(string)))
	if err != nil {
		t.Fatalf("stored access token: %v", err)
	}
	if _, ok := rec.Form["password"]; ok || strings.Contains(string(rec.Session), alicePass) {
		t.Error("the password was stored with the token request")
	}

	cases := []struct {
		name, user, pass, scope string
		status                  int
		code                    string
	}{
		{"wrong password", "alice", "nope", "openid", 400, "invalid_grant"},
		{"unknown user", "mallory", "nope", "openid", 400, "invalid_grant"},
		{"scope the client lacks", "alice", alicePass, "openid email", 400, "invalid_scope"},
		{"missing password", "alice", "", "openid", 400, "invalid_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := passwordGrant(t, ts, c.user, c.pass, c.scope)
			if status != c.status || body["error"] != c.code {
				t.Errorf("HTTP %d %v, want %d %s", status, body, c.status, c.code)
			}
		})
	}

	t.Run("client without the grant", func(t *testing.T) {
		status, _, body := postForm(t, ts.URL+"/token", url.Values{
			"grant_type": {"password"}, "username": {"alice"}, "password": {alicePass},
		}, "web", "web-secret")
		if status != http.StatusBadRequest || body["error"] != "unauthorized_client" {
			t.Errorf("HTTP %d %v", status, body)
		}
	})
	t.Run("wrong client secret", func(t *testing.T) {
		status, _, body := postForm(t, ts.URL+"/token", url.Values{
			"grant_type": {"password"}, "username": {"alice"}, "password": {alicePass},
		}, "legacy", "wrong")
		if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Errorf("HTTP %d %v", status, body)
		}
	})
}

// accessSignature is the storage key of an opaque access token: the part
// after the dot.
func accessSignature(token string) string {
	_, sig, _ := strings.Cut(token, ".")
	return sig
}

// Guessing through the password grant locks the account for the login
// page too, and the other way round: one budget per account.
func TestPasswordGrantThrottled(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	passwordClient(t, ts)
	for i := range 5 {
		if status, body := passwordGrant(t, ts, "alice", "guess", "openid"); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Fatalf("attempt %d: HTTP %d %v", i+1, status, body)
		}
	}
	// Now even the right password is refused, with a wait in minutes.
	status, body := passwordGrant(t, ts, "alice", alicePass, "openid")
	desc, _ := body["error_description"].(string)
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" || !strings.Contains(desc, "Try again in 10 minutes") {
		t.Fatalf("after 5 failures: HTTP %d %v", status, body)
	}

	// The login page shows the same lock, in words.
	r := newRP(t, ts, "web", "web-secret", webRedirect, "openid")
	page, err := providertest.NewBrowser(ts.URL).SignInPage(context.Background(),
		r.oauth2.AuthCodeURL("state-throttle"), "alice", alicePass, "allow")
	if err != nil {
		t.Fatal(err)
	}
	if page.Status != http.StatusTooManyRequests || !strings.Contains(page.Body, "Too many failed sign-ins. Try again in 10 minutes.") {
		t.Fatalf("login page: HTTP %d: %.400s", page.Status, page.Body)
	}

	// Another account from the same address is not locked by alice's.
	adm := &admin.Local{Store: ts.Store}
	if _, err := adm.AddUser(context.Background(), userspec.User{Username: "bob", Password: "bob-password-123"}); err != nil {
		t.Fatal(err)
	}
	if status, body := passwordGrant(t, ts, "bob", "bob-password-123", "openid"); status != http.StatusOK {
		t.Fatalf("bob: HTTP %d %v", status, body)
	}
}

// A user's access token is no key to introspection: only authenticated
// clients may learn about other tokens (RFC 7662 §2.1).
func TestIntrospectionRefusesBearerTokens(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	passwordClient(t, ts)
	_, tok := passwordGrant(t, ts, "alice", alicePass, "openid")
	at, _ := tok["access_token"].(string)
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/introspect", strings.NewReader(url.Values{"token": {at}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+at)
	if status, _, body := doJSON(t, req); status != http.StatusUnauthorized || body["error"] != "invalid_client" || body["active"] != nil {
		t.Fatalf("introspection with a bearer token: HTTP %d %v", status, body)
	}
}
