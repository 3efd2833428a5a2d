package provider_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"
)

// TestBrowserAccountTOTPEnrolment sets up an authenticator app on the
// account page in Chromium with the keyboard alone, and photographs the
// set-up page, a wrong code, the recovery codes and the account page's
// second-factor section at phone and desktop width.
func TestBrowserAccountTOTPEnrolment(t *testing.T) {
	f := newPagesFixture(t)
	ctx := newTab(t)
	navigate(t, ctx, f.ts.URL+"/account")
	fillLogin(t, ctx, "alice", alicePass, false)
	expectText(t, ctx, "Two-step sign-in", "Authenticator app", "Not set up.")

	// Keyboard: focus the set-up button and press Enter.
	run(t, ctx, js(`document.querySelector('form[action$="/account/totp"] button').focus()`))
	if resp, err := chromedp.RunResponse(ctx, chromedp.KeyEvent("\r")); err != nil || resp.Status != http.StatusOK {
		t.Fatalf("Enter on Set up: %v", err)
	}
	expectText(t, ctx, "Set up an authenticator app", "scan this QR code", "Code shown in the app")
	if activeID(t, ctx) != "code" {
		t.Fatalf("the code field is not focused on the set-up page (focus on %q)", activeID(t, ctx))
	}
	if w := result(t, ctx, chromedp.Evaluate[float64](`document.querySelector("img.qr").naturalWidth`)); w < 100 {
		t.Fatalf("the QR code did not load (width %v): the CSP must allow img-src data:", w)
	}
	key := result(t, ctx, chromedp.Evaluate[string](`document.getElementById("secret").textContent`))
	screenshot(t, ctx, "totp-enrol")

	typeCode := func(code string) int64 {
		t.Helper()
		run(t, ctx, js(`document.getElementById("code").value = ""`), chromedp.Focus(chromedp.CSS("#code")), chromedp.KeyEvent(code))
		resp, err := chromedp.RunResponse(ctx, chromedp.KeyEvent("\r"))
		if err != nil {
			t.Fatalf("Enter in the code field: %v", err)
		}
		return resp.Status
	}
	if status := typeCode(wrongCode(t, key, time.Now())); status != http.StatusBadRequest {
		t.Fatalf("wrong code: HTTP %d, want 400", status)
	}
	expectText(t, ctx, "That code is not right.")
	if again := result(t, ctx, chromedp.Evaluate[string](`document.getElementById("secret").textContent`)); again != key {
		t.Fatal("a wrong code changed the key")
	}
	screenshot(t, ctx, "totp-enrol-wrong-code")

	if status := typeCode(totpCode(t, key, time.Now())); status != http.StatusOK {
		t.Fatalf("right code: HTTP %d", status)
	}
	expectText(t, ctx, "Save your recovery codes", "This is the only time they are shown", "I have saved them, continue")
	codes := result(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#codes code")].map(c => c.textContent)`))
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes shown, want 10", len(codes))
	}
	screenshot(t, ctx, "recovery-codes")

	run(t, ctx, js(`document.querySelector("a.button").focus()`))
	if _, err := chromedp.RunResponse(ctx, chromedp.KeyEvent("\r")); err != nil {
		t.Fatalf("Enter on Continue: %v", err)
	}
	expectText(t, ctx, "Your authenticator app is set up.", "On since", "You have 10 unused recovery codes.", "Remove authenticator app", "Make new recovery codes")
	if text := fullText(ctx); strings.Contains(text, codes[0]) {
		t.Fatal("the account page shows a recovery code")
	}
	screenshot(t, ctx, "account-mfa")
}

// TestBrowserSignInEnrolment walks a sign-in that must set up an
// authenticator app in Chromium: the enrolment page (the sign-in's own
// door to it is the sign-in policy's; here the test puts the page the
// provider renders for that request into the login page's tab), a code
// typed and submitted with the keyboard, the recovery codes, Continue,
// consent, and the code at the relying party, whose ID token says amr
// pwd otp mfa.
func TestBrowserSignInEnrolment(t *testing.T) {
	f := newPagesFixture(t)
	ctx := newTab(t)
	// A CSRF cookie the test knows, so the page rendered outside the
	// browser is bound to this browser.
	csrf := strings.Repeat("c", 43)
	navigate(t, ctx, f.ts.URL+"/healthz")
	run(t, ctx, js(`document.cookie = "csrf=`+csrf+`; path=/"`))
	a := f.authRequest()
	navigate(t, ctx, a.url)
	rec := f.ts.Provider.EnrolmentPageForTest(a.url, f.ts.alice.ID, csrf)
	if rec.Code != http.StatusOK {
		t.Fatalf("enrolment page: HTTP %d:\n%s", rec.Code, rec.Body)
	}
	html, _ := json.Marshal(rec.Body.String())
	run(t, ctx, js(`document.open(); document.write(`+string(html)+`); document.close()`))
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("#code")))
	expectText(t, ctx, "Team Notes", "Set up an authenticator app", "Your organisation asks for a second step when alice signs in.")
	key := result(t, ctx, chromedp.Evaluate[string](`document.getElementById("secret").textContent`))
	screenshot(t, ctx, "login-enrol")

	run(t, ctx, chromedp.Focus(chromedp.CSS("#code")), chromedp.KeyEvent(totpCode(t, key, time.Now())))
	if resp, err := chromedp.RunResponse(ctx, chromedp.KeyEvent("\r")); err != nil || resp.Status != http.StatusOK {
		t.Fatalf("Enter in the code field: %v", err)
	}
	expectText(t, ctx, "Save your recovery codes", "I have saved them, continue")
	screenshot(t, ctx, "login-recovery-codes")
	submit(t, ctx, "form button[type=submit]")
	submit(t, ctx, "button[value=allow]")
	code := f.landed(t, ctx, a)
	tok, err := f.oauth.Exchange(context.Background(), code, oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatal("no ID token")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		AMR []string `json:"amr"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || !slices.Equal(claims.AMR, []string{"pwd", "otp", "mfa"}) {
		t.Fatalf("ID token amr %v (%v), want [pwd otp mfa]", claims.AMR, err)
	}
}
