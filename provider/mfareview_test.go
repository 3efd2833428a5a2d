package provider_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider/providertest"
	"github.com/smallsso/provider/storage"
)

// Found by review: Mallory (own account, knows alice's password only) enrols her own app
// with acr_values=mfa, keeps the recovery-codes page's sealed interaction
// (EnrolledAMR=[otp]), posts it to /login with alice's password, and posts
// the second-factor page's interaction (EnrolledAMR carried over) to
// /login/continue.
func TestMFAStateOfOneFormRefusedByAnother(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	mallory := storage.User{ID: rand.Text(), Username: "mallory", PasswordHash: testHash("mallory pass"),
		CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
	if err := ts.Store.CreateUser(ctx, mallory); err != nil {
		t.Fatal(err)
	}
	enrolTOTP(t, ts, ts.alice) // the victim has an authenticator app

	web := newRP(t, ts, "web", "web-secret", webRedirect, oidc.ScopeOpenID)
	b := providertest.NewBrowser(ts.URL)
	state, nonce, verifier := randomString(), randomString(), oauth2.GenerateVerifier()
	authURL := web.oauth2.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce),
		oauth2.SetAuthURLParam("acr_values", "mfa"))
	page, err := b.SignInPage(ctx, authURL, "mallory", "mallory pass", "allow")
	if err != nil {
		t.Fatal(err)
	}
	key, form := enrolPage(t, page)
	codesPage, err := b.Submit(ctx, page, form, url.Values{"code": {totpCode(t, key, time.Now())}})
	if err != nil {
		t.Fatal(err)
	}
	cont, err := codesPage.ParseForm()
	if err != nil || cont.Action != "/login/continue" {
		t.Fatalf("codes page: %v %v\n%s", err, cont, codesPage.Body)
	}
	// The continue interaction posted to /login with alice's password.
	sf, err := b.Submit(ctx, codesPage, &providertest.Form{Action: "/login", Values: cont.Values},
		url.Values{"username": {"alice"}, "password": {alicePass}})
	if err != nil {
		t.Fatal(err)
	}
	// The state of the codes page is not the password form's: refused,
	// and nobody is signed in.
	if sf.Status != http.StatusBadRequest || isSecondFactorPage(sf) {
		t.Fatalf("the continue page's state posted to /login: HTTP %d, want 400\n%.800s", sf.Status, sf.Body)
	}
	sum := sha256.Sum256([]byte(sessionCookie(b, mustURL(t, ts.URL))))
	if sess, err := ts.Store.GetBrowserSession(ctx, hex.EncodeToString(sum[:])); err == nil && sess.UserID == ts.alice.ID {
		t.Errorf("a session for alice with amr %v without her second factor", sess.AMR)
	}
	_ = state
	_ = nonce
}

// With the password known, a right password between code guesses forgives
// the (account, source) budget and makes the source "known" (exempt from
// the account budget): code guesses are bounded only by the per-address
// budget, and by nothing per account across addresses.
func TestMFACodeGuessesNotRefilledByRightPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	e := enrolTOTP(t, ts, ts.alice)
	web := newRP(t, ts, "web", "web-secret", webRedirect, oidc.ScopeOpenID)
	b := providertest.NewBrowser(ts.URL)
	authURL := web.oauth2.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oidc.Nonce(randomString()))
	bad := e.wrongCode(t, time.Now())
	guesses := 0
	for round := 0; round < 15 && guesses < 60; round++ {
		page := toSecondFactor(t, b, authURL)
		form, _ := page.ParseForm()
		for i := 0; i < 4; i++ {
			got, err := b.Submit(ctx, page, form, url.Values{"code": {bad}})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status == http.StatusTooManyRequests {
				if guesses > 5 {
					t.Errorf("throttled only after %d wrong codes from one address, want at most 5", guesses)
				}
				return
			}
			if got.Status != http.StatusUnauthorized {
				t.Fatalf("HTTP %d", got.Status)
			}
			guesses++
		}
	}
	t.Errorf("%d wrong codes checked for one account between right passwords (account budget is 30, pair 5)", guesses)
}

// /login/continue completes a sign-in with amr mfa after the factor it
// enrolled was removed by `users mfa reset`, and may be posted many times.
func TestMFAContinueAfterResetRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	web := newRP(t, ts, "web", "web-secret", webRedirect, oidc.ScopeOpenID)
	b := providertest.NewBrowser(ts.URL)
	authURL := web.oauth2.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oidc.Nonce(randomString()),
		oauth2.SetAuthURLParam("acr_values", "mfa"))
	page, err := b.SignInPage(ctx, authURL, "alice", alicePass, "allow")
	if err != nil {
		t.Fatal(err)
	}
	key, form := enrolPage(t, page)
	codesPage, err := b.Submit(ctx, page, form, url.Values{"code": {totpCode(t, key, time.Now())}})
	if err != nil {
		t.Fatal(err)
	}
	cont, _ := codesPage.ParseForm()
	if err := ts.Store.DeleteFactors(ctx, ts.alice.ID); err != nil { // users mfa reset
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		next, err := b.Submit(ctx, codesPage, cont, nil)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(sessionCookie(b, mustURL(t, ts.URL))))
		sess, err := ts.Store.GetBrowserSession(ctx, hex.EncodeToString(sum[:]))
		if err == nil && sess.UserID == ts.alice.ID {
			t.Errorf("post %d after reset: HTTP %d, session amr %v", i, next.Status, sess.AMR)
		}
	}
}

// The password grant gives tokens to a person with an authenticator app.
func TestMFAPasswordGrantRefusedToEnrolled(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	passwordClient(t, ts)
	enrolTOTP(t, ts, ts.alice)
	status, body := passwordGrant(t, ts, "alice", alicePass, "openid profile read")
	if status == http.StatusOK {
		t.Errorf("password grant for an MFA user: access_token present=%v", body["access_token"] != nil)
	}
}

// A session that signed in before the person had a second factor (or a
// cookie copied from one) is stepped up before the account page lets it
// see or change anything: otherwise it could mint recovery codes, which
// with the password beat the factor.
func TestAccountStepsUpAnOlderSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	b, _ := accountBrowser(t, ts) // password only: alice had no factor
	e := enrolTOTP(t, ts, ts.alice)
	before, _ := aliceFactors(t, ts)
	oldCookie := sessionCookie(b, mustURL(t, ts.URL))

	page, err := b.Get(ctx, ts.URL+"/account")
	if err != nil {
		t.Fatal(err)
	}
	if !isSecondFactorPage(page) || strings.Contains(page.Body, "Alice Liddell") {
		t.Fatalf("/account with a password-only session: HTTP %d, want the second-factor page:\n%.1500s", page.Status, page.Body)
	}
	// Forms of the account page are sent back to it, and change nothing.
	for _, action := range []string{"/account/recovery-codes", "/account/totp/remove", "/account/totp"} {
		status, body := postAccountForm(t, b, ts.URL+action, url.Values{"password": {alicePass}})
		if len(shownRecoveryCodes(body)) != 0 || strings.Contains(body, "Alice Liddell") {
			t.Errorf("%s from a password-only session: HTTP %d showed the account or new codes", action, status)
		}
	}
	if after, _ := aliceFactors(t, ts); after.TOTP == nil || after.RecoveryCodes[0].Hash != before.RecoveryCodes[0].Hash {
		t.Fatal("a password-only session changed the factors")
	}

	form, err := page.ParseForm()
	if err != nil {
		t.Fatal(err)
	}
	done, err := b.Submit(ctx, page, form, url.Values{"code": {e.code(t, time.Now())}})
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != http.StatusOK || done.URL.Path != "/account" || !strings.Contains(done.Body, "Alice Liddell") {
		t.Fatalf("after the code: HTTP %d at %s, want the account page", done.Status, done.URL)
	}
	newCookie := sessionCookie(b, mustURL(t, ts.URL))
	if newCookie == oldCookie {
		t.Fatal("the step-up kept the session cookie")
	}
	sum := sha256.Sum256([]byte(newCookie))
	s, err := ts.Store.GetBrowserSession(ctx, hex.EncodeToString(sum[:]))
	if err != nil || !slices.Contains(s.AMR, "mfa") {
		t.Fatalf("session after the step-up: amr %v, %v", s.AMR, err)
	}
}

// A session from before the person enrolled a factor (or a cookie copied
// from one) gets no code for any client until the factor is proved: the
// person has a factor, so a sign-in would have asked for it.
func TestAuthorizeStepsUpASessionOlderThanTheFactor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	web := newRP(t, ts, "web", "web-secret", webRedirect, oidc.ScopeOpenID)
	b := providertest.NewBrowser(ts.URL)
	authURL := func() string {
		return web.oauth2.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oidc.Nonce(randomString()))
	}
	if page, err := b.SignInPage(ctx, authURL(), "alice", alicePass, "allow"); err != nil || page.Location == nil {
		t.Fatalf("password sign-in before any factor: %v", err)
	}
	e := enrolTOTP(t, ts, ts.alice)
	page, err := b.Get(ctx, authURL())
	if err != nil {
		t.Fatal(err)
	}
	if !isSecondFactorPage(page) {
		t.Fatalf("a password-only session of a person with a factor: HTTP %d %v, want the second-factor page", page.Status, page.Location)
	}
	form, _ := page.ParseForm()
	done, err := b.Submit(ctx, page, form, url.Values{"code": {e.code(t, time.Now())}})
	if err != nil {
		t.Fatal(err)
	}
	if done.Location == nil || !strings.Contains(done.Location.String(), "code=") {
		t.Fatalf("after the code: HTTP %d %v, want a code at the client", done.Status, done.Location)
	}
}

// Sign-out ends the CSRF cookie too: a sealed form state taken before it
// (here a login page's, to which every sign-in form is bound) is refused
// after it, in a browser someone else may use next.
func TestSignOutEndsTheFormStatesOfTheBrowser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	r := logoutClient(t, ts, "rp-csrf", "", "")
	b := providertest.NewBrowser(ts.URL)
	s := signIn(t, ts, b, r)
	web := newRP(t, ts, "web", "web-secret", webRedirect, oidc.ScopeOpenID)
	authURL := web.oauth2.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oidc.Nonce(randomString()),
		oauth2.SetAuthURLParam("prompt", "login"))
	before, err := b.Get(ctx, authURL)
	if err != nil {
		t.Fatal(err)
	}
	form, err := before.ParseForm()
	if err != nil || !form.Values.Has("password") {
		t.Fatalf("login page before sign-out: %v", err)
	}
	resp, err := b.HTTP.PostForm(ts.URL+"/logout", url.Values{"id_token_hint": {s.idToken}, "post_logout_redirect_uri": {byeURI}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	after, err := b.Submit(ctx, before, form, url.Values{"username": {"alice"}, "password": {alicePass}})
	if err != nil {
		t.Fatal(err)
	}
	if after.Status != http.StatusForbidden || after.Location != nil {
		t.Fatalf("a login form from before the sign-out: HTTP %d %v, want 403", after.Status, after.Location)
	}
	// A fresh page gets a fresh token and works.
	if page, err := b.SignInPage(ctx, authURL, "alice", alicePass, "allow"); err != nil || page.Location == nil {
		t.Fatalf("signing in again: %v", err)
	}
}
