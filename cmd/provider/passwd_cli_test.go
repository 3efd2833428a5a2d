package main

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider/providertest"
	"github.com/smallsso/provider/provider/secret"
	"github.com/smallsso/provider/provider/userspec"
)

const alicePassword = "alice-password-for-tests" // appConfig's

// browserSignIn signs alice in through b and returns the refresh token.
func browserSignIn(t *testing.T, rp *relyingParty, b *providertest.Browser, password string) string {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	loc, err := b.SignIn(rp.ctx, rp.oauth.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), "alice", password, "allow")
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	tok, err := rp.oauth.Exchange(rp.ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	return tok.RefreshToken
}

// silentSignIn is the error of a prompt=none request in b ("" on success).
func silentSignIn(t *testing.T, rp *relyingParty, b *providertest.Browser) string {
	t.Helper()
	loc, err := b.SignIn(rp.ctx, rp.oauth.AuthCodeURL("st", oauth2.SetAuthURLParam("prompt", "none"),
		oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), "", "", "")
	if err != nil {
		t.Fatalf("prompt=none: %v", err)
	}
	return loc.Query().Get("error")
}

// `provider users passwd` against a running server (through the admin
// socket) signs the person out of every browser and revokes their refresh
// tokens.
func TestUsersPasswdEndsSessionsThroughServer(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), appConfig)
	startServer(t, c)
	rp := newRelyingParty(t, c.issuer, "app", appSecret, appCallback, "openid", "offline_access")
	one, two := providertest.NewBrowser(c.issuer), providertest.NewBrowser(c.issuer)
	r1, r2 := browserSignIn(t, rp, one, alicePassword), browserSignIn(t, rp, two, alicePassword)
	if e := silentSignIn(t, rp, one); e != "" {
		t.Fatalf("prompt=none before the change: %q", e)
	}

	out := runCLI(t, "a new password from the cli\n", "users", "passwd", "alice", "--password-stdin", "--config", c.path).ok(t)
	if out != "password set for alice\n" {
		t.Errorf("users passwd printed %q", out)
	}
	for i, b := range []*providertest.Browser{one, two} {
		if e := silentSignIn(t, rp, b); e != "login_required" {
			t.Errorf("browser %d: prompt=none after the change: %q, want login_required", i+1, e)
		}
		page, err := b.Get(rp.ctx, rp.oauth.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if err != nil || !strings.Contains(page.Body, `name="password"`) {
			t.Errorf("browser %d: authorize after the change does not show the sign-in form (%v)", i+1, err)
		}
	}
	for i, rt := range []string{r1, r2} {
		_, err := rp.oauth.TokenSource(rp.ctx, &oauth2.Token{RefreshToken: rt}).Token()
		var re *oauth2.RetrieveError
		if err == nil || !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Errorf("refresh token %d after the change: %v, want invalid_grant", i+1, err)
		}
	}
	// The new password works.
	browserSignIn(t, rp, providertest.NewBrowser(c.issuer), "a new password from the cli")
}

// users hash turns a password into the password_hash a config declares,
// with the password rules of the config and the CLI.
func TestUsersHash(t *testing.T) {
	t.Parallel()
	out := runCLI(t, "a long enough password\n", "users", "hash").ok(t)
	hash := strings.TrimSpace(out)
	if !strings.HasPrefix(hash, "$argon2id$") || strings.Count(out, "\n") != 1 {
		t.Fatalf("users hash printed %q, want one argon2id hash", out)
	}
	if err := secret.Check(hash, "a long enough password"); err != nil {
		t.Errorf("the printed hash does not check the password: %v", err)
	}
	if _, err := (userspec.User{Username: "alice", PasswordHash: hash}).Validate(); err != nil {
		t.Errorf("the config refuses the printed hash: %v", err)
	}
	line := runCLI(t, "short\n", "users", "hash").fails(t, 1)
	if !strings.Contains(line, "password") {
		t.Errorf("short password: %q, want it to name the password", line)
	}
}
