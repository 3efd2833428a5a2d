package provider_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
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
