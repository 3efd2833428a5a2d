package provider_test

// skip_consent (issue 13): a first-party client the operator declares
// gets its code without a consent page; prompt=consent still shows it;
// dynamic registration can never give it.

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/providertest"
	"github.com/smallsso/provider/storage"
)

const firstSecret = "first-secret-0123456789abcdef"

func addFirstParty(t *testing.T, ts *testServer) *rp {
	t.Helper()
	ts.addClient(t, clientspec.Spec{ID: "first", Secret: firstSecret, ClientSettings: storage.ClientSettings{
		Name: "First Party", RedirectURIs: []string{webRedirect}, Scopes: []string{"openid", "profile", "email"}, SkipConsent: true,
	}})
	return newRP(t, ts, "first", firstSecret, webRedirect, "openid", "profile", "email")
}

// codeURL is an authorization URL for r with PKCE and a nonce, and the
// verifier to exchange its code with.
func codeURL(r *rp, opts ...oauth2.AuthCodeOption) (string, string) {
	verifier := oauth2.GenerateVerifier()
	opts = append(opts, oauth2.S256ChallengeOption(verifier))
	return r.oauth2.AuthCodeURL(randomString(), opts...), verifier
}

// login fills the login form of page as alice.
func login(t *testing.T, b *providertest.Browser, page *providertest.Page) *providertest.Page {
	t.Helper()
	form, err := page.ParseForm()
	if err != nil || !form.Values.Has("password") {
		t.Fatalf("no login form: HTTP %d Location %v", page.Status, page.Location)
	}
	page, err = b.Submit(context.Background(), page, form, url.Values{"username": {"alice"}, "password": {alicePass}})
	if err != nil {
		t.Fatal(err)
	}
	return page
}

// decide answers the consent page.
func decide(t *testing.T, b *providertest.Browser, page *providertest.Page, decision string) *providertest.Page {
	t.Helper()
	if !isConsentPage(page) {
		t.Fatalf("want the consent page, got HTTP %d Location %v", page.Status, page.Location)
	}
	form, _ := page.ParseForm()
	page, err := b.Submit(context.Background(), page, form, url.Values{"decision": {decision}})
	if err != nil {
		t.Fatal(err)
	}
	return page
}

func codeOf(t *testing.T, name string, page *providertest.Page) string {
	t.Helper()
	if page.Location == nil || page.Location.Query().Get("code") == "" {
		if isConsentPage(page) {
			t.Fatalf("%s: the consent page was shown", name)
		}
		t.Fatalf("%s: want a redirect with a code, got HTTP %d Location %v", name, page.Status, page.Location)
	}
	return page.Location.Query().Get("code")
}

func TestSkipConsent(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	first := addFirstParty(t, ts)
	b := providertest.NewBrowser(ts.URL)

	// Sign in, then straight back with a code that works, with every
	// scope asked for: no consent page, and none remembered either.
	u, verifier := codeURL(first)
	code := codeOf(t, "first sign-in", login(t, b, get(t, b, u)))
	tok, err := first.oauth2.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := first.verifier.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	var claims struct {
		Email string `json:"email"`
		Name  string `json:"name"`
	}
	if err := idt.Claims(&claims); err != nil || claims.Email != "alice@example.org" || claims.Name != "Alice Liddell" {
		t.Errorf("ID token claims %+v (%v): want the profile and email scopes granted", claims, err)
	}
	if _, err := ts.Store.GetConsent(ctx, ts.alice.ID, "first"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a consent was stored for a client that skips it: %v", err)
	}

	// Signed in: prompt=none answers with a code, not consent_required.
	if e := promptNone(t, b, first); e != "" {
		t.Errorf("prompt=none: %s, want a code", e)
	}

	// prompt=consent asks all the same (OIDC Core §3.1.2.1): the person's
	// answer counts, a refusal included.
	u, _ = codeURL(first, oauth2.SetAuthURLParam("prompt", "consent"))
	page := decide(t, b, get(t, b, u), "deny")
	if page.Location == nil || page.Location.Query().Get("error") != "access_denied" {
		t.Errorf("prompt=consent, denied: HTTP %d Location %v, want access_denied", page.Status, page.Location)
	}
	u, _ = codeURL(first, oauth2.SetAuthURLParam("prompt", "consent"))
	codeOf(t, "prompt=consent, allowed", decide(t, b, get(t, b, u), "allow"))
	// Without prompt=consent, the next request is answered at once again.
	u, _ = codeURL(first)
	codeOf(t, "after prompt=consent", get(t, b, u))

	// Another client of the same session still asks.
	web := newRP(t, ts, "web", "web-secret", webRedirect, "openid")
	u, _ = codeURL(web)
	if page := get(t, b, u); !isConsentPage(page) {
		t.Errorf("a client without skip_consent: HTTP %d Location %v, want the consent page", page.Status, page.Location)
	}
}

// A registered client never skips consent: the setting is not registration
// metadata (the request's skip_consent is ignored and not echoed), and a
// registered record that carries it anyway is not honoured. This holds for
// a client registered with the initial access token too.
func TestSkipConsentNeverThroughRegistration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, iat := range map[string]string{"open": "", "initial access token": testIAT} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, withRegistration(iat))
			c := ts.register(t, webMetadata(map[string]any{"skip_consent": true}), iat)
			if _, ok := c.Body["skip_consent"]; ok {
				t.Errorf("the registration response carries skip_consent: %v", c.Body)
			}
			rec, err := ts.Store.GetClient(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if rec.SkipConsent {
				t.Fatal("registration stored skip_consent")
			}
			r := newRP(t, ts, c.ID, c.Secret, webRedirect, "openid")
			b := providertest.NewBrowser(ts.URL)
			u, _ := codeURL(r)
			if page := login(t, b, get(t, b, u)); !isConsentPage(page) {
				t.Errorf("registered with skip_consent: HTTP %d Location %v, want the consent page", page.Status, page.Location)
			}

			// RFC 7592 update: ignored the same way.
			status, _, body := sendJSON(t, http.MethodPut, c.URI, webMetadata(map[string]any{"client_id": c.ID, "skip_consent": true}), c.Token)
			if status != http.StatusOK {
				t.Fatalf("PUT: HTTP %d %v", status, body)
			}
			if _, ok := body["skip_consent"]; ok {
				t.Errorf("the update response carries skip_consent: %v", body)
			}
			if rec, err := ts.Store.GetClient(ctx, c.ID); err != nil || rec.SkipConsent {
				t.Fatalf("after PUT: skip_consent %v (%v)", rec.SkipConsent, err)
			}

			// Even a record that says so (written behind the provider's
			// back) does not spare a registered client the page.
			err = ts.Store.UpdateClient(ctx, c.ID, func(cl storage.Client) (storage.Client, error) {
				cl.SkipConsent = true
				return cl, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			u, _ = codeURL(r)
			if page := get(t, b, u); !isConsentPage(page) {
				t.Errorf("registered record with skip_consent: HTTP %d Location %v, want the consent page", page.Status, page.Location)
			}
		})
	}
}
