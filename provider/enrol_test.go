package provider_test

// Enrolling an authenticator app: on the account page (set up, a wrong
// then a right code, recovery codes shown once, removal with the
// password, new recovery codes) and during a sign-in (the enrolment page,
// the recovery codes, then the session with amr pwd otp mfa).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/oauth2"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/mfa"
	"github.com/smallsso/provider/provider/providertest"
	"github.com/smallsso/provider/storage"
)

// totpCode is the authenticator app's code for the key shown on a page.
func totpCode(t *testing.T, key string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(strings.ReplaceAll(key, " ", ""), at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wrongCode is a well-formed code that is none of key's around now.
func wrongCode(t *testing.T, key string, now time.Time) string {
	t.Helper()
	taken := map[string]bool{}
	for d := -2; d <= 2; d++ {
		taken[totpCode(t, key, now.Add(time.Duration(d)*30*time.Second))] = true
	}
	for _, c := range []string{"000000", "111111", "222222", "333333", "444444", "555555"} {
		if !taken[c] {
			return c
		}
	}
	t.Fatal("no wrong code")
	return ""
}

var shownKeyRE = regexp.MustCompile(`id="secret"><code[^>]*>([A-Z2-7 ]+)</code>`)

var recoveryCodeRE = regexp.MustCompile(`<code>([A-Z0-9]{5}-[A-Z0-9]{5})</code>`)

func shownRecoveryCodes(body string) []string {
	var codes []string
	for _, m := range recoveryCodeRE.FindAllStringSubmatch(body, -1) {
		codes = append(codes, m[1])
	}
	return codes
}

// enrolPage checks an enrolment page and returns its key as shown and
// its one form.
func enrolPage(t *testing.T, page *providertest.Page) (string, *providertest.Form) {
	t.Helper()
	if page.Status != http.StatusOK && page.Status != http.StatusBadRequest {
		t.Fatalf("enrolment page: HTTP %d:\n%s", page.Status, page.Body)
	}
	var key string
	if m := shownKeyRE.FindStringSubmatch(page.Body); m != nil {
		key = m[1]
	}
	if len(strings.ReplaceAll(key, " ", "")) != 32 || !strings.Contains(key, " ") {
		t.Fatalf("key shown %q: want 32 base32 characters in blocks", key)
	}
	if !strings.Contains(page.Body, `src="data:image/png;base64,`) {
		t.Fatal("no inline QR image on the enrolment page")
	}
	form, err := page.ParseForm()
	if err != nil {
		t.Fatal(err)
	}
	if !form.Values.Has("code") || form.Values.Get("key") == "" {
		t.Fatalf("enrolment form fields %v: want code and the sealed key", form.Values)
	}
	// The key is in clear once, as the text to copy; the form carries it
	// sealed.
	plain := strings.ReplaceAll(key, " ", "")
	if strings.Count(page.Body, plain) != 0 || strings.Contains(form.Values.Get("key"), plain) {
		t.Fatal("the key appears ungrouped in the page")
	}
	return key, form
}

func aliceFactors(t *testing.T, ts *testServer) (storage.Factors, bool) {
	t.Helper()
	f, err := ts.Store.GetFactors(context.Background(), ts.alice.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return f, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return f, true
}

func TestAccountTOTPEnrolRemoveAndRecoveryCodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	b, account := accountBrowser(t, ts)
	if !strings.Contains(account.Body, `action="/account/totp"`) || strings.Contains(account.Body, `action="/account/recovery-codes"`) {
		t.Fatalf("account page without a factor: want the set-up form and no recovery codes form:\n%s", account.Body)
	}

	status, body := postAccountForm(t, b, ts.URL+"/account/totp", url.Values{})
	page := &providertest.Page{URL: mustURL(t, ts.URL+"/account/totp"), Status: status, Body: body}
	key, form := enrolPage(t, page)

	// A wrong code: the same page, the same key, nothing stored.
	wrong, err := b.Submit(ctx, page, form, url.Values{"code": {wrongCode(t, key, time.Now())}})
	if err != nil {
		t.Fatal(err)
	}
	if wrong.Status != http.StatusBadRequest || !strings.Contains(wrong.Body, "That code is not right.") {
		t.Fatalf("wrong code: HTTP %d:\n%s", wrong.Status, wrong.Body)
	}
	if again, _ := enrolPage(t, wrong); again != key {
		t.Fatal("a wrong code changed the key the person already scanned")
	}
	if _, ok := aliceFactors(t, ts); ok {
		t.Fatal("a wrong code stored a factor")
	}
	// No code at all: a message, no throttle spent.
	if empty, _ := b.Submit(ctx, page, form, url.Values{"code": {""}}); empty.Status != http.StatusBadRequest || !strings.Contains(empty.Body, "Please type the 6-digit code") {
		t.Fatalf("empty code: HTTP %d", empty.Status)
	}
	// A key sealed for someone else, or tampered with, does not open.
	if forged, _ := b.Submit(ctx, page, form, url.Values{"key": {"AAAA" + form.Values.Get("key")}, "code": {totpCode(t, key, time.Now())}}); forged.Status != http.StatusBadRequest || !strings.Contains(forged.Body, "This set-up expired") {
		t.Fatalf("tampered key: HTTP %d:\n%s", forged.Status, forged.Body)
	}

	// The right code: stored sealed, its step used, ten codes shown once.
	now := time.Now()
	code := totpCode(t, key, now)
	done, err := b.Submit(ctx, page, form, url.Values{"code": {code}})
	if err != nil {
		t.Fatal(err)
	}
	codes := shownRecoveryCodes(done.Body)
	if done.Status != http.StatusOK || len(codes) != mfa.RecoveryCodeCount || !strings.Contains(done.Body, "Save your recovery codes") {
		t.Fatalf("right code: HTTP %d, %d codes:\n%s", done.Status, len(codes), done.Body)
	}
	f, ok := aliceFactors(t, ts)
	if !ok || f.TOTP == nil || len(f.RecoveryCodes) != mfa.RecoveryCodeCount {
		t.Fatalf("stored factors %+v", f)
	}
	plain := strings.ReplaceAll(key, " ", "")
	if bytes.Contains(f.TOTP.SecretSealed, []byte(plain)) || bytes.Contains(bytes.ToUpper(f.TOTP.SecretSealed), []byte(plain)) {
		t.Fatal("the stored key is not sealed")
	}
	if _, err := mfa.CheckTOTP(f, plain, code, now); !errors.Is(err, mfa.ErrCodeUsed) {
		t.Fatalf("the enrolment code again: %v, want ErrCodeUsed", err)
	}
	for _, c := range codes {
		for _, rc := range f.RecoveryCodes {
			if strings.Contains(rc.Hash, c) || strings.Contains(rc.Hash, strings.ReplaceAll(c, "-", "")) {
				t.Fatal("a recovery code is stored in clear")
			}
		}
	}
	continueURL := regexp.MustCompile(`href="(/account\?done=totp)"`).FindStringSubmatch(done.Body)
	if continueURL == nil {
		t.Fatalf("recovery codes page without the way back:\n%s", done.Body)
	}
	back, err := b.Get(ctx, ts.URL+continueURL[1])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(back.Body, "Your authenticator app is set up.") || !strings.Contains(back.Body, "You have 10 unused recovery codes.") {
		t.Fatalf("account page after enrolling:\n%s", back.Body)
	}
	for _, c := range codes {
		if strings.Contains(back.Body, c) {
			t.Fatal("the account page shows a recovery code again")
		}
	}
	// Setting up a second app is refused; the first one stays.
	if status, body := postAccountForm(t, b, ts.URL+"/account/totp", url.Values{}); status != http.StatusConflict || !strings.Contains(body, "already set up") {
		t.Fatalf("second set-up: HTTP %d", status)
	}
	if status, _ := postAccountForm(t, b, ts.URL+"/account/totp/confirm", url.Values{"key": {form.Values.Get("key")}, "code": {totpCode(t, key, now.Add(30*time.Second))}}); status != http.StatusConflict {
		t.Fatalf("confirming a set-up again: HTTP %d, want 409", status)
	}

	// New recovery codes: shown once, the old ones stop working.
	status, body = postAccountForm(t, b, ts.URL+"/account/recovery-codes", url.Values{})
	fresh := shownRecoveryCodes(body)
	if status != http.StatusOK || len(fresh) != mfa.RecoveryCodeCount || !strings.Contains(body, "These new codes replace your old ones") {
		t.Fatalf("new recovery codes: HTTP %d, %d codes", status, len(fresh))
	}
	f, _ = aliceFactors(t, ts)
	keys := mfa.NewKeys(func() ([]byte, error) { return ts.Keys.Secret("provider") })
	if _, err := mfa.UseRecoveryCode(keys, f, codes[0], time.Now()); !errors.Is(err, mfa.ErrWrongCode) {
		t.Fatalf("an old recovery code after regenerating: %v, want ErrWrongCode", err)
	}
	if _, err := mfa.UseRecoveryCode(keys, f, fresh[0], time.Now()); err != nil {
		t.Fatalf("a new recovery code: %v", err)
	}
	if f.TOTP == nil {
		t.Fatal("new recovery codes dropped the app")
	}

	// Removal needs the current password, checked like a sign-in.
	if status, body := postAccountForm(t, b, ts.URL+"/account/totp/remove", url.Values{"password": {"not her password"}}); status != http.StatusUnauthorized || !strings.Contains(body, "Your current password is not correct.") {
		t.Fatalf("remove with a wrong password: HTTP %d", status)
	}
	if status, _ := postAccountForm(t, b, ts.URL+"/account/totp/remove", url.Values{}); status != http.StatusBadRequest {
		t.Fatalf("remove without a password: HTTP %d", status)
	}
	if f, _ := aliceFactors(t, ts); f.TOTP == nil {
		t.Fatal("a refused removal removed the app")
	}
	status, body = postAccountForm(t, b, ts.URL+"/account/totp/remove", url.Values{"password": {alicePass}})
	if status != http.StatusOK || !strings.Contains(body, "Your authenticator app was removed.") {
		t.Fatalf("remove: HTTP %d:\n%s", status, body)
	}
	if f, ok := aliceFactors(t, ts); ok && (f.TOTP != nil || len(f.RecoveryCodes) != 0) {
		t.Fatalf("after removing the last factor: %+v, want no app and no recovery codes", f)
	}
	// With no factor, there are no recovery codes to make.
	if status, body := postAccountForm(t, b, ts.URL+"/account/recovery-codes", url.Values{}); status != http.StatusBadRequest || !strings.Contains(body, "Set up a second step first") {
		t.Fatalf("recovery codes without a factor: HTTP %d", status)
	}
}

// A person who keeps a passkey keeps their recovery codes when the app
// goes; one whose app is their first factor besides a passkey gets no
// second generation.
func TestAccountTOTPRemoveKeepsCodesOfOtherFactors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	b, _ := accountBrowser(t, ts)
	keys := mfa.NewKeys(func() ([]byte, error) { return ts.Keys.Secret("provider") })
	_, stored, err := mfa.NewRecoveryCodes(keys, ts.alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	err = ts.Store.UpdateFactors(ctx, ts.alice.ID, func(f storage.Factors) (storage.Factors, error) {
		f.Passkeys = []storage.Passkey{{ID: []byte("pk"), Name: "laptop", CredentialSealed: []byte("x"), CreatedAt: time.Now()}}
		f.RecoveryCodes = stored
		return f, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The session proved the passkey (the account page asks a session
	// that did not for it first: TestAccountStepsUpAnOlderSession).
	sum := sha256.Sum256([]byte(sessionCookie(b, mustURL(t, ts.URL))))
	err = ts.Store.UpdateBrowserSession(ctx, hex.EncodeToString(sum[:]), func(s storage.BrowserSession) (storage.BrowserSession, error) {
		s.AMR = []string{"pwd", "hwk", "user", "mfa"}
		return s, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	status, body := postAccountForm(t, b, ts.URL+"/account/totp", url.Values{})
	page := &providertest.Page{URL: mustURL(t, ts.URL+"/account/totp"), Status: status, Body: body}
	key, form := enrolPage(t, page)
	done, err := b.Submit(ctx, page, form, url.Values{"code": {totpCode(t, key, time.Now())}})
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != http.StatusOK || done.URL.Path != "/account" || len(shownRecoveryCodes(done.Body)) != 0 {
		t.Fatalf("a second factor: HTTP %d at %s, want the account page without new codes", done.Status, done.URL)
	}
	if f, _ := aliceFactors(t, ts); f.TOTP == nil || len(f.RecoveryCodes) != mfa.RecoveryCodeCount || f.RecoveryCodes[0].Hash != stored[0].Hash {
		t.Fatal("adding the app changed the recovery codes")
	}
	if status, _ := postAccountForm(t, b, ts.URL+"/account/totp/remove", url.Values{"password": {alicePass}}); status != http.StatusOK {
		t.Fatalf("remove: HTTP %d", status)
	}
	if f, _ := aliceFactors(t, ts); f.TOTP != nil || len(f.Passkeys) != 1 || len(f.RecoveryCodes) != mfa.RecoveryCodeCount {
		t.Fatalf("after removing the app beside a passkey: %+v", f)
	}
}

func TestAccountTOTPCodeGuessesAreThrottled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	b, _ := accountBrowser(t, ts)
	status, body := postAccountForm(t, b, ts.URL+"/account/totp", url.Values{})
	page := &providertest.Page{URL: mustURL(t, ts.URL+"/account/totp"), Status: status, Body: body}
	key, form := enrolPage(t, page)
	bad := wrongCode(t, key, time.Now())
	var last *providertest.Page
	for range 12 {
		var err error
		if last, err = b.Submit(ctx, page, form, url.Values{"code": {bad}}); err != nil {
			t.Fatal(err)
		}
		if last.Status == http.StatusTooManyRequests {
			break
		}
	}
	if last.Status != http.StatusTooManyRequests || !strings.Contains(last.Body, "Too many failed sign-ins") {
		t.Fatalf("after repeated wrong codes: HTTP %d", last.Status)
	}
	// The budget is the account's sign-in budget: the right code waits too.
	if right, _ := b.Submit(ctx, page, form, url.Values{"code": {totpCode(t, key, time.Now())}}); right.Status != http.StatusTooManyRequests {
		t.Fatalf("the right code while throttled: HTTP %d", right.Status)
	}
	if _, ok := aliceFactors(t, ts); ok {
		t.Fatal("a throttled code stored a factor")
	}
}

// The sign-in's enrolment: the page shown to a person who must set up a
// second factor, a wrong code, the right one, the recovery codes, and the
// code at the client with amr pwd otp mfa.
func TestSignInEnrolment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	web := newRP(t, ts, "web", "web-secret", webRedirect, oidc.ScopeOpenID)
	b := providertest.NewBrowser(ts.URL)
	state, nonce, verifier := randomString(), randomString(), oauth2.GenerateVerifier()
	authURL := web.oauth2.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))
	// The login page gives the browser its CSRF cookie.
	if _, err := b.Get(ctx, authURL); err != nil {
		t.Fatal(err)
	}
	csrf := ""
	for _, c := range b.HTTP.Jar.Cookies(mustURL(t, ts.URL)) {
		if c.Name == "csrf" {
			csrf = c.Value
		}
	}
	rec := ts.Provider.EnrolmentPageForTest(authURL, ts.alice.ID, csrf)
	page := &providertest.Page{URL: mustURL(t, authURL), Status: rec.Code, Body: rec.Body.String()}
	if !strings.Contains(page.Body, "Your organisation asks for a second step when alice signs in.") || !strings.Contains(page.Body, `action="/login/enrol"`) {
		t.Fatalf("enrolment page:\n%s", page.Body)
	}
	key, form := enrolPage(t, page)

	// The interaction of the enrolment page cannot skip the code.
	if skip, _ := b.Submit(ctx, page, &providertest.Form{Action: "/login/continue", Values: form.Values}, nil); skip.Status != http.StatusBadRequest || skip.Location != nil {
		t.Fatalf("continue without enrolling: HTTP %d, location %v", skip.Status, skip.Location)
	}
	wrong, err := b.Submit(ctx, page, form, url.Values{"code": {wrongCode(t, key, time.Now())}})
	if err != nil {
		t.Fatal(err)
	}
	if wrong.Status != http.StatusBadRequest || !strings.Contains(wrong.Body, "That code is not right.") {
		t.Fatalf("wrong code: HTTP %d:\n%s", wrong.Status, wrong.Body)
	}
	if again, _ := enrolPage(t, wrong); again != key {
		t.Fatal("a wrong code changed the key")
	}
	if _, ok := aliceFactors(t, ts); ok {
		t.Fatal("a wrong code stored a factor")
	}
	if sessionCookie(b, mustURL(t, ts.URL)) != "" {
		t.Fatal("a session exists before the enrolment finished")
	}

	now := time.Now()
	code := totpCode(t, key, now)
	codesPage, err := b.Submit(ctx, wrong, form, url.Values{"code": {code}})
	if err != nil {
		t.Fatal(err)
	}
	codes := shownRecoveryCodes(codesPage.Body)
	if codesPage.Status != http.StatusOK || len(codes) != mfa.RecoveryCodeCount {
		t.Fatalf("right code: HTTP %d, %d codes:\n%s", codesPage.Status, len(codes), codesPage.Body)
	}
	if sessionCookie(b, mustURL(t, ts.URL)) != "" {
		t.Fatal("a session exists before Continue")
	}
	f, ok := aliceFactors(t, ts)
	if !ok || f.TOTP == nil || len(f.RecoveryCodes) != mfa.RecoveryCodeCount {
		t.Fatalf("stored factors %+v", f)
	}
	if _, err := mfa.CheckTOTP(f, strings.ReplaceAll(key, " ", ""), code, now); !errors.Is(err, mfa.ErrCodeUsed) {
		t.Fatalf("the enrolment code at a sign-in: %v, want ErrCodeUsed", err)
	}
	// The enrolment page cannot enrol again, now that a factor exists.
	if replay, _ := b.Submit(ctx, wrong, form, url.Values{"code": {totpCode(t, key, now.Add(30*time.Second))}}); replay.Status != http.StatusConflict {
		t.Fatalf("the enrolment form again: HTTP %d, want 409", replay.Status)
	}

	cont, err := codesPage.ParseForm()
	if err != nil {
		t.Fatal(err)
	}
	if cont.Action != "/login/continue" {
		t.Fatalf("recovery codes page posts to %q", cont.Action)
	}
	next, err := b.Submit(ctx, codesPage, cont, nil)
	if err != nil {
		t.Fatal(err)
	}
	if next.Location == nil {
		// The consent page: allow.
		form, err := next.ParseForm()
		if err != nil || len(form.Buttons["decision"]) == 0 {
			t.Fatalf("after Continue: HTTP %d:\n%s", next.Status, next.Body)
		}
		if next, err = b.Submit(ctx, next, form, url.Values{"decision": {"allow"}}); err != nil {
			t.Fatal(err)
		}
	}
	loc := next.Location
	if loc == nil {
		t.Fatalf("no redirect to the client: HTTP %d:\n%s", next.Status, next.Body)
	}
	fl := flow{state: state, nonce: nonce, verifier: verifier, redirect: loc}
	tok, err := web.oauth2.Exchange(ctx, fl.code(t, ts.URL), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := web.verifier.Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		AMR []string `json:"amr"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(claims.AMR, []string{"pwd", "otp", "mfa"}) {
		t.Errorf("ID token amr = %v, want [pwd otp mfa]", claims.AMR)
	}
	sum := sha256.Sum256([]byte(sessionCookie(b, mustURL(t, ts.URL))))
	sess, err := ts.Store.GetBrowserSession(ctx, hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatal(err)
	}
	if sess.UserID != ts.alice.ID || !slices.Equal(sess.AMR, []string{"pwd", "otp", "mfa"}) {
		t.Errorf("session of %s with amr %v, want alice's with [pwd otp mfa]", sess.UserID, sess.AMR)
	}
}

// Confirms racing with the same key and code: one app, one generation of
// recovery codes, and every other confirm refused.
func TestAccountTOTPConfirmRace(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	b, _ := accountBrowser(t, ts)
	status, body := postAccountForm(t, b, ts.URL+"/account/totp", url.Values{})
	page := &providertest.Page{URL: mustURL(t, ts.URL+"/account/totp"), Status: status, Body: body}
	key, form := enrolPage(t, page)
	code := totpCode(t, key, time.Now())
	const n = 6
	type answer struct {
		status int
		codes  []string
	}
	answers := make(chan answer, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Submit, not postAccountForm: no t.Fatal off the test's goroutine.
			p, err := b.Submit(context.Background(), page, form, url.Values{"code": {code}})
			if err != nil {
				t.Error(err)
				return
			}
			answers <- answer{p.Status, shownRecoveryCodes(p.Body)}
		}()
	}
	wg.Wait()
	close(answers)
	var won []string
	wins := 0
	for a := range answers {
		switch a.status {
		case http.StatusOK:
			wins++
			won = a.codes
		case http.StatusConflict, http.StatusTooManyRequests:
		default:
			t.Errorf("racing confirm: HTTP %d", a.status)
		}
	}
	if wins != 1 || len(won) != mfa.RecoveryCodeCount {
		t.Fatalf("%d confirms won (%d codes shown), want exactly one with 10 codes", wins, len(won))
	}
	f, _ := aliceFactors(t, ts)
	keys := mfa.NewKeys(func() ([]byte, error) { return ts.Keys.Secret("provider") })
	if _, err := mfa.UseRecoveryCode(keys, f, won[0], time.Now()); err != nil {
		t.Fatalf("the codes shown are not the codes stored: %v", err)
	}
}

// The second-factor forms need the CSRF token and refuse cross-site posts,
// like every form of the provider's own pages.
func TestEnrolmentFormsAreGuarded(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	b, _ := accountBrowser(t, ts)
	paths := []string{"/login/enrol", "/login/continue", "/account/totp", "/account/totp/confirm", "/account/totp/remove", "/account/recovery-codes"}
	for _, path := range paths {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader("csrf=forged&code=123456&password=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := b.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s with a forged CSRF token: HTTP %d, want 403", path, resp.StatusCode)
		}
		status, body := postAccountFormHeaders(t, b, ts.URL+path, url.Values{"password": {alicePass}}, map[string]string{"Sec-Fetch-Site": "cross-site"})
		if status != http.StatusForbidden || !strings.Contains(body, "sent from another website") {
			t.Errorf("%s cross-site: HTTP %d, want refused", path, status)
		}
	}
	if f, ok := aliceFactors(t, ts); ok && f.Enrolled() {
		t.Fatal("a refused form changed the factors")
	}
	// The sign-in doors without a sign-in part-way through: a page, no 5xx.
	for _, path := range []string{"/login/enrol", "/login/continue"} {
		status, _ := postAccountForm(t, b, ts.URL+path, url.Values{"interaction": {"x.y"}})
		if status != http.StatusBadRequest {
			t.Errorf("%s with a bad interaction: HTTP %d, want 400", path, status)
		}
	}
}

// postAccountFormHeaders is postAccountForm with extra request headers.
func postAccountFormHeaders(t *testing.T, b *providertest.Browser, action string, vals url.Values, headers map[string]string) (int, string) {
	t.Helper()
	for _, c := range b.HTTP.Jar.Cookies(mustURL(t, action)) {
		if c.Name == "csrf" {
			vals.Set("csrf", c.Value)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, action, strings.NewReader(vals.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	p, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return p.Status, p.Body
}

// Through the real sign-in: alice is in a group that must have a second
// factor, so her first sign-in enrols an app; her next sign-in asks for a
// code, and the code that enrolled the app is refused there.
func TestSignInEnrolmentForRequiredGroup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t, func(c *provider.Config) { c.MFA.RequiredForGroups = []string{"admins"} })
	web := newRP(t, ts, "web", "web-secret", webRedirect, oidc.ScopeOpenID)
	b := providertest.NewBrowser(ts.URL)
	verifier := oauth2.GenerateVerifier()
	state := randomString()
	page := signInForm(t, b, web.oauth2.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), nil)
	key, form := enrolPage(t, page)
	now := time.Now()
	code := totpCode(t, key, now)
	codesPage, err := b.Submit(ctx, page, form, url.Values{"code": {code}})
	if err != nil {
		t.Fatal(err)
	}
	if len(shownRecoveryCodes(codesPage.Body)) != mfa.RecoveryCodeCount {
		t.Fatalf("after enrolling: HTTP %d:\n%s", codesPage.Status, codesPage.Body)
	}
	cont, err := codesPage.ParseForm()
	if err != nil {
		t.Fatal(err)
	}
	next, err := b.Submit(ctx, codesPage, cont, nil)
	if err != nil {
		t.Fatal(err)
	}
	if next.Location == nil {
		consent, err := next.ParseForm()
		if err != nil {
			t.Fatalf("after Continue: HTTP %d:\n%s", next.Status, next.Body)
		}
		if next, err = b.Submit(ctx, next, consent, url.Values{"decision": {"allow"}}); err != nil {
			t.Fatal(err)
		}
	}
	if next.Location == nil || next.Location.Query().Get("code") == "" || next.Location.Query().Get("state") != state {
		t.Fatalf("no code at the client: HTTP %d at %s", next.Status, next.URL)
	}

	// Another browser: the password, then the second-factor page, where
	// the enrolment's code is spent.
	other := providertest.NewBrowser(ts.URL)
	second := signInForm(t, other, web.oauth2.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(verifier)), nil)
	sf, err := second.ParseForm()
	if err != nil || !sf.Values.Has("code") || strings.Contains(second.Body, "Set up an authenticator app") {
		t.Fatalf("second sign-in: want the second-factor page, got HTTP %d:\n%s", second.Status, second.Body)
	}
	replay, err := other.Submit(ctx, second, sf, url.Values{"code": {code}})
	if err != nil {
		t.Fatal(err)
	}
	if replay.Location != nil || replay.Status < 400 || !strings.Contains(replay.Body, "That code was already used.") {
		t.Fatalf("the enrolment code at the next sign-in: HTTP %d, location %v:\n%s", replay.Status, replay.Location, replay.Body)
	}
	if sessionCookie(other, mustURL(t, ts.URL)) != "" {
		t.Fatal("the enrolment code signed someone in")
	}
}
