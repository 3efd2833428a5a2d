package provider_test

// The audit events the handlers emit (provider/audit): what each carries,
// and that none carries a credential.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/audit"
	"github.com/smallsso/provider/provider/providertest"
)

// eventLog is an audit.Sink that keeps the events.
type eventLog struct {
	mu     sync.Mutex
	events []audit.Event
}

func (l *eventLog) Record(_ context.Context, e audit.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// find returns the last event matching, failing the test without one.
func (l *eventLog) find(t *testing.T, what string, match func(audit.Event) bool) audit.Event {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range slices.Backward(l.events) {
		if match(e) {
			if e.Time.IsZero() || e.RequestID == "" || e.ClientAddr != "127.0.0.1" {
				t.Errorf("%s event %+v: want a time, a request ID and client_addr 127.0.0.1", what, e)
			}
			return e
		}
	}
	t.Fatalf("no %s event in %+v", what, l.events)
	return audit.Event{}
}

func (l *eventLog) json(t *testing.T) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	raw, err := json.Marshal(l.events)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestAuditEvents(t *testing.T) {
	t.Parallel()
	const iat = "initial-access-token-for-audit-tests"
	log := &eventLog{}
	ts := newTestServerDeps(t, func(d *provider.Deps) { d.Events = log }, func(c *provider.Config) {
		c.Registration = provider.RegistrationConfig{Enabled: true, InitialAccessToken: iat}
	})
	passwordClient(t, ts)
	secrets := []string{alicePass, "web-secret", "svc-secret", "legacy-secret-0123456789", iat}
	named := func(name, outcome string) func(audit.Event) bool {
		return func(e audit.Event) bool { return e.Name == name && e.Outcome == outcome }
	}

	t.Run("password grant", func(t *testing.T) {
		status, body := passwordGrant(t, ts, "alice", alicePass, "openid")
		if status != http.StatusOK {
			t.Fatalf("HTTP %d %v", status, body)
		}
		secrets = append(secrets, body["access_token"].(string), body["refresh_token"].(string))
		e := log.find(t, "sign-in", named(audit.SignIn, audit.Success))
		if e.ClientID != "legacy" || e.Username != "alice" || e.Subject != ts.alice.ID {
			t.Errorf("sign-in %+v", e)
		}
		e = log.find(t, "token", named(audit.TokenIssued, audit.Success))
		if e.ClientID != "legacy" || e.GrantType != "password" || e.Subject != ts.alice.ID || e.Scope != "openid" {
			t.Errorf("token %+v", e)
		}

		passwordGrant(t, ts, "alice", "wrong-guess-1", "openid")
		e = log.find(t, "failed sign-in", named(audit.SignIn, audit.Failure))
		if e.Reason != audit.ReasonBadPassword || e.Username != "alice" || e.ClientID != "legacy" {
			t.Errorf("failed sign-in %+v", e)
		}
		e = log.find(t, "refused token request", named(audit.TokenRefused, audit.Failure))
		if e.Reason != "invalid_grant" || e.GrantType != "password" || e.ClientID != "legacy" {
			t.Errorf("refused token request %+v", e)
		}
		// An unknown user until the throttle stops the guesses.
		for range 5 {
			passwordGrant(t, ts, " carol ", "wrong-guess-2", "openid")
		}
		e = log.find(t, "unknown user", func(e audit.Event) bool { return e.Name == audit.SignIn && e.Reason == audit.ReasonUnknownUser })
		if e.Username != "carol" {
			t.Errorf("unknown user %+v: want the username as typed, trimmed", e)
		}
		passwordGrant(t, ts, "carol", "wrong-guess-3", "openid")
		if e := log.find(t, "throttled", named(audit.SignIn, audit.Failure)); e.Reason != audit.ReasonThrottled || e.Username != "carol" {
			t.Errorf("sixth guess %+v: want reason throttled", e)
		}
		secrets = append(secrets, "wrong-guess-1", "wrong-guess-2", "wrong-guess-3")
	})

	t.Run("client credentials and a wrong client secret", func(t *testing.T) {
		status, _, body := postForm(t, ts.URL+"/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"api:read"}}, "svc", "svc-secret")
		if status != http.StatusOK {
			t.Fatalf("HTTP %d %v", status, body)
		}
		secrets = append(secrets, body["access_token"].(string))
		if e := log.find(t, "token", named(audit.TokenIssued, audit.Success)); e.GrantType != "client_credentials" || e.ClientID != "svc" || e.Subject != "svc" {
			t.Errorf("token %+v", e)
		}
		const guess = "svc-secret-guess"
		secrets = append(secrets, guess)
		postForm(t, ts.URL+"/token", url.Values{"grant_type": {"client_credentials"}}, "svc", guess)
		if e := log.find(t, "refused", named(audit.TokenRefused, audit.Failure)); e.Reason != "invalid_client" || e.ClientID != "svc" {
			t.Errorf("refused %+v", e)
		}
		// A revocation names the client.
		postForm(t, ts.URL+"/revoke", url.Values{"token": {body["access_token"].(string)}}, "svc", "svc-secret")
		if e := log.find(t, "revocation", named(audit.TokenRevoked, audit.Success)); e.ClientID != "svc" || e.Reason != "client" {
			t.Errorf("revocation %+v", e)
		}
	})

	t.Run("consent denied", func(t *testing.T) {
		r := newRP(t, ts, "web", "web-secret", webRedirect, "openid", "email")
		f := r.authorize(t, providertest.NewBrowser(ts.URL), alicePass, "deny")
		if f.redirect.Query().Get("error") != "access_denied" {
			t.Fatalf("redirect %s", f.redirect)
		}
		if e := log.find(t, "consent", func(e audit.Event) bool { return e.Name == audit.Consent }); e.Outcome != audit.Denied || e.ClientID != "web" || e.Subject != ts.alice.ID {
			t.Errorf("consent %+v", e)
		}
	})

	t.Run("registration", func(t *testing.T) {
		reg := ts.register(t, webMetadata(nil), iat)
		secrets = append(secrets, reg.Secret, reg.Token)
		if e := log.find(t, "registration", named(audit.ClientRegistered, audit.Success)); e.ClientID != reg.ID {
			t.Errorf("registration %+v", e)
		}
		md := webMetadata(map[string]any{"client_id": reg.ID, "client_name": "Renamed"})
		if status, _, body := sendJSON(t, http.MethodPut, reg.URI, md, reg.Token); status != http.StatusOK {
			t.Fatalf("update: HTTP %d %v", status, body)
		}
		if e := log.find(t, "update", named(audit.ClientUpdated, audit.Success)); e.ClientID != reg.ID {
			t.Errorf("update %+v", e)
		}
		if status, _, body := sendJSON(t, http.MethodDelete, reg.URI, nil, reg.Token); status != http.StatusNoContent {
			t.Fatalf("delete: HTTP %d %v", status, body)
		}
		if e := log.find(t, "delete", named(audit.ClientDeleted, audit.Success)); e.ClientID != reg.ID {
			t.Errorf("delete %+v", e)
		}
	})

	t.Run("account page and logout", func(t *testing.T) {
		b, _ := accountBrowser(t, ts)
		if e := log.find(t, "account sign-in", named(audit.SignIn, audit.Success)); e.ClientID != "account" || e.Username != "alice" {
			t.Errorf("account sign-in %+v", e)
		}
		const next = "a brand new passphrase for audit"
		secrets = append(secrets, next)
		postAccountForm(t, b, ts.URL+"/account/password", url.Values{"current": {"not-it-at-all"}, "new": {next}, "confirm": {next}})
		if e := log.find(t, "refused change", named(audit.PasswordChanged, audit.Failure)); e.Reason != audit.ReasonBadPassword || e.Subject != ts.alice.ID || e.Username != "alice" {
			t.Errorf("refused change %+v", e)
		}
		postAccountForm(t, b, ts.URL+"/account/password", url.Values{"current": {alicePass}, "new": {next}, "confirm": {next}})
		if e := log.find(t, "change", named(audit.PasswordChanged, audit.Success)); e.Subject != ts.alice.ID {
			t.Errorf("change %+v", e)
		}
		postAccountForm(t, b, ts.URL+"/account/revoke", url.Values{"client_id": {"web"}})
		if e := log.find(t, "revoke app", func(e audit.Event) bool { return e.Name == audit.TokenRevoked && e.Reason == "user" }); e.ClientID != "web" || e.Subject != ts.alice.ID {
			t.Errorf("revoke app %+v", e)
		}

		page, err := b.Get(context.Background(), ts.URL+"/logout")
		if err != nil {
			t.Fatal(err)
		}
		form, err := page.ParseForm()
		if err != nil {
			t.Fatalf("logout confirmation: %v\n%s", err, page.Body)
		}
		if _, err := b.Submit(context.Background(), page, form, url.Values{"confirm": {"yes"}}); err != nil {
			t.Fatal(err)
		}
		if e := log.find(t, "logout", named(audit.Logout, audit.Success)); e.Subject != ts.alice.ID {
			t.Errorf("logout %+v", e)
		}
	})

	raw := log.json(t)
	for _, s := range secrets {
		if s != "" && strings.Contains(raw, s) {
			t.Errorf("an audit event carries the secret %q: %s", s, raw)
		}
	}
}
