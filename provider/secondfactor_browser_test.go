package provider_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The second-factor page in Chromium, keyboard only: the code field has
// the focus after the password, Enter submits the code, a wrong code says
// so and keeps the focus in the field, "Use a recovery code instead" is
// reachable by Tab, and a recovery code signs in. Screenshots of each
// state at phone and desktop width.
func TestBrowserSecondFactorKeyboardOnly(t *testing.T) {
	f := newPagesFixture(t)
	alice := enrolTOTP(t, f.ts, f.ts.alice)
	ctx := newTab(t)
	a := f.authRequest()
	navigate(t, ctx, a.url)
	if status := fillLogin(t, ctx, "alice", alicePass, false); status != http.StatusOK {
		t.Fatalf("password: HTTP %d", status)
	}
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("#code")))
	expectText(t, ctx, "Confirm it is you", "Your password was correct.", "Code from your authenticator app")
	if got := activeID(t, ctx); got != "code" {
		t.Fatalf("focus is on %q after the password, want the code field", got)
	}
	screenshot(t, ctx, "second-factor")

	run(t, ctx, chromedp.KeyEvent(alice.wrongCode(t, time.Now())))
	resp, err := chromedp.RunResponse(ctx, chromedp.KeyEvent("\r"))
	if err != nil || resp.Status != http.StatusUnauthorized {
		t.Fatalf("Enter with a wrong code: %v %v, want 401", resp, err)
	}
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("#code")))
	expectText(t, ctx, "That code is not correct.")
	if got := activeID(t, ctx); got != "code" {
		t.Fatalf("focus is on %q after a wrong code, want the code field", got)
	}
	screenshot(t, ctx, "second-factor-wrong-code")

	// Tab to "Use a recovery code instead" and press Enter.
	for i := 0; activeID(t, ctx) != "recovery"; i++ {
		if i == 6 {
			t.Fatal(`Tab never reached "Use a recovery code instead"`)
		}
		run(t, ctx, chromedp.KeyEvent("\t"))
	}
	if resp, err := chromedp.RunResponse(ctx, chromedp.KeyEvent("\r")); err != nil || resp.Status != http.StatusOK {
		t.Fatalf("Enter on the recovery option: %v %v", resp, err)
	}
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("#code")))
	expectText(t, ctx, "Recovery code", "Use your authenticator app instead")
	screenshot(t, ctx, "second-factor-recovery")
	run(t, ctx, chromedp.KeyEvent(alice.recovery[0]))
	if resp, err := chromedp.RunResponse(ctx, chromedp.KeyEvent("\r")); err != nil || resp.Status != http.StatusOK {
		t.Fatalf("Enter with a recovery code: %v %v", resp, err)
	}
	submit(t, ctx, "button[value=allow]")
	f.landed(t, ctx, a)
}
