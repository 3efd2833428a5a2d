package provider_test

// Issue 16: a second factor at sign-in (TOTP and recovery codes in the one
// field named code), the throttle it shares with the password, cancelling,
// and the races a code must win once.

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/mfa"
	"github.com/smallsso/provider/provider/providertest"
	"github.com/smallsso/provider/storage"
)

// enrolledTOTP is a person's authenticator app and recovery codes, as the
// CLI gives them (provider users totp add).
type enrolledTOTP struct {
	secret   string
	recovery []string
}

// enrolTOTP gives user an authenticator app and ten recovery codes the
// way the CLI does: a new key sealed with the provider secret and stored
// through the store, while the server runs.
func enrolTOTP(t *testing.T, ts *testServer, user storage.User) enrolledTOTP {
	t.Helper()
	keys := mfa.NewKeys(func() ([]byte, error) { return ts.Keys.Secret("provider") })
	key, err := mfa.NewTOTPKey("Test Org", user.Username)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := keys.SealTOTP(user.ID, key.Secret())
	if err != nil {
		t.Fatal(err)
	}
	codes, stored, err := mfa.NewRecoveryCodes(keys, user.ID)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	err = ts.Store.UpdateFactors(context.Background(), user.ID, func(f storage.Factors) (storage.Factors, error) {
		f.TOTP = &storage.TOTPFactor{SecretSealed: sealed, CreatedAt: now}
		f.RecoveryCodes, f.UpdatedAt = stored, now
		return f, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return enrolledTOTP{secret: key.Secret(), recovery: codes}
}

// code is the authenticator app's code at the given time.
func (e enrolledTOTP) code(t *testing.T, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(e.secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wrongCode is a six-digit code that is none of the codes the skew
// window accepts around at.
func (e enrolledTOTP) wrongCode(t *testing.T, at time.Time) string {
	t.Helper()
	near := []string{e.code(t, at.Add(-30*time.Second)), e.code(t, at), e.code(t, at.Add(30*time.Second))}
	for _, c := range []string{"000000", "111111", "222222", "333333"} {
		if !slices.Contains(near, c) {
			return c
		}
	}
	t.Fatal("no wrong code")
	return ""
}

// mfaServer is a test server on a clock the test moves.
func mfaServer(t *testing.T, mutate ...func(*provider.Config)) (*testServer, *testClock) {
	t.Helper()
	clock := &testClock{}
	ts := newTestServerDeps(t, func(d *provider.Deps) { d.Now = clock.Now }, mutate...)
	return ts, clock
}

// toSecondFactor signs alice in with her password from authURL and
// returns the second-factor page.
func toSecondFactor(t *testing.T, b *providertest.Browser, authURL string) *providertest.Page {
	t.Helper()
	page, err := b.SignInPage(context.Background(), authURL, "alice", alicePass, "allow")
	if err != nil {
		t.Fatal(err)
	}
	if !isSecondFactorPage(page) {
		t.Fatalf("after the password: HTTP %d %v, want the second-factor page: %.1500s", page.Status, page.Location, page.Body)
	}
	return page
}

func isSecondFactorPage(page *providertest.Page) bool {
	if page.Location != nil {
		return false
	}
	form, err := page.ParseForm()
	return err == nil && strings.HasSuffix(form.Action, "/login/mfa") && form.Values.Has("code") && !form.Values.Has("password")
}

// submitCode posts code (or the form's other buttons, with set) on the
// second-factor page.
func submitCode(t *testing.T, b *providertest.Browser, page *providertest.Page, set url.Values) *providertest.Page {
	t.Helper()
	form, err := page.ParseForm()
	if err != nil {
		t.Fatal(err)
	}
	next, err := b.Submit(context.Background(), page, form, set)
	if err != nil {
		t.Fatal(err)
	}
	return next
}

// finish answers the consent page, if shown, and returns the redirect to
// the client.
func finish(t *testing.T, b *providertest.Browser, page *providertest.Page) *url.URL {
	t.Helper()
	if page.Location == nil && page.Status == http.StatusOK {
		if form, err := page.ParseForm(); err == nil && len(form.Buttons["decision"]) > 0 {
			page = submitCode(t, b, page, url.Values{"decision": {"allow"}})
		}
	}
	if page.Location == nil {
		t.Fatalf("no redirect to the client: HTTP %d at %s: %.1500s", page.Status, page.URL, page.Body)
	}
	return page.Location
}

// idClaims are the ID token claims these tests look at.
type idClaims struct {
	AMR      []string `json:"amr"`
	ACR      string   `json:"acr"`
	AuthTime int64    `json:"auth_time"`
	SID      string   `json:"sid"`
}

// exchange trades the code of f (whose redirect is loc) for tokens and
// returns the verified ID token's claims.
func (r *rp) exchange(t *testing.T, ts *testServer, f flow, loc *url.URL) idClaims {
	t.Helper()
	f.redirect = loc
	tok, err := r.oauth2.Exchange(context.Background(), f.code(t, ts.URL), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := r.verifier.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	if idt.Nonce != f.nonce {
		t.Errorf("nonce %q, want %q", idt.Nonce, f.nonce)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// start begins an authorization request of r with opts.
func (r *rp) start(opts ...oauth2.AuthCodeOption) (flow, string) {
	f := flow{state: randomString(), nonce: randomString(), verifier: oauth2.GenerateVerifier()}
	opts = append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.verifier), oidc.Nonce(f.nonce)}, opts...)
	return f, r.oauth2.AuthCodeURL(f.state, opts...)
}

// sessionCookieOf is b's session cookie at the provider, "" if none.
func sessionCookieOf(b *providertest.Browser, issuer string) string {
	u, _ := url.Parse(issuer)
	return sessionCookie(b, u)
}

func userSessions(t *testing.T, ts *testServer, userID string) []storage.BrowserSession {
	t.Helper()
	ss, err := ts.Store.ListUserSessions(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

var acrMFA = oauth2.SetAuthURLParam("acr_values", "mfa")

// A person with an authenticator app signs in with the password and then
// a code; the ID token says pwd, otp, mfa and acr mfa. A wrong code and a
// code used twice are refused, as is a recovery code used twice, and none
// of them starts a session. No code is ever logged.
func TestSecondFactorSignIn(t *testing.T) {
	t.Parallel()
	logs := &logBuffer{}
	clock := &testClock{}
	ts := newTestServerDeps(t, func(d *provider.Deps) {
		d.Now = clock.Now
		d.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	// The sign-ins happen a minute apart, so each has a code of its own;
	// the clock goes back first, not forward (fosite checks times
	// against its own clock).
	clock.Advance(-10 * time.Minute)
	alice := enrolTOTP(t, ts, ts.alice)
	rp := newRP(t, ts, "web", "web-secret", webRedirect, "openid", "email")
	var used []string

	b := providertest.NewBrowser(ts.URL)
	f, authURL := rp.start(acrMFA)
	page := toSecondFactor(t, b, authURL)
	if !strings.Contains(page.Body, `autocomplete="one-time-code"`) || !strings.Contains(page.Body, "Use a recovery code instead") {
		t.Errorf("second-factor page lacks the one-time-code field or the recovery option:\n%.2000s", page.Body)
	}
	if sessionCookieOf(b, ts.URL) != "" || len(userSessions(t, ts, ts.alice.ID)) != 0 {
		t.Fatal("a session exists after the password alone")
	}
	wrong := alice.wrongCode(t, clock.Now())
	used = append(used, wrong)
	page = submitCode(t, b, page, url.Values{"code": {wrong}})
	if page.Status != http.StatusUnauthorized || !isSecondFactorPage(page) || !strings.Contains(page.Body, "That code is not correct.") {
		t.Fatalf("wrong code: HTTP %d, want 401 and the page again: %.1500s", page.Status, page.Body)
	}
	if sessionCookieOf(b, ts.URL) != "" || len(userSessions(t, ts, ts.alice.ID)) != 0 {
		t.Fatal("a session exists after a wrong code")
	}
	code := alice.code(t, clock.Now())
	used = append(used, code)
	loc := finish(t, b, submitCode(t, b, page, url.Values{"code": {code}}))
	c := rp.exchange(t, ts, f, loc)
	for _, m := range []string{"pwd", "otp", "mfa"} {
		if !slices.Contains(c.AMR, m) {
			t.Errorf("amr %v lacks %s", c.AMR, m)
		}
	}
	if c.ACR != "mfa" {
		t.Errorf("acr %q, want mfa", c.ACR)
	}
	ss := userSessions(t, ts, ts.alice.ID)
	if len(ss) != 1 || !slices.Contains(ss[0].AMR, "mfa") {
		t.Fatalf("sessions after the code: %+v", ss)
	}

	// The same code again, in another browser: refused.
	b2 := providertest.NewBrowser(ts.URL)
	_, authURL = rp.start()
	page = submitCode(t, b2, toSecondFactor(t, b2, authURL), url.Values{"code": {code}})
	if page.Status != http.StatusUnauthorized || !strings.Contains(page.Body, "That code was already used.") {
		t.Fatalf("replayed code: HTTP %d, want 401: %.1500s", page.Status, page.Body)
	}
	if sessionCookieOf(b2, ts.URL) != "" || len(userSessions(t, ts, ts.alice.ID)) != 1 {
		t.Fatal("a replayed code started a session")
	}

	// A recovery code, typed in lower case with a space, works once.
	clock.Advance(time.Minute)
	b3 := providertest.NewBrowser(ts.URL)
	f, authURL = rp.start()
	page = toSecondFactor(t, b3, authURL)
	page = submitCode(t, b3, page, url.Values{"switch": {"recovery"}})
	if page.Status != http.StatusOK || !strings.Contains(page.Body, `inputmode="text"`) || !strings.Contains(page.Body, "Recovery code") {
		t.Fatalf("switch to a recovery code: HTTP %d: %.1500s", page.Status, page.Body)
	}
	rc := alice.recovery[2]
	used = append(used, rc)
	typed := strings.ToLower(strings.Replace(rc, "-", " ", 1))
	c = rp.exchange(t, ts, f, finish(t, b3, submitCode(t, b3, page, url.Values{"code": {typed}})))
	if !slices.Contains(c.AMR, "otp") || !slices.Contains(c.AMR, "mfa") {
		t.Errorf("recovery code sign-in: amr %v", c.AMR)
	}
	if c.ACR != "" {
		t.Errorf("acr %q in an ID token that did not ask for it", c.ACR)
	}
	b4 := providertest.NewBrowser(ts.URL)
	_, authURL = rp.start()
	page = submitCode(t, b4, toSecondFactor(t, b4, authURL), url.Values{"code": {rc}})
	if page.Status != http.StatusUnauthorized || !strings.Contains(page.Body, "That recovery code was already used.") {
		t.Fatalf("recovery code used twice: HTTP %d, want 401: %.1500s", page.Status, page.Body)
	}
	if sessionCookieOf(b4, ts.URL) != "" {
		t.Fatal("a spent recovery code started a session")
	}
	f2, err := ts.Store.GetFactors(context.Background(), ts.alice.ID)
	if err != nil || mfa.RecoveryCodesLeft(f2) != mfa.RecoveryCodeCount-1 {
		t.Errorf("recovery codes left: %d %v", mfa.RecoveryCodesLeft(f2), err)
	}

	for _, c := range used {
		if strings.Contains(logs.String(), c) {
			t.Errorf("the log has the code %q", c)
		}
	}
	for _, want := range []string{"method=totp", "reason=bad_code", "reason=code_used", "method=recovery_code"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %q", want)
		}
	}
}

// Forty code guesses sent at once for one account get no more checks than
// the sign-in throttle allows one source; the right code is then
// throttled too, until the budget refills.
func TestSecondFactorGuessesShareThrottle(t *testing.T) {
	t.Parallel()
	ts, clock := mfaServer(t)
	clock.Advance(-15 * time.Minute)
	alice := enrolTOTP(t, ts, ts.alice)
	b := providertest.NewBrowser(ts.URL)
	page := toSecondFactor(t, b, webAuthURL(ts))
	form, err := page.ParseForm()
	if err != nil {
		t.Fatal(err)
	}
	wrong := alice.wrongCode(t, clock.Now())
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := b.Submit(context.Background(), page, form, url.Values{"code": {wrong}})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			statuses[res.Status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	checked := 40 - statuses[http.StatusTooManyRequests]
	if checked > pairBudget || statuses[http.StatusUnauthorized] != checked {
		t.Fatalf("answers %v: %d guesses checked, the budget is %d", statuses, checked, pairBudget)
	}
	res := submitCode(t, b, page, url.Values{"code": {alice.code(t, clock.Now())}})
	if res.Status != http.StatusTooManyRequests || !strings.Contains(res.Body, "Too many failed sign-ins.") {
		t.Fatalf("right code after the guesses: HTTP %d, want 429: %.1500s", res.Status, res.Body)
	}
	if len(userSessions(t, ts, ts.alice.ID)) != 0 {
		t.Fatal("a throttled code started a session")
	}
	// One guess comes back every ten minutes.
	clock.Advance(10 * time.Minute)
	res = submitCode(t, b, page, url.Values{"code": {alice.code(t, clock.Now())}})
	if loc := finish(t, b, res); loc.Query().Get("code") == "" {
		t.Fatalf("right code once the budget refilled: %v", loc)
	}
}

// Two posts of the same right code for the same pending sign-in, at once:
// exactly one session.
func TestSecondFactorRace(t *testing.T) {
	t.Parallel()
	ts, clock := mfaServer(t)
	alice := enrolTOTP(t, ts, ts.alice)
	b := providertest.NewBrowser(ts.URL)
	page := toSecondFactor(t, b, webAuthURL(ts))
	form, err := page.ParseForm()
	if err != nil {
		t.Fatal(err)
	}
	code := alice.code(t, clock.Now())
	results := make([]*providertest.Page, 2)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := b.Submit(context.Background(), page, form, url.Values{"code": {code}})
			if err != nil {
				t.Error(err)
				return
			}
			results[i] = res
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	ok := 0
	for _, res := range results {
		switch {
		case res.Status == http.StatusUnauthorized:
		case res.Status == http.StatusOK && !isSecondFactorPage(res), res.Location != nil:
			ok++
		default:
			t.Errorf("HTTP %d: %.800s", res.Status, res.Body)
		}
	}
	if n := len(userSessions(t, ts, ts.alice.ID)); ok != 1 || n != 1 {
		t.Fatalf("%d posts went through, %d sessions; want exactly one", ok, n)
	}
}

// Cancel on the second-factor page goes back to the client with
// access_denied, or to the account page, and leaves no session: the next
// request asks for the password again.
func TestSecondFactorCancel(t *testing.T) {
	t.Parallel()
	ts, _ := mfaServer(t)
	enrolTOTP(t, ts, ts.alice)
	b := providertest.NewBrowser(ts.URL)
	res := submitCode(t, b, toSecondFactor(t, b, webAuthURL(ts)), url.Values{"cancel": {"yes"}})
	if res.Location == nil || res.Location.Query().Get("error") != "access_denied" || !strings.HasPrefix(res.Location.String(), webRedirect) {
		t.Fatalf("cancel: HTTP %d %v, want access_denied at the client", res.Status, res.Location)
	}
	if sessionCookieOf(b, ts.URL) != "" || len(userSessions(t, ts, ts.alice.ID)) != 0 {
		t.Fatal("cancel left a session")
	}
	page, err := b.Get(context.Background(), webAuthURL(ts))
	if err != nil {
		t.Fatal(err)
	}
	if form, err := page.ParseForm(); err != nil || !form.Values.Has("password") {
		t.Fatalf("after cancel: HTTP %d, want the login page: %.800s", page.Status, page.Body)
	}

	// The account page's sign-in: the same step, and Cancel leads back
	// to its sign-in form.
	page = toSecondFactor(t, b, ts.URL+"/account")
	res = submitCode(t, b, page, url.Values{"cancel": {"yes"}})
	if res.Status != http.StatusOK || res.URL.Path != "/account" || !strings.Contains(res.Body, `name="password"`) {
		t.Fatalf("account cancel: HTTP %d at %s: %.800s", res.Status, res.URL, res.Body)
	}
	if len(userSessions(t, ts, ts.alice.ID)) != 0 {
		t.Fatal("account cancel left a session")
	}
}

// The account page's sign-in asks for the second factor too.
func TestSecondFactorAccountSignIn(t *testing.T) {
	t.Parallel()
	ts, clock := mfaServer(t)
	alice := enrolTOTP(t, ts, ts.alice)
	b := providertest.NewBrowser(ts.URL)
	page := toSecondFactor(t, b, ts.URL+"/account")
	res := submitCode(t, b, page, url.Values{"code": {alice.code(t, clock.Now())}})
	if res.Status != http.StatusOK || res.URL.Path != "/account" || !strings.Contains(res.Body, "Change password") {
		t.Fatalf("account sign-in: HTTP %d at %s: %.800s", res.Status, res.URL, res.Body)
	}
	ss := userSessions(t, ts, ts.alice.ID)
	if len(ss) != 1 || !slices.Equal(ss[0].AMR, []string{"pwd", "otp", "mfa"}) {
		t.Fatalf("sessions: %+v", ss)
	}
}

// Discovery lists both context classes.
func TestDiscoveryACRValues(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	status, _, body := doJSON(t, mustRequest(t, ts.URL+"/.well-known/openid-configuration"))
	if status != http.StatusOK {
		t.Fatal(status)
	}
	raw, _ := json.Marshal(body["acr_values_supported"])
	if string(raw) != `["password","mfa"]` {
		t.Errorf("acr_values_supported %s", raw)
	}
}
