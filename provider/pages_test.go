package provider_test

// The pages over plain HTTP: headers, cookies, languages, the
// cross-origin guard and the account forms' rules. The browser tests
// (browser_test.go) cover the same pages as a person uses them.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/smallsso/provider/provider/secret"

	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/providertest"
)

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func webAuthURL(ts *testServer, extra ...oauth2.AuthCodeOption) string {
	c := oauth2.Config{ClientID: "web", RedirectURL: webRedirect, Endpoint: oauth2.Endpoint{AuthURL: ts.URL + "/authorize"}, Scopes: []string{"openid", "email"}}
	return c.AuthCodeURL(randomString(), extra...)
}

func mustRequest(t *testing.T, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func cookieNamed(h http.Header, name string) *http.Cookie {
	for _, line := range h.Values("Set-Cookie") {
		if c, err := http.ParseSetCookie(line); err == nil && c.Name == name {
			return c
		}
	}
	return nil
}

func TestPagesSecurityHeaders(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, u := range []string{webAuthURL(ts), ts.URL + "/account", ts.URL + "/nowhere"} {
		page, err := providertest.NewBrowser(ts.URL).Get(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		h := page.Header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"frame-ancestors 'none'", "default-src 'none'", "style-src 'self'", "script-src 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", u, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP %q allows inline code", u, csp)
		}
		for k, want := range map[string]string{
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "no-referrer",
			"Cache-Control":          "no-store",
			"X-Frame-Options":        "DENY",
		} {
			if got := h.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", u, k, got, want)
			}
		}
		if strings.Contains(page.Body, "<style") || strings.Contains(page.Body, "style=") || strings.Contains(page.Body, "onclick") {
			t.Errorf("%s: inline style or script in the page; the CSP would block it", u)
		}
		if c := cookieNamed(h, "csrf"); u != ts.URL+"/nowhere" && (c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/") {
			t.Errorf("%s: CSRF cookie %+v, want HttpOnly, SameSite=Lax, Path=/", u, c)
		}
	}
	// The theme's colours are a style sheet of their own, not inline.
	resp, err := http.Get(ts.URL + "/static/theme.css")
	if err != nil {
		t.Fatal(err)
	}
	css, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/css; charset=utf-8" || !strings.Contains(string(css), "--primary:#2456c8") {
		t.Errorf("theme.css: %s %q", resp.Header.Get("Content-Type"), css)
	}
}

// signInForm loads the sign-in page at u and posts it with extra fields.
func signInForm(t *testing.T, b *providertest.Browser, u string, set url.Values) *providertest.Page {
	t.Helper()
	ctx := context.Background()
	page, err := b.Get(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	form, err := page.ParseForm()
	if err != nil {
		t.Fatal(err)
	}
	fields := url.Values{"username": {"alice"}, "password": {alicePass}}
	for k, v := range set {
		fields[k] = v
	}
	page, err = b.Submit(ctx, page, form, fields)
	if err != nil {
		t.Fatal(err)
	}
	return page
}

func TestKeepMeSignedIn(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *provider.Config) { c.LoginSessionLifespan = 8 * time.Hour })
	for _, keep := range []bool{false, true} {
		set := url.Values{}
		if keep {
			set.Set("remember", "yes")
		}
		page := signInForm(t, providertest.NewBrowser(ts.URL), webAuthURL(ts), set)
		c := cookieNamed(page.Header, "session")
		if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure {
			t.Fatalf("keep=%v: session cookie %+v, want HttpOnly, SameSite=Lax, not Secure over http", keep, c)
		}
		wantMaxAge := 0 // a session cookie, gone with the browser
		if keep {
			wantMaxAge = int((8 * time.Hour).Seconds())
		}
		if c.MaxAge != wantMaxAge || (!keep && !c.Expires.IsZero()) {
			t.Errorf("keep=%v: cookie Max-Age %d Expires %v, want Max-Age %d", keep, c.MaxAge, c.Expires, wantMaxAge)
		}
		sum := sha256.Sum256([]byte(c.Value))
		s, err := ts.Store.GetBrowserSession(context.Background(), hex.EncodeToString(sum[:]))
		if err != nil {
			t.Fatalf("keep=%v: the session behind the cookie: %v", keep, err)
		}
		// The server ends the session after the lifespan either way.
		if s.Remember != keep || s.ExpiresAt.Sub(s.AuthTime) != 8*time.Hour {
			t.Errorf("keep=%v: stored session remember=%v, lasts %v; want %v and 8h", keep, s.Remember, s.ExpiresAt.Sub(s.AuthTime), keep)
		}
	}
}

func getWithHeaders(t *testing.T, u string, h map[string]string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

func TestPagesLanguage(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, tc := range []struct {
		name, url, accept, lang, text string
	}{
		{"default", webAuthURL(ts), "", "en", "Keep me signed in"},
		{"Accept-Language", webAuthURL(ts), "de-DE,de;q=0.9,en;q=0.5", "de", "Angemeldet bleiben"},
		{"ui_locales wins", webAuthURL(ts, oauth2.SetAuthURLParam("ui_locales", "de")), "en-US", "de", "Angemeldet bleiben"},
		{"unknown ui_locales", webAuthURL(ts, oauth2.SetAuthURLParam("ui_locales", "se")), "en", "en", "Keep me signed in"},
		{"error page", ts.URL + "/nowhere", "de", "de", "Unter dieser Adresse gibt es nichts."},
		{"account page", ts.URL + "/account", "de", "de", "um Ihr Konto zu sehen und zu verwalten"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, h, body := getWithHeaders(t, tc.url, map[string]string{"Accept-Language": tc.accept})
			if !strings.Contains(body, `<html lang="`+tc.lang+`">`) || !strings.Contains(body, tc.text) || h.Get("Content-Language") != tc.lang {
				t.Errorf("want lang %s and %q; Content-Language %q, body:\n%s", tc.lang, tc.text, h.Get("Content-Language"), body)
			}
		})
	}

	status, _, doc := doJSON(t, mustRequest(t, ts.URL+"/.well-known/openid-configuration"))
	if status != http.StatusOK || fmt.Sprint(doc["ui_locales_supported"]) != "[en de]" {
		t.Errorf("discovery ui_locales_supported = %v, want [en de]", doc["ui_locales_supported"])
	}

	// ui_locales travel with the sealed interaction: the page after a
	// failed sign-in stays in the language of the request.
	b := providertest.NewBrowser(ts.URL)
	page := signInForm(t, b, webAuthURL(ts, oauth2.SetAuthURLParam("ui_locales", "de")), url.Values{"password": {"wrong"}})
	if page.Status != http.StatusUnauthorized || !strings.Contains(page.Body, "Benutzername oder Passwort ist falsch.") {
		t.Errorf("failed sign-in in German: HTTP %d\n%s", page.Status, page.Body)
	}
}

// postFromPage posts a form of page with the browser's cookies and the
// given headers, as a browser would from some origin.
func postFromPage(t *testing.T, b *providertest.Browser, page *providertest.Page, set url.Values, h map[string]string) (int, string) {
	t.Helper()
	form, err := page.ParseForm()
	if err != nil {
		t.Fatal(err)
	}
	vals := form.Values
	for k, v := range set {
		vals[k] = v
	}
	action, _ := page.URL.Parse(form.Action)
	req, _ := http.NewRequest(http.MethodPost, action.String(), strings.NewReader(vals.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := b.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestCrossOriginProtectionGuardsFormsOnly(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	creds := url.Values{"username": {"alice"}, "password": {alicePass}}
	for _, tc := range []struct {
		name    string
		headers map[string]string
		refused bool
	}{
		{"cross-site fetch metadata", map[string]string{"Sec-Fetch-Site": "cross-site"}, true},
		{"same-site fetch metadata", map[string]string{"Sec-Fetch-Site": "same-site"}, true},
		{"foreign Origin", map[string]string{"Origin": "http://evil.example"}, true},
		{"same-origin", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": ts.URL}, false},
		{"no browser headers", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A valid CSRF token and cookie: only the guard can refuse.
			b := providertest.NewBrowser(ts.URL)
			page, err := b.Get(context.Background(), webAuthURL(ts))
			if err != nil {
				t.Fatal(err)
			}
			status, body := postFromPage(t, b, page, creds, tc.headers)
			refused := status == http.StatusForbidden && strings.Contains(body, "sent from another website")
			if refused != tc.refused {
				t.Errorf("HTTP %d, refused=%v, want refused=%v:\n%s", status, refused, tc.refused, body)
			}
		})
	}

	// The authorization endpoint takes cross-site posts: relying parties
	// send requests that way (OIDC Core §3.1.2.1).
	rp := oauth2.Config{ClientID: "web", RedirectURL: webRedirect, Scopes: []string{"openid"}}
	u, _ := url.Parse(rp.AuthCodeURL("xyz"))
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/authorize", strings.NewReader(u.Query().Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "http://rp.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `name="password"`) {
		t.Errorf("cross-site POST /authorize: HTTP %d, want the sign-in page:\n%s", resp.StatusCode, body)
	}
	// An RP may post its logout request cross-site too; only the
	// confirmation form (confirm=yes) is the provider's own.
	for _, tc := range []struct {
		form    string
		refused bool
	}{{"state=s", false}, {"confirm=yes&csrf=x", true}} {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/logout", strings.NewReader(tc.form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if refused := strings.Contains(string(body), "sent from another website"); refused != tc.refused {
			t.Errorf("cross-site POST /logout %s: HTTP %d, refused=%v, want %v", tc.form, resp.StatusCode, refused, tc.refused)
		}
	}
	for _, path := range []string{"/token", "/revoke", "/introspect", "/par"} {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader("token=x&grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		req.Header.Set("Origin", "http://rp.example")
		req.SetBasicAuth("svc", "svc-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), "sent from another website") {
			t.Errorf("cross-site POST %s refused by the form guard", path)
		}
	}
}

// accountBrowser is a browser signed in through the account page.
func accountBrowser(t *testing.T, ts *testServer) (*providertest.Browser, *providertest.Page) {
	t.Helper()
	b := providertest.NewBrowser(ts.URL)
	page := signInForm(t, b, ts.URL+"/account", nil)
	if page.Status != http.StatusOK || page.URL.Path != "/account" || !strings.Contains(page.Body, "Alice Liddell") {
		t.Fatalf("sign-in on the account page: HTTP %d at %s:\n%s", page.Status, page.URL, page.Body)
	}
	return b, page
}

func TestAccountSignInComesBack(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	b := providertest.NewBrowser(ts.URL)
	page, err := b.Get(context.Background(), ts.URL+"/account")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.Body, `action="/login"`) || strings.Contains(page.Body, "Alice") {
		t.Fatalf("signed out, /account must ask to sign in:\n%s", page.Body)
	}
	// The account sign-in cannot be replayed at the consent endpoint.
	form, _ := page.ParseForm()
	form.Action = "/consent"
	consent, err := b.Submit(context.Background(), page, form, url.Values{"decision": {"allow"}})
	if err != nil {
		t.Fatal(err)
	}
	if consent.Status != http.StatusBadRequest || consent.Location != nil {
		t.Errorf("account interaction at /consent: HTTP %d, location %v", consent.Status, consent.Location)
	}
	accountBrowser(t, ts)
}

func TestAccountPasswordRules(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	b, _ := accountBrowser(t, ts)
	post := func(current, next, confirm string) (int, string) {
		t.Helper()
		// Each answer is the account page again, with a fresh form.
		return postAccountForm(t, b, ts.URL+"/account/password", url.Values{"current": {current}, "new": {next}, "confirm": {confirm}})
	}
	for _, tc := range []struct {
		name, current, next, confirm string
		status                       int
		text                         string
	}{
		{"empty", "", "x", "x", 400, "Please fill in your current password"},
		{"mismatch", alicePass, "long enough one", "long enough two", 400, "The two new passwords are not the same."},
		{"too short", alicePass, "short", "short", 400, "at least 8 characters"},
		{"same", alicePass, alicePass, alicePass, 400, "must be different from the current one"},
		{"wrong current", "nope", "long enough new", "long enough new", 401, "Your current password is not correct."},
	} {
		status, body := post(tc.current, tc.next, tc.confirm)
		if status != tc.status || !strings.Contains(body, tc.text) {
			t.Errorf("%s: HTTP %d, want %d and %q", tc.name, status, tc.status, tc.text)
		}
	}
	// Like sign-in, the current password is throttled per account.
	var status int
	var body string
	for range 5 {
		status, body = post("nope", "long enough new", "long enough new")
	}
	if status != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed sign-ins. Try again in") {
		t.Fatalf("after repeated wrong current passwords: HTTP %d:\n%s", status, body)
	}
}

// postAccountForm posts one of the account page's forms with the
// browser's CSRF token, from the provider's own origin.
func postAccountForm(t *testing.T, b *providertest.Browser, action string, vals url.Values) (int, string) {
	t.Helper()
	u, _ := url.Parse(action)
	var csrf string
	for _, c := range b.HTTP.Jar.Cookies(u) {
		if c.Name == "csrf" {
			csrf = c.Value
		}
	}
	vals.Set("csrf", csrf)
	req, _ := http.NewRequest(http.MethodPost, action, strings.NewReader(vals.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := b.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestAccountPasswordChangeRehashesAndRenewsSession(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	b, _ := accountBrowser(t, ts)
	u, _ := url.Parse(ts.URL)
	before := sessionCookie(b, u)
	status, body := postAccountForm(t, b, ts.URL+"/account/password", url.Values{"current": {alicePass}, "new": {"a brand new passphrase"}, "confirm": {"a brand new passphrase"}})
	if status != http.StatusOK || !strings.Contains(body, "Your password was changed.") {
		t.Fatalf("change: HTTP %d:\n%s", status, body)
	}
	after := sessionCookie(b, u)
	if after == "" || after == before {
		t.Error("the session ID was not renewed by the password change")
	}
	sum := sha256.Sum256([]byte(before))
	if _, err := ts.Store.GetBrowserSession(context.Background(), hex.EncodeToString(sum[:])); err == nil {
		t.Error("the old session survived the password change")
	}
	user, err := ts.Store.GetUser(context.Background(), ts.alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(user.PasswordHash, "$argon2id$") || secret.Check(user.PasswordHash, "a brand new passphrase") != nil {
		t.Errorf("new hash %q is not an argon2id hash of the new password", user.PasswordHash)
	}
}

func sessionCookie(b *providertest.Browser, u *url.URL) string {
	for _, c := range b.HTTP.Jar.Cookies(u) {
		if c.Name == "session" {
			return c.Value
		}
	}
	return ""
}

func TestAccountFormsNeedCSRFAndSession(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	b, _ := accountBrowser(t, ts)
	for _, path := range []string{"/account/password", "/account/revoke"} {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader("client_id=web&csrf=forged"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := b.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s with a forged CSRF token: HTTP %d, want 403", path, resp.StatusCode)
		}
	}
	// Signed out (another browser, its own CSRF cookie): back to sign-in.
	other := providertest.NewBrowser(ts.URL)
	if _, err := other.Get(context.Background(), ts.URL+"/account"); err != nil {
		t.Fatal(err)
	}
	status, body := postAccountForm(t, other, ts.URL+"/account/revoke", url.Values{"client_id": {"web"}})
	if status != http.StatusOK || !strings.Contains(body, `name="password"`) {
		t.Errorf("revoke while signed out: HTTP %d, want the sign-in form:\n%s", status, body)
	}
}
