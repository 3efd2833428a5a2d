package provider_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// Cancel on the sign-out confirmation goes back to the page the person
// came from (history, a static script: the CSP allows no inline one) and
// keeps them signed in.
func TestBrowserLogoutCancelGoesBack(t *testing.T) {
	f := newPagesFixture(t)
	ctx := newTab(t)
	a := f.authRequest()
	navigate(t, ctx, a.url)
	fillLogin(t, ctx, "alice", alicePass, true)
	submit(t, ctx, "button[value=allow]")
	f.landed(t, ctx, a)

	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>App</title><p id="app-page">The app</p><a id="out" href="%s/logout">Sign out</a>`, f.ts.URL)
	}))
	t.Cleanup(app.Close)
	// localhost is another site than 127.0.0.1, where the provider is.
	appURL := strings.Replace(app.URL, "127.0.0.1", "localhost", 1) + "/notes"
	navigate(t, ctx, appURL)
	submit(t, ctx, "#out")
	expectText(t, ctx, "Sign out of Acme Cooperative?", "Cancel")
	// history.back() restores the page (from the back-forward cache, which
	// chromedp's DOM queries do not follow): poll by script instead.
	run(t, ctx, chromedp.Click(chromedp.CSS("#cancel")))
	result(t, ctx, chromedp.Poll[bool](`document.getElementById("app-page") !== null`))
	if loc := result(t, ctx, chromedp.Location()); loc != appURL {
		t.Errorf("Cancel led to %s, want back to %s", loc, appURL)
	}
	navigate(t, ctx, f.ts.URL+"/account")
	expectText(t, ctx, "Your account", "Alice Liddell")
}
