package provider_test

import (
	"github.com/smallsso/provider/storage"

	"context"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/providertest"
)

// withOpenRegistration enables registration without an initial access
// token and with the given trusted redirect hosts.
func withOpenRegistration(hosts ...string) func(*provider.Config) {
	return func(c *provider.Config) {
		c.Registration = provider.RegistrationConfig{Enabled: true, AllowedRedirectHosts: hosts}
	}
}

const testIAT = "initial-access-token-0123456789abcdef"

func wantRegistrationRefused(t *testing.T, ts *testServer, md map[string]any, code string) {
	t.Helper()
	status, _, body := sendJSON(t, http.MethodPost, ts.srv.URL+"/register", md, "")
	if status != http.StatusBadRequest || body["error"] != code {
		t.Errorf("register %v: HTTP %d %v, want %s", md, status, body, code)
	}
}

// Open registration accepts only the redirect hosts the operator trusts
// (registration.allowed_redirect_hosts), and loopback ones on a loopback
// issuer; registration with the initial access token is not limited.
func TestOpenRegistrationRedirectHosts(t *testing.T) {
	t.Parallel()
	redirects := func(uris ...string) map[string]any { return map[string]any{"redirect_uris": uris} }

	t.Run("default", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t, withOpenRegistration())
		wantRegistrationRefused(t, ts, redirects(rpRedirect), "invalid_redirect_uri")
		wantRegistrationRefused(t, ts, redirects(webRedirect, rpRedirect), "invalid_redirect_uri")
		wantRegistrationRefused(t, ts, map[string]any{"redirect_uris": []string{"org.example.app:/cb"}, "application_type": "native"}, "invalid_redirect_uri")
		wantRegistrationRefused(t, ts, map[string]any{"redirect_uris": []string{webRedirect}, "post_logout_redirect_uris": []string{"https://rp.example.org/bye"}}, "invalid_client_metadata")
		// Loopback issuer: local development works out of the box.
		c := ts.register(t, map[string]any{"redirect_uris": []string{webRedirect}, "post_logout_redirect_uris": []string{byeURI}}, "")
		// An update is held to the same rule.
		status, _, body := sendJSON(t, http.MethodPut, c.URI, map[string]any{"client_id": c.ID, "redirect_uris": []string{rpRedirect}}, c.Token)
		if status != http.StatusBadRequest || body["error"] != "invalid_redirect_uri" {
			t.Errorf("update to an untrusted host: HTTP %d %v", status, body)
		}
	})

	t.Run("initial access token", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t, func(c *provider.Config) {
			c.Registration = provider.RegistrationConfig{Enabled: true, InitialAccessToken: testIAT}
		})
		ts.register(t, redirects(rpRedirect), testIAT)
	})

	t.Run("listed hosts", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t, withOpenRegistration("*.example.org", "App.Example.com"))
		ts.register(t, redirects(rpRedirect, "https://a.b.example.org/cb"), "")
		ts.register(t, redirects("https://app.example.com/cb"), "")
		ts.register(t, redirects(webRedirect), "")
		wantRegistrationRefused(t, ts, redirects("https://example.org/cb"), "invalid_redirect_uri")
		wantRegistrationRefused(t, ts, redirects("https://evilexample.org/cb"), "invalid_redirect_uri")
		wantRegistrationRefused(t, ts, redirects("https://app.example.com.evil.test/cb"), "invalid_redirect_uri")
	})

	t.Run("any host", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t, withOpenRegistration("*"))
		ts.register(t, redirects("https://anything.example.net/cb"), "")
		ts.register(t, map[string]any{"redirect_uris": []string{"org.example.app:/cb"}, "application_type": "native"}, "")
	})

	t.Run("public issuer", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t, withOpenRegistration(), func(c *provider.Config) { c.Issuer = "https://sso.example.org" })
		wantRegistrationRefused(t, ts, redirects(webRedirect), "invalid_redirect_uri")
		wantRegistrationRefused(t, ts, redirects(rpRedirect), "invalid_redirect_uri")
	})
}

// An openly registered client cannot take the name of one of the
// organisation's own clients.
func TestOpenRegistrationClientName(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *provider.Config) {
		c.Registration = provider.RegistrationConfig{Enabled: true, InitialAccessToken: ""}
	})
	ts.addClient(t, clientspec.Spec{ID: "cli-app", Secret: "cli-app-secret-0123456789", ClientSettings: storage.ClientSettings{Name: "Payroll", RedirectURIs: []string{webRedirect}}})
	for _, name := range []string{"Web App", "  web app ", "WEB APP", "payroll"} {
		wantRegistrationRefused(t, ts, map[string]any{"redirect_uris": []string{webRedirect}, "client_name": name}, "invalid_client_metadata")
	}
	ts.register(t, map[string]any{"redirect_uris": []string{webRedirect}, "client_name": "Web App Two"}, "")
	// Registered names are not protected from each other: first come is
	// not the organisation.
	ts.register(t, map[string]any{"redirect_uris": []string{webRedirect}, "client_name": "Web App Two"}, "")

	iat := newTestServer(t, func(c *provider.Config) {
		c.Registration = provider.RegistrationConfig{Enabled: true, InitialAccessToken: testIAT}
	})
	iat.register(t, map[string]any{"redirect_uris": []string{webRedirect}, "client_name": "Web App"}, testIAT)
}

// consentPage signs alice in for authURL and returns the consent page.
func consentPage(t *testing.T, b *providertest.Browser, authURL string) *providertest.Page {
	t.Helper()
	ctx := context.Background()
	page := get(t, b, authURL)
	form, err := page.ParseForm()
	if err != nil || !form.Values.Has("password") {
		t.Fatalf("no login form: HTTP %d %s", page.Status, page.Body)
	}
	page, err = b.Submit(ctx, page, form, url.Values{"username": {"alice"}, "password": {alicePass}})
	if err != nil {
		t.Fatal(err)
	}
	if f, err := page.ParseForm(); err != nil || len(f.Buttons["decision"]) == 0 {
		t.Fatalf("no consent page: HTTP %d Location %v", page.Status, page.Location)
	}
	return page
}

// The consent page says an openly registered client was not verified by
// the organisation; a client of the organisation's own is not marked. The
// person's remembered decision still counts.
func TestOpenRegistrationConsentMarked(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withOpenRegistration())
	c := ts.register(t, map[string]any{"redirect_uris": []string{webRedirect}, "client_name": "Stranger App"}, "")
	open := newRP(t, ts, c.ID, c.Secret, webRedirect, "openid")
	authURL := func(r *rp, opts ...oauth2.AuthCodeOption) string {
		opts = append(opts, oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
		return r.oauth2.AuthCodeURL(randomString(), opts...)
	}
	const en = "Stranger App registered itself and has not been verified by Test Org."
	const de = "Stranger App hat sich selbst registriert und wurde von Test Org nicht geprüft."

	b := providertest.NewBrowser(ts.URL)
	page := consentPage(t, b, authURL(open))
	if body := html.UnescapeString(page.Body); !strings.Contains(body, en) {
		t.Errorf("the consent page of an openly registered client does not say %q:\n%s", en, body)
	}
	// Allow and remember: the next request is answered without asking.
	form, _ := page.ParseForm()
	page, err := b.Submit(context.Background(), page, form, url.Values{"decision": {"allow"}, "remember": {"yes"}})
	if err != nil || page.Location == nil || page.Location.Query().Get("code") == "" {
		t.Fatalf("allow: %v %v", err, page)
	}
	if again := get(t, b, authURL(open)); again.Location == nil || again.Location.Query().Get("code") == "" {
		t.Errorf("a remembered decision was not honoured: HTTP %d", again.Status)
	}

	page = consentPage(t, providertest.NewBrowser(ts.URL), authURL(open, oauth2.SetAuthURLParam("ui_locales", "de"), oauth2.SetAuthURLParam("prompt", "consent")))
	if body := html.UnescapeString(page.Body); !strings.Contains(body, de) {
		t.Errorf("the German consent page does not say %q:\n%s", de, body)
	}

	web := newRP(t, ts, "web", "web-secret", webRedirect, "openid")
	page = consentPage(t, providertest.NewBrowser(ts.URL), authURL(web))
	if body := html.UnescapeString(page.Body); strings.Contains(body, "registered itself") {
		t.Error("the organisation's own client is marked as not verified")
	}
}

// /logout sends the browser to an openly registered client's
// post_logout_redirect_uri only with a valid id_token_hint: a bare
// client_id would let anyone who registers a client use the provider as a
// redirector.
func TestOpenRegistrationLogoutNeedsHint(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withOpenRegistration())
	c := ts.register(t, map[string]any{"redirect_uris": []string{webRedirect}, "post_logout_redirect_uris": []string{byeURI}}, "")
	ts.addClient(t, clientspec.Spec{
		ID: "own", Secret: "own-secret-0123456789abcd", ClientSettings: storage.ClientSettings{RedirectURIs: []string{webRedirect}, PostLogoutRedirectURIs: []string{byeURI}},
	})

	bare := get(t, providertest.NewBrowser(ts.URL), logoutURL(ts, url.Values{"client_id": {c.ID}, "post_logout_redirect_uri": {byeURI}, "state": {"s"}}))
	if bare.Location != nil {
		t.Errorf("client_id alone: redirected to %s", bare.Location)
	}
	if bare.Status != http.StatusOK {
		t.Errorf("client_id alone: HTTP %d, want the signed-out page", bare.Status)
	}
	// The organisation's own clients keep the RP-Initiated Logout rule.
	own := get(t, providertest.NewBrowser(ts.URL), logoutURL(ts, url.Values{"client_id": {"own"}, "post_logout_redirect_uri": {byeURI}, "state": {"s"}}))
	if own.Location == nil || own.Location.String() != byeURI+"?state=s" {
		t.Errorf("static client, client_id: HTTP %d Location %v", own.Status, own.Location)
	}

	b := providertest.NewBrowser(ts.URL)
	s := signIn(t, ts, b, newRP(t, ts, c.ID, c.Secret, webRedirect, "openid"))
	hinted := get(t, b, logoutURL(ts, url.Values{"id_token_hint": {s.idToken}, "post_logout_redirect_uri": {byeURI}, "state": {"s"}}))
	if hinted.Location == nil || hinted.Location.String() != byeURI+"?state=s" {
		t.Errorf("with id_token_hint: HTTP %d Location %v, want %s", hinted.Status, hinted.Location, byeURI+"?state=s")
	}
}
