package provider_test

// Passkeys in real Chromium, with a CDP virtual authenticator standing in
// for a phone or security key: registering one on the account page,
// signing in with it alone through an authorization request, and what the
// pages say when the browser's part fails. The provider's issuer is
// http://localhost:<port>: WebAuthn needs a domain name (an IP address
// cannot be a relying party ID), and localhost is a secure context.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	cdpwebauthn "github.com/chromedp/cdproto/webauthn"

	"github.com/smallsso/provider/provider"
)

// newPasskeyFixture is newPagesFixture with the issuer on localhost.
func newPasskeyFixture(t *testing.T, mutate ...func(*provider.Config)) *pagesFixture {
	t.Helper()
	issuer := ""
	mutate = append([]func(*provider.Config){func(c *provider.Config) {
		c.Issuer = strings.Replace(c.Issuer, "127.0.0.1", "localhost", 1)
		issuer = c.Issuer
	}}, mutate...)
	f := newPagesFixture(t, mutate...)
	f.ts.URL = issuer
	f.oauth.Endpoint.AuthURL, f.oauth.Endpoint.TokenURL = issuer+"/authorize", issuer+"/token"
	return f
}

// addAuthenticator gives the tab a platform authenticator that holds
// discoverable credentials and verifies its user (a fingerprint, say)
// without asking.
func addAuthenticator(t *testing.T, ctx context.Context) cdpwebauthn.AuthenticatorID {
	t.Helper()
	if _, err := chromedp.Call(ctx, cdpwebauthn.Enable, cdpwebauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	res, err := chromedp.Call(ctx, cdpwebauthn.AddVirtualAuthenticator, cdpwebauthn.AddVirtualAuthenticatorParams{
		Options: &cdpwebauthn.VirtualAuthenticatorOptions{
			Protocol:                    cdpwebauthn.AuthenticatorProtocolCtap2,
			Ctap2version:                cdpwebauthn.Ctap2versionCtap21,
			Transport:                   cdpwebauthn.AuthenticatorTransportInternal,
			HasResidentKey:              true,
			HasUserVerification:         true,
			IsUserVerified:              true,
			AutomaticPresenceSimulation: true,
		},
	})
	if err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
	return res.AuthenticatorID
}

// registerPasskey adds a passkey named name on the account page the tab
// shows, and returns the recovery codes page's codes (none when it was
// not the first factor).
func registerPasskey(t *testing.T, ctx context.Context, name string, first bool) {
	t.Helper()
	run(t, ctx,
		chromedp.WaitVisible(chromedp.CSS("#passkey-register button")),
		js(`document.getElementById("passkey-name").value = ""`),
		chromedp.SendKeys(chromedp.CSS("#passkey-name"), name),
		chromedp.SendKeys(chromedp.CSS("#passkey-add-password"), alicePass),
		chromedp.Click(chromedp.CSS("#passkey-register button")),
	)
	if first {
		run(t, ctx, chromedp.WaitVisible(chromedp.CSS(".recovery-codes")))
		return
	}
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("p.notice")))
}

// idTokenClaims decodes the payload of an ID token the test just got from
// the token endpoint over loopback (its signature is checked elsewhere).
func idTokenClaims(t *testing.T, tok *oauth2.Token) map[string]any {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("no ID token in %v", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func amrOf(claims map[string]any) []string {
	var out []string
	list, _ := claims["amr"].([]any)
	for _, v := range list {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

func TestBrowserPasskeyRegisterThenSignInWithItAlone(t *testing.T) {
	f := newPasskeyFixture(t)
	ctx := newTab(t)
	addAuthenticator(t, ctx)

	navigate(t, ctx, f.ts.URL+"/account")
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("#passkey-button")))
	fillLogin(t, ctx, "alice", alicePass, false)
	expectText(t, ctx, "Your account", "Passkeys", "You have no passkey yet.", "Add a passkey")
	screenshot(t, ctx, "account-passkeys-none")

	registerPasskey(t, ctx, "Test laptop", true)
	expectText(t, ctx, "Passkey added", "“Test laptop” is ready", "Your recovery codes", "This is the only time they are shown.")
	codes := result(t, ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll(".recovery-codes code")).map(c => c.textContent)`))
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes shown, want 10: %v", len(codes), codes)
	}
	screenshot(t, ctx, "passkey-added")
	fs, err := f.ts.Store.GetFactors(context.Background(), f.ts.alice.ID)
	if err != nil || len(fs.Passkeys) != 1 || fs.Passkeys[0].Name != "Test laptop" || len(fs.RecoveryCodes) != 10 {
		t.Fatalf("stored factors after registering: %+v, %v", fs, err)
	}
	if strings.Contains(string(fs.Passkeys[0].CredentialSealed), "publicKey") {
		t.Fatal("the credential is stored unsealed")
	}

	submit(t, ctx, "a.button")
	expectText(t, ctx, "Test laptop", "not used yet", "Remove")
	screenshot(t, ctx, "account-passkeys")

	// The same authenticator again: the browser refuses (it is in the
	// exclude list), and the page says so in words.
	run(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#passkey-add-password"), alicePass),
		chromedp.Click(chromedp.CSS("#passkey-register button")),
		chromedp.WaitVisible(chromedp.CSS("#passkey-error")),
	)
	expectText(t, ctx, "This device already has a passkey for your account.")

	// Signed out, then in again through an application with the passkey
	// alone: no username, no password.
	navigate(t, ctx, f.ts.URL+"/logout")
	submit(t, ctx, `button[name=confirm]`)
	expectText(t, ctx, "You are signed out")

	a := f.authRequest()
	navigate(t, ctx, a.url)
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("#passkey-button")))
	expectText(t, ctx, "Sign in with a passkey")
	screenshot(t, ctx, "login-passkey")
	run(t, ctx,
		chromedp.Click(chromedp.CSS("#passkey-button")),
		chromedp.WaitVisible(chromedp.CSS("button[value=allow]")),
	)
	expectText(t, ctx, "You are signed in as alice.")
	submit(t, ctx, "button[value=allow]")
	code := f.landed(t, ctx, a)
	tok, err := f.oauth.Exchange(context.Background(), code, oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatalf("exchange the code the passkey sign-in brought back: %v", err)
	}
	amr := amrOf(idTokenClaims(t, tok))
	if !(slices.Contains(amr, "hwk") || slices.Contains(amr, "swk")) || !slices.Contains(amr, "user") || !slices.Contains(amr, "mfa") || slices.Contains(amr, "pwd") {
		t.Fatalf("ID token amr %v, want hwk or swk, user and mfa, and no pwd", amr)
	}
	fs, err = f.ts.Store.GetFactors(context.Background(), f.ts.alice.ID)
	if err != nil || fs.Passkeys[0].LastUsedAt.IsZero() {
		t.Fatalf("the passkey's last use was not recorded: %+v, %v", fs.Passkeys, err)
	}

	navigate(t, ctx, f.ts.URL+"/account")
	expectText(t, ctx, "Test laptop", "last used")
}

func TestBrowserPasskeyErrorsInWords(t *testing.T) {
	f := newPasskeyFixture(t)
	ctx := newTab(t)
	// An authenticator that holds no passkey for this site: the browser
	// finds nothing to offer and the request ends as "not allowed".
	addAuthenticator(t, ctx)
	navigate(t, ctx, f.authRequest(oauth2.SetAuthURLParam("ui_locales", "de")).url)
	run(t, ctx,
		chromedp.WaitVisible(chromedp.CSS("#passkey-button")),
		chromedp.Click(chromedp.CSS("#passkey-button")),
		chromedp.WaitVisible(chromedp.CSS("#passkey-error")),
	)
	expectText(t, ctx, "Die Passkey-Anfrage wurde abgebrochen")
	if loc := result(t, ctx, chromedp.Location()); !strings.HasPrefix(loc, f.ts.URL+"/authorize") {
		t.Fatalf("after a cancelled passkey the browser is at %s", loc)
	}
	screenshot(t, ctx, "login-passkey-cancelled-de")
	// The password still works from the same page.
	if status := fillLogin(t, ctx, "alice", alicePass, false); status != http.StatusOK {
		t.Fatalf("password after a cancelled passkey: HTTP %d", status)
	}
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("button[value=allow]")))
}

func TestBrowserPasskeyAsSecondFactor(t *testing.T) {
	f := newPasskeyFixture(t)
	ctx := newTab(t)
	addAuthenticator(t, ctx)
	navigate(t, ctx, f.ts.URL+"/account")
	fillLogin(t, ctx, "alice", alicePass, false)
	registerPasskey(t, ctx, "Laptop", true)
	navigate(t, ctx, f.ts.URL+"/logout")
	submit(t, ctx, `button[name=confirm]`)

	// The password first: whoever has a second factor is asked for it,
	// and the page offers the passkey.
	a := f.authRequest()
	navigate(t, ctx, a.url)
	fillLogin(t, ctx, "alice", alicePass, false)
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("#passkey-second")))
	expectText(t, ctx, "Confirm it is you", "Other ways to confirm", "Use a passkey")
	screenshot(t, ctx, "second-factor-passkey")
	run(t, ctx,
		chromedp.Click(chromedp.CSS("#passkey-second")),
		chromedp.WaitVisible(chromedp.CSS("button[value=allow]")),
	)
	submit(t, ctx, "button[value=allow]")
	code := f.landed(t, ctx, a)
	tok, err := f.oauth.Exchange(context.Background(), code, oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	amr := amrOf(idTokenClaims(t, tok))
	for _, want := range []string{"pwd", "hwk", "user", "mfa"} {
		if !slices.Contains(amr, want) {
			t.Fatalf("ID token amr %v after a password and a passkey, want pwd, hwk, user and mfa", amr)
		}
	}
}

func TestBrowserPasskeyEnrolledDuringSignIn(t *testing.T) {
	f := newPasskeyFixture(t, func(c *provider.Config) { c.MFA.RequiredForGroups = []string{"admins"} })
	ctx := newTab(t)
	addAuthenticator(t, ctx)
	a := f.authRequest()
	navigate(t, ctx, a.url)
	fillLogin(t, ctx, "alice", alicePass, false)
	// alice is an admin without a second factor: she must set one up,
	// and may choose a passkey over an app.
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("#passkey-register button")))
	expectText(t, ctx, "Set up an authenticator app", "Or use a passkey", "Set up a passkey instead")
	screenshot(t, ctx, "enrol-passkey")
	run(t, ctx,
		chromedp.Click(chromedp.CSS("#passkey-register button")),
		chromedp.WaitVisible(chromedp.CSS(".recovery-codes")),
	)
	expectText(t, ctx, "Save your recovery codes")
	fs, err := f.ts.Store.GetFactors(context.Background(), f.ts.alice.ID)
	if err != nil || len(fs.Passkeys) != 1 || len(fs.RecoveryCodes) != 10 || fs.TOTP != nil {
		t.Fatalf("factors after enrolling a passkey in the sign-in: %+v, %v", fs, err)
	}
	submit(t, ctx, "form button[type=submit]")
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("button[value=allow]")))
	submit(t, ctx, "button[value=allow]")
	code := f.landed(t, ctx, a)
	tok, err := f.oauth.Exchange(context.Background(), code, oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	amr := amrOf(idTokenClaims(t, tok))
	for _, want := range []string{"pwd", "hwk", "user", "mfa"} {
		if !slices.Contains(amr, want) {
			t.Fatalf("ID token amr %v after enrolling a passkey, want pwd, hwk, user and mfa", amr)
		}
	}
}
