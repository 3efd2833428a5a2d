package provider_test

// Browser tests: the real server on loopback, driven through its pages by
// headless Chromium (Debian's chromium package; CHROMIUM_PATH overrides
// where it is). One browser process serves every test; each test gets its
// own browser context, so cookies never leak between tests. Every page is
// also photographed at phone and desktop width into
// test-output/screenshots/ (gitignored) for a person to look at.

import (
	"github.com/smallsso/provider/storage"

	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/secret"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider"
)

var chrome struct {
	once   sync.Once
	ctx    context.Context
	cancel func()
	err    error
	path   string
}

// stopChromium ends the shared browser; TestMain calls it.
func stopChromium() {
	if chrome.cancel != nil {
		chrome.cancel()
	}
}

func chromiumPath() string {
	if p := os.Getenv("CHROMIUM_PATH"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func startChromium() {
	chrome.path = chromiumPath()
	if chrome.path == "" {
		return
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome.path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.IgnoreCertErrors, // the logos come from a self-signed https test server
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("lang", "en-US"),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	chrome.cancel = func() { cancelCtx(); cancelAlloc() }
	if err := chromedp.Do(ctx); err != nil {
		chrome.err = fmt.Errorf("start %s: %w", chrome.path, err)
		return
	}
	chrome.ctx = ctx
}

// newTab is a fresh browser context (its own cookie jar) in the shared
// browser. Without a browser the test fails in CI and is skipped, loudly,
// elsewhere.
func newTab(t *testing.T) context.Context {
	t.Helper()
	chrome.once.Do(startChromium)
	if chrome.path == "" {
		msg := "no Chromium: install Debian's chromium package (apt-get install -y chromium) or set CHROMIUM_PATH"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPING BROWSER TEST: " + msg)
	}
	if chrome.err != nil {
		t.Fatal(chrome.err)
	}
	ctx, cancel := chromedp.NewContext(chrome.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelTimeout)
	return ctx
}

// pagesFixture is the provider with a brand, a relying party "Team Notes"
// whose callback is a real page, and an https server for the logos.
type pagesFixture struct {
	ts     *testServer
	rp     *httptest.Server
	oauth  oauth2.Config
	logos  *httptest.Server
	client string
}

const logoSVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 48 48"><rect width="48" height="48" rx="10" fill="%s"/><path d="M14 24h20M24 14v20" stroke="#fff" stroke-width="5" stroke-linecap="round"/></svg>`

func newPagesFixture(t *testing.T, mutate ...func(*provider.Config)) *pagesFixture {
	t.Helper()
	logos := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/svg+xml")
		colour := "#0f766e"
		if r.URL.Path == "/app.svg" {
			colour = "#c2410c"
		}
		fmt.Fprintf(w, logoSVG, colour)
	}))
	t.Cleanup(logos.Close)
	mutate = append([]func(*provider.Config){func(c *provider.Config) {
		c.OrgName = "Acme Cooperative"
		c.LogoURL = logos.URL + "/org.svg"
		c.PrimaryColor = "#0f766e"
	}}, mutate...)
	ts := newTestServer(t, mutate...)
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>Team Notes</title><p id="rp-done">Back at Team Notes</p>`)
	}))
	t.Cleanup(rp.Close)
	secret := ts.addClient(t, clientspec.Spec{
		ID: "notes", Secret: "notes-secret", ClientSettings: storage.ClientSettings{
			Name:         "Team Notes",
			RedirectURIs: []string{rp.URL + "/callback"},
			GrantTypes:   []string{"authorization_code", "refresh_token"},
			Scopes:       []string{"openid", "profile", "email", "offline_access"},
			LogoURI:      logos.URL + "/app.svg",
			ClientURI:    "https://notes.example.org",
			PolicyURI:    "https://notes.example.org/privacy",
			TosURI:       "https://notes.example.org/terms",
		},
	})
	return &pagesFixture{
		ts: ts, rp: rp, logos: logos, client: "notes",
		oauth: oauth2.Config{
			ClientID: "notes", ClientSecret: secret, RedirectURL: rp.URL + "/callback",
			Endpoint: oauth2.Endpoint{AuthURL: ts.URL + "/authorize", TokenURL: ts.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader},
			Scopes:   []string{"openid", "profile", "email", "offline_access"},
		},
	}
}

// authRequest is one authorization request the test sends the browser to.
type authRequest struct {
	url, state, verifier string
}

func (f *pagesFixture) authRequest(opts ...oauth2.AuthCodeOption) authRequest {
	a := authRequest{state: randomString(), verifier: oauth2.GenerateVerifier()}
	opts = append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(a.verifier)}, opts...)
	a.url = f.oauth.AuthCodeURL(a.state, opts...)
	return a
}

// landed checks that the browser is back at the relying party with a
// successful response to a, and returns the code.
func (f *pagesFixture) landed(t *testing.T, ctx context.Context, a authRequest) string {
	t.Helper()
	q := rpQuery(t, ctx, f)
	if e := q.Get("error"); e != "" {
		t.Fatalf("authorization error %s: %s", e, q.Get("error_description"))
	}
	if q.Get("state") != a.state || q.Get("iss") != f.ts.URL || q.Get("code") == "" {
		t.Fatalf("callback query %v: want state %q, iss %q and a code", q, a.state, f.ts.URL)
	}
	return q.Get("code")
}

func rpQuery(t *testing.T, ctx context.Context, f *pagesFixture) url.Values {
	t.Helper()
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("#rp-done")))
	loc := result(t, ctx, chromedp.Location())
	u, err := url.Parse(loc)
	if err != nil || !strings.HasPrefix(loc, f.rp.URL+"/callback") {
		t.Fatalf("browser is at %s, want the relying party's callback", loc)
	}
	return u.Query()
}

func run(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %v (page: %s)", err, pageText(ctx))
	}
}

func result[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %v (page: %s)", err, pageText(ctx))
	}
	return v
}

// submit clicks a button and waits for the page it leads to; it returns
// that page's HTTP status.
func submit(t *testing.T, ctx context.Context, button string) int64 {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(button)))
	if err != nil {
		t.Fatalf("click %s: %v (page: %s)", button, err, pageText(ctx))
	}
	return resp.Status
}

func navigate(t *testing.T, ctx context.Context, u string) int64 {
	t.Helper()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(u))
	if err != nil {
		t.Fatalf("navigate %s: %v", u, err)
	}
	return resp.Status
}

// pageText is the page's visible text, shortened for error messages.
func pageText(ctx context.Context) string {
	s := fullText(ctx)
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}

func fullText(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return strings.Join(strings.Fields(s), " ")
}

// fillLogin types into the sign-in form and submits it; it returns the
// status of the page the form leads to.
func fillLogin(t *testing.T, ctx context.Context, username, password string, keep bool) int64 {
	t.Helper()
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.WaitVisible(chromedp.CSS("#username")),
		js(`document.getElementById("username").value = ""`),
		chromedp.SendKeys(chromedp.CSS("#username"), username),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
	}
	if keep {
		steps = append(steps, chromedp.Click(chromedp.CSS("#remember")))
	}
	run(t, ctx, steps...)
	return submit(t, ctx, "form button[type=submit]")
}

// js runs a script for its effect.
func js(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[any](expr)(ctx, t)
		return err
	})
}

func expectText(t *testing.T, ctx context.Context, want ...string) {
	t.Helper()
	got := fullText(ctx)
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Fatalf("page does not say %q; it says: %s", w, got)
		}
	}
}

var screenshotSizes = []struct {
	name          string
	width, height int64
	mobile        bool
}{
	{"phone", 390, 844, true},
	{"desktop", 1280, 800, false},
}

// screenshot writes the current page at phone and desktop width to
// test-output/screenshots/<name>-<size>.png, and checks the page's basic
// accessibility on the way.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	checkAccessible(t, ctx, name)
	dir := filepath.Join("..", "test-output", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range screenshotSizes {
		var opts []chromedp.EmulateViewportOption
		if s.mobile {
			opts = append(opts, chromedp.EmulateMobile, chromedp.EmulatePortrait, chromedp.EmulateTouch)
		}
		run(t, ctx, chromedp.EmulateViewport(s.width, s.height, opts...))
		png := result(t, ctx, chromedp.FullScreenshot(100))
		if err := os.WriteFile(filepath.Join(dir, name+"-"+s.name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, ctx, chromedp.EmulateViewport(1280, 800))
}

// a11yScript lists what a page gets wrong of the checks a script can make:
// a language, one h1, a label for every field, a name for every button,
// alt text on images, AA contrast of buttons and body text, and no
// horizontal scrolling at the current width.
const a11yScript = `(() => {
  const problems = [];
  if (!document.documentElement.lang) problems.push("html has no lang");
  if (document.querySelectorAll("h1").length !== 1) problems.push("want exactly one h1");
  for (const el of document.querySelectorAll("input:not([type=hidden]):not([hidden]), select, textarea")) {
    if (!(el.labels && el.labels.length) && !el.getAttribute("aria-label")) problems.push("field without label: " + (el.id || el.name));
  }
  for (const b of document.querySelectorAll("button:not([hidden]), a")) {
    if (!b.textContent.trim() && !b.getAttribute("aria-label")) problems.push("control without a name");
  }
  for (const img of document.querySelectorAll("img")) if (!img.hasAttribute("alt")) problems.push("img without alt");
  const rgb = s => s.match(/[\d.]+/g).slice(0, 3).map(Number);
  const lum = c => { const v = c.map(x => { x /= 255; return x <= 0.04045 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); }); return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const bgOf = el => { for (; el; el = el.parentElement) { const c = getComputedStyle(el).backgroundColor; if (!c.startsWith("rgba(0, 0, 0, 0)") && c !== "transparent") return rgb(c); } return [255, 255, 255]; };
  for (const el of document.querySelectorAll("button:not([hidden]), p, a, label, dt, dd, li, h1, h2")) {
    if (!el.textContent.trim() || el.closest(".visually-hidden")) continue;
    const r = ratio(rgb(getComputedStyle(el).color), bgOf(el));
    if (r < 4.5) problems.push("contrast " + r.toFixed(2) + " of " + el.tagName.toLowerCase() + " " + JSON.stringify(el.textContent.trim().slice(0, 30)));
  }
  if (document.documentElement.scrollWidth > window.innerWidth + 1) problems.push("page scrolls sideways");
  return problems;
})()`

func checkAccessible(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	for _, s := range screenshotSizes {
		var opts []chromedp.EmulateViewportOption
		if s.mobile {
			opts = append(opts, chromedp.EmulateMobile, chromedp.EmulatePortrait)
		}
		run(t, ctx, chromedp.EmulateViewport(s.width, s.height, opts...))
		if problems := result(t, ctx, chromedp.Evaluate[[]string](a11yScript)); len(problems) > 0 {
			t.Errorf("%s at %s width: %s", name, s.name, strings.Join(problems, "; "))
		}
	}
	run(t, ctx, chromedp.EmulateViewport(1280, 800))
}

func activeID(t *testing.T, ctx context.Context) string {
	t.Helper()
	return result(t, ctx, chromedp.Evaluate[string](`(() => { const e = document.activeElement; return e ? (e.id || e.getAttribute("value") || e.tagName.toLowerCase()) : ""; })()`))
}

func TestBrowserLoginConsentRedirect(t *testing.T) {
	f := newPagesFixture(t)
	ctx := newTab(t)
	a := f.authRequest()
	navigate(t, ctx, a.url)
	expectText(t, ctx, "Acme Cooperative", "Sign in", "to continue to Team Notes", "notes.example.org", "Keep me signed in", "Privacy policy of Team Notes")
	screenshot(t, ctx, "login")

	if status := fillLogin(t, ctx, "alice", "not her password", false); status != http.StatusUnauthorized {
		t.Fatalf("wrong password: HTTP %d, want 401", status)
	}
	expectText(t, ctx, "Incorrect username or password.")
	screenshot(t, ctx, "login-wrong-password")

	fillLogin(t, ctx, "alice", alicePass, false)
	expectText(t, ctx, "Allow Team Notes to use your account?", "You are signed in as alice.",
		"Know who you are when you sign in", "See your email address", "Stay connected while you are away", "Remember this decision")
	screenshot(t, ctx, "consent")
	submit(t, ctx, "button[value=allow]")
	code := f.landed(t, ctx, a)

	tok, err := f.oauth.Exchange(context.Background(), code, oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatalf("exchange the code the browser brought back: %v", err)
	}
	if tok.Extra("id_token") == nil || tok.RefreshToken == "" {
		t.Fatal("token response lacks an ID token or a refresh token")
	}
}

func TestBrowserDeny(t *testing.T) {
	f := newPagesFixture(t)
	ctx := newTab(t)
	a := f.authRequest()
	navigate(t, ctx, a.url)
	fillLogin(t, ctx, "alice", alicePass, false)
	submit(t, ctx, "button[value=deny]")
	q := rpQuery(t, ctx, f)
	if q.Get("error") != "access_denied" || q.Get("state") != a.state || q.Get("code") != "" {
		t.Fatalf("deny: callback query %v, want error=access_denied with the state and no code", q)
	}
	// Nothing was remembered: the next request asks again.
	navigate(t, ctx, f.authRequest().url)
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("button[value=allow]")))
}

func TestBrowserRememberConsentSkipsIt(t *testing.T) {
	f := newPagesFixture(t)
	ctx := newTab(t)
	a := f.authRequest()
	navigate(t, ctx, a.url)
	fillLogin(t, ctx, "alice", alicePass, false)
	if checked := result(t, ctx, chromedp.Evaluate[bool](`document.getElementById("remember").checked`)); !checked {
		t.Fatal("remember this decision is not checked by default")
	}
	submit(t, ctx, "button[value=allow]")
	f.landed(t, ctx, a)

	// Signed in and remembered: straight back, no page in between.
	b := f.authRequest()
	navigate(t, ctx, b.url)
	f.landed(t, ctx, b)

	// Unchecked, the decision is not kept.
	if err := f.ts.Store.DeleteConsent(context.Background(), f.ts.alice.ID, f.client); err != nil {
		t.Fatal(err)
	}
	g := newTab(t)
	c := f.authRequest()
	navigate(t, g, c.url)
	fillLogin(t, g, "alice", alicePass, false)
	run(t, g, chromedp.Click(chromedp.CSS("#remember")))
	submit(t, g, "button[value=allow]")
	f.landed(t, g, c)
	navigate(t, g, f.authRequest().url)
	run(t, g, chromedp.WaitVisible(chromedp.CSS("button[value=allow]")))
}

func TestBrowserAccountPasswordChange(t *testing.T) {
	f := newPagesFixture(t)
	ctx := newTab(t)
	navigate(t, ctx, f.ts.URL+"/account")
	expectText(t, ctx, "Sign in", "to see and manage your account")
	screenshot(t, ctx, "account-sign-in")
	fillLogin(t, ctx, "alice", alicePass, false)
	if loc := result(t, ctx, chromedp.Location()); loc != f.ts.URL+"/account" {
		t.Fatalf("after signing in on the account page the browser is at %s", loc)
	}
	expectText(t, ctx, "Your account", "alice", "Alice Liddell", "alice@example.org", "admins, staff", "Change password", "No app has access to your account.", "Sign out")
	if href := result(t, ctx, chromedp.Evaluate[string](`document.querySelector("a.signout").getAttribute("href")`)); href != "/logout" {
		t.Fatalf("sign out links to %q, want /logout", href)
	}
	screenshot(t, ctx, "account")

	const newPass = "purple elephant tuesday morning"
	change := func(current, next, confirm string) int64 {
		run(t, ctx,
			chromedp.SendKeys(chromedp.CSS("#current"), current),
			chromedp.SendKeys(chromedp.CSS("#new"), next),
			chromedp.SendKeys(chromedp.CSS("#confirm"), confirm),
		)
		return submit(t, ctx, `form[action$="/account/password"] button`)
	}
	if status := change("wrong current", newPass, newPass); status != http.StatusUnauthorized {
		t.Fatalf("wrong current password: HTTP %d, want 401", status)
	}
	expectText(t, ctx, "Your current password is not correct.")
	screenshot(t, ctx, "account-wrong-password")
	if status := change(alicePass, newPass, newPass+"!"); status != http.StatusBadRequest {
		t.Fatalf("mismatched confirmation: HTTP %d, want 400", status)
	}
	expectText(t, ctx, "The two new passwords are not the same.")

	change(alicePass, newPass, newPass)
	expectText(t, ctx, "Your password was changed.")
	screenshot(t, ctx, "account-password-changed")

	// A new browser: the old password fails, the new one signs in.
	g := newTab(t)
	a := f.authRequest()
	navigate(t, g, a.url)
	fillLogin(t, g, "alice", alicePass, false)
	expectText(t, g, "Incorrect username or password.")
	fillLogin(t, g, "alice", newPass, false)
	submit(t, g, "button[value=allow]")
	f.landed(t, g, a)
}

func TestBrowserAccountRevokeApp(t *testing.T) {
	f := newPagesFixture(t)
	ctx := newTab(t)
	a := f.authRequest()
	navigate(t, ctx, a.url)
	fillLogin(t, ctx, "alice", alicePass, true)
	submit(t, ctx, "button[value=allow]")
	code := f.landed(t, ctx, a)
	tok, err := f.oauth.Exchange(context.Background(), code, oauth2.VerifierOption(a.verifier))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("exchange: %v (refresh token %q)", err, tok.RefreshToken)
	}

	navigate(t, ctx, f.ts.URL+"/account")
	expectText(t, ctx, "Apps you allowed", "Team Notes can:", "See your email address", "It can keep access while you are away.", "Remove access for Team Notes")
	screenshot(t, ctx, "account-apps")
	submit(t, ctx, `form[action$="/account/revoke"] button`)
	expectText(t, ctx, "The app no longer has access to your account.", "No app has access to your account.")

	status, _, body := postForm(t, f.ts.URL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, f.oauth.ClientID, f.oauth.ClientSecret)
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("refresh after revoking the app: HTTP %d %v, want 400 invalid_grant", status, body)
	}
	if got := f.ts.introspect(t, tok.AccessToken); got["active"] != false {
		t.Fatalf("access token still active after revoking the app: %v", got)
	}
	// The remembered consent is gone too: the app must ask again.
	navigate(t, ctx, f.authRequest().url)
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("button[value=allow]")))
}

func TestBrowserThrottleMessage(t *testing.T) {
	f := newPagesFixture(t)
	ctx := newTab(t)
	navigate(t, ctx, f.authRequest().url)
	var status int64
	for range 6 {
		status = fillLogin(t, ctx, "alice", "guess", false)
	}
	if status != http.StatusTooManyRequests {
		t.Fatalf("sixth failure: HTTP %d, want 429", status)
	}
	expectText(t, ctx, "Too many failed sign-ins. Try again in 10 minutes.")
	screenshot(t, ctx, "login-throttled")
	// Even the right password waits now.
	fillLogin(t, ctx, "alice", alicePass, false)
	expectText(t, ctx, "Too many failed sign-ins.")
}

func TestBrowserKeyboardOnlySignIn(t *testing.T) {
	f := newPagesFixture(t)
	ctx := newTab(t)
	a := f.authRequest()
	navigate(t, ctx, a.url)
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("#username")))

	// tabTo presses Tab until the element is focused, and returns the
	// focus order on the way.
	tabTo := func(id string) []string {
		var order []string
		for range 12 {
			run(t, ctx, chromedp.KeyEvent("\t"))
			got := activeID(t, ctx)
			order = append(order, got)
			if got == id {
				return order
			}
		}
		t.Fatalf("Tab never reached %s; focus went %v", id, order)
		return nil
	}
	if activeID(t, ctx) != "username" {
		tabTo("username")
	}
	run(t, ctx, chromedp.KeyEvent("alice"))
	if order := tabTo("password"); len(order) != 1 {
		t.Fatalf("Tab from username went %v, want straight to password", order)
	}
	if outline := result(t, ctx, chromedp.Evaluate[string](`getComputedStyle(document.activeElement).outlineStyle`)); outline == "none" {
		t.Fatal("the focused field has no visible focus outline")
	}
	run(t, ctx, chromedp.KeyEvent(alicePass))
	if order := tabTo("remember"); len(order) != 1 {
		t.Fatalf("Tab from password went %v, want keep me signed in next", order)
	}
	if order := tabTo("button"); len(order) != 1 {
		t.Fatalf("Tab from keep me signed in went %v, want the sign-in button next", order)
	}
	resp, err := chromedp.RunResponse(ctx, chromedp.KeyEvent("\r"))
	if err != nil || resp.Status != http.StatusOK {
		t.Fatalf("Enter did not submit the sign-in form: %v", err)
	}
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("button[value=allow]")))
	order := tabTo("allow")
	if len(order) < 2 || order[len(order)-2] != "remember" {
		t.Fatalf("focus order on the consent page %v: want remember this decision just before Allow", order)
	}
	if _, err := chromedp.RunResponse(ctx, chromedp.KeyEvent("\r")); err != nil {
		t.Fatalf("Enter on Allow: %v", err)
	}
	f.landed(t, ctx, a)
}

func TestBrowserSignOutFromAccountPage(t *testing.T) {
	f := newPagesFixture(t)
	ctx := newTab(t)
	a := f.authRequest()
	navigate(t, ctx, a.url)
	fillLogin(t, ctx, "alice", alicePass, true)
	submit(t, ctx, "button[value=allow]")
	f.landed(t, ctx, a)

	navigate(t, ctx, f.ts.URL+"/account")
	// The link leads to the confirmation: a plain link could come from
	// anywhere, so signing out takes one more click.
	if status := submit(t, ctx, "a.signout"); status != http.StatusOK {
		t.Fatalf("sign-out link: HTTP %d", status)
	}
	expectText(t, ctx, "Sign out of Acme Cooperative?", "You are signed in as alice.")
	screenshot(t, ctx, "logout")
	submit(t, ctx, `button[name=confirm]`)
	expectText(t, ctx, "You are signed out", "You have been signed out of Acme Cooperative.")
	screenshot(t, ctx, "logged-out")

	// Signed out for real: the account page asks to sign in, and so does
	// the application's next request.
	navigate(t, ctx, f.ts.URL+"/account")
	expectText(t, ctx, "to see and manage your account")
	navigate(t, ctx, f.authRequest().url)
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("#password")))
}

// crossSitePage is a page on another site that posts a form to the
// provider as soon as it loads.
func crossSitePage(t *testing.T, action string, fields url.Values) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `<!doctype html><title>Elsewhere</title><form method="post" action="%s">`, action)
	for k, vs := range fields {
		for _, v := range vs {
			fmt.Fprintf(&b, `<input type="hidden" name="%s" value="%s">`, k, v)
		}
	}
	b.WriteString(`</form><script>document.forms[0].submit()</script>`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, b.String())
	}))
	t.Cleanup(srv.Close)
	// localhost is another site than 127.0.0.1, where the provider is.
	return strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
}

func TestBrowserCrossSiteFormPostRefused(t *testing.T) {
	f := newPagesFixture(t)
	ctx := newTab(t)
	// Signed in, as a victim would be.
	navigate(t, ctx, f.ts.URL+"/account")
	fillLogin(t, ctx, "alice", alicePass, false)
	expectText(t, ctx, "Your account")

	for _, tc := range []struct {
		path   string
		fields url.Values
	}{
		{"/login", url.Values{"username": {"alice"}, "password": {alicePass}, "csrf": {"guess"}, "interaction": {"x.y"}}},
		{"/account/password", url.Values{"current": {alicePass}, "new": {"attacker chosen"}, "confirm": {"attacker chosen"}, "csrf": {"guess"}}},
		{"/account/revoke", url.Values{"client_id": {"notes"}, "csrf": {"guess"}}},
	} {
		t.Run(strings.TrimPrefix(tc.path, "/"), func(t *testing.T) {
			attack := crossSitePage(t, f.ts.URL+tc.path, tc.fields)
			navigate(t, ctx, attack)
			run(t, ctx, chromedp.WaitVisible(chromedp.CSS("main h1")))
			if loc := result(t, ctx, chromedp.Location()); loc != f.ts.URL+tc.path {
				t.Fatalf("browser is at %s, want the refused post to %s", loc, tc.path)
			}
			expectText(t, ctx, "This form was sent from another website, so it was refused.")
			if tc.path == "/login" {
				screenshot(t, ctx, "error-cross-site")
			}
		})
	}
	u, err := f.ts.Store.GetUser(context.Background(), f.ts.alice.ID)
	if err != nil || secret.Check(u.PasswordHash, alicePass) != nil {
		t.Fatalf("alice's password changed through a cross-site post (%v)", err)
	}

	// The authorization endpoint is another matter: relying parties post
	// to it from their own sites by design (oidcc-ensure-post-request-succeeds).
	a := f.authRequest()
	au, _ := url.Parse(a.url)
	navigate(t, ctx, crossSitePage(t, f.ts.URL+"/authorize", au.Query()))
	// SameSite=Lax keeps the session cookie off a cross-site post, so the
	// person signs in (again); the request itself is accepted.
	if loc := result(t, ctx, chromedp.Location()); loc != f.ts.URL+"/authorize" {
		t.Fatalf("cross-site post to /authorize ended at %s", loc)
	}
	fillLogin(t, ctx, "alice", alicePass, false)
	submit(t, ctx, "button[value=allow]")
	f.landed(t, ctx, a)
}

// TestBrowserPagesScreenshots visits the pages no other test shows: the
// error page, the out-of-band code page, German, and a light brand colour
// that needs dark text.
func TestBrowserPagesScreenshots(t *testing.T) {
	f := newPagesFixture(t)
	ctx := newTab(t)

	if status := navigate(t, ctx, f.ts.URL+"/authorize?client_id=nobody&response_type=code&scope=openid"); status != http.StatusUnauthorized {
		t.Fatalf("unknown client: HTTP %d, want 401", status)
	}
	expectText(t, ctx, "Unknown application", "is not registered", "invalid_client", "Request ID")
	if strings.Contains(pageText(ctx), "goroutine") {
		t.Fatal("error page shows a stack trace")
	}
	screenshot(t, ctx, "error")

	navigate(t, ctx, f.authRequest(oauth2.SetAuthURLParam("ui_locales", "de-CH en")).url)
	expectText(t, ctx, "Anmelden", "um mit Team Notes fortzufahren", "Angemeldet bleiben")
	if lang := result(t, ctx, chromedp.Evaluate[string](`document.documentElement.lang`)); lang != "de" {
		t.Fatalf("html lang = %q, want de", lang)
	}
	screenshot(t, ctx, "login-de")
	fillLogin(t, ctx, "alice", alicePass, false)
	expectText(t, ctx, "Team Notes Zugriff auf Ihr Konto erlauben?", "Ihre E-Mail-Adresse sehen")
	screenshot(t, ctx, "consent-de")

	f.ts.addClient(t, clientspec.Spec{ID: "cli", Secret: "cli-secret", ClientSettings: storage.ClientSettings{
		Name:         "Deploy CLI",
		RedirectURIs: []string{"urn:ietf:wg:oauth:2.0:oob"},
		Scopes:       []string{"openid"},
	}})
	oob := oauth2.Config{ClientID: "cli", RedirectURL: "urn:ietf:wg:oauth:2.0:oob", Endpoint: f.oauth.Endpoint, Scopes: []string{"openid"}}
	navigate(t, ctx, oob.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	submit(t, ctx, "button[value=allow]")
	expectText(t, ctx, "Copy this code", "Paste it into Deploy CLI")
	if code := result(t, ctx, chromedp.Value(chromedp.CSS("#code"))); code == "" {
		t.Fatal("the code page shows no code")
	}
	screenshot(t, ctx, "oob")

	light := newPagesFixture(t, func(c *provider.Config) { c.PrimaryColor = "#ffd400"; c.LogoURL = "" })
	g := newTab(t)
	navigate(t, g, light.authRequest().url)
	if colour := result(t, g, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("form button")).color`)); colour == "rgb(255, 255, 255)" {
		t.Fatal("white text on a yellow button")
	}
	screenshot(t, g, "login-light-brand")

	// Passkeys (passkeys_browser_test.go shows the rest): the sign-in
	// page's button, in German.
	pk := newPasskeyFixture(t)
	h := newTab(t)
	addAuthenticator(t, h)
	navigate(t, h, pk.authRequest(oauth2.SetAuthURLParam("ui_locales", "de")).url)
	run(t, h, chromedp.WaitVisible(chromedp.CSS("#passkey-button")))
	expectText(t, h, "Mit einem Passkey anmelden")
	screenshot(t, h, "login-passkey-de")
}
