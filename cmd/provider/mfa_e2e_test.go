package main

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider/providertest"
)

// mfaSignIn signs alice in through b from authURL: the password, then
// code on the second-factor page, then consent. It returns the redirect
// to the client, or nil and the page when the code was refused.
func mfaSignIn(t *testing.T, b *providertest.Browser, rp *relyingParty, authURL, code string) (*url.URL, *providertest.Page) {
	t.Helper()
	page, err := b.SignInPage(rp.ctx, authURL, "alice", alicePassword, "allow")
	if err != nil {
		t.Fatal(err)
	}
	form, err := page.ParseForm()
	if page.Location != nil || err != nil || !strings.HasSuffix(form.Action, "/login/mfa") || !form.Values.Has("code") {
		t.Fatalf("after the password: HTTP %d to %v, want the second-factor page with a code field: %.1000s", page.Status, page.Location, page.Body)
	}
	if page, err = b.Submit(rp.ctx, page, form, url.Values{"code": {code}}); err != nil {
		t.Fatal(err)
	}
	if page.Location == nil && page.Status == http.StatusOK {
		if form, err := page.ParseForm(); err == nil && len(form.Buttons["decision"]) > 0 {
			if page, err = b.Submit(rp.ctx, page, form, url.Values{"decision": {"allow"}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return page.Location, page
}

// An authenticator app enrolled with the CLI while the server runs is what
// the sign-in asks for: password, then a code computed from the printed
// URI, and the ID token says so (amr pwd otp mfa, acr mfa when asked).
// The same code does not sign in twice; a printed recovery code works
// once.
func TestTOTPFromCLISignsIn(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), appConfig)
	s := startServer(t, c)
	out := parseTOTPAdd(t, runCLI(t, "", "users", "totp", "add", "alice", "--config", c.path).ok(t), "alice", false, true)
	rp := newRelyingParty(t, c.issuer, "app", appSecret, appCallback, "openid")

	verifier := oauth2.GenerateVerifier()
	authURL := rp.oauth.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("acr_values", "mfa"))
	code := totpCode(t, out.key, time.Now())
	loc, page := mfaSignIn(t, providertest.NewBrowser(c.issuer), rp, authURL, code)
	if loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("a right code did not sign in: HTTP %d %v: %.1000s", page.Status, loc, page.Body)
	}
	tok, err := rp.oauth.Exchange(rp.ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	var claims struct {
		AMR []string `json:"amr"`
		ACR string   `json:"acr"`
	}
	if err := verify(t, c.issuer, "app", idToken(t, tok)).Claims(&claims); err != nil {
		t.Fatal(err)
	}
	slices.Sort(claims.AMR)
	if !slices.Equal(claims.AMR, []string{"mfa", "otp", "pwd"}) || claims.ACR != "mfa" {
		t.Errorf("ID token amr %v acr %q, want [pwd otp mfa] and mfa", claims.AMR, claims.ACR)
	}

	// The same code, in another browser, is refused.
	if loc, _ := mfaSignIn(t, providertest.NewBrowser(c.issuer), rp, rp.oauth.AuthCodeURL("st2", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), code); loc != nil {
		t.Errorf("a used code signed in again: %v", loc)
	}
	// A recovery code the CLI printed works once.
	if loc, page := mfaSignIn(t, providertest.NewBrowser(c.issuer), rp, rp.oauth.AuthCodeURL("st3", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), out.codes[0]); loc == nil || loc.Query().Get("code") == "" {
		t.Errorf("a printed recovery code did not sign in: HTTP %d: %.1000s", page.Status, page.Body)
	}
	if loc, _ := mfaSignIn(t, providertest.NewBrowser(c.issuer), rp, rp.oauth.AuthCodeURL("st4", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), out.codes[0]); loc != nil {
		t.Errorf("a recovery code signed in twice: %v", loc)
	}
	s.stop(t)
	noSecretIn(t, "the server log", []byte(s.stderr.String()), out)
}
