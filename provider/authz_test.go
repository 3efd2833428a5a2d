package provider_test

// The OpenID Connect authorization request parameters beyond what the
// conformance modules send: prompt values and combinations, max_age=0,
// id_token_hint for another account or forged, the claims parameter,
// acr/amr, auth_time across refresh, and error descriptions.

import (
	"github.com/smallsso/provider/storage"

	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/oidcctest"
)

// refuse sends r through a fresh browser that may not sign in and checks
// the error redirect (state, iss, clean description) with code want,
// returned before any page was shown.
func (op *oidccOP) refuse(t *testing.T, r *oidcctest.Request, want string) url.Values {
	t.Helper()
	res := op.Authorize(t, op.Browser(), r, nil)
	if res.LoginPages+res.ConsentPages > 0 {
		t.Fatalf("a page was shown before the error %s", want)
	}
	op.CheckError(t, r, res, want)
	if res.Params.Get("iss") != op.Issuer {
		t.Fatalf("iss = %q, want the issuer", res.Params.Get("iss"))
	}
	return res.Params
}

func TestPromptValuesRefusedBeforeLogin(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	for _, prompt := range []string{"bogus", "none login", "none consent", "login \"quoted\" \\ ünïcode"} {
		t.Run(prompt, func(t *testing.T) {
			p := op.refuse(t, op.NewRequest(op.Basic, "openid").With("prompt", prompt), "invalid_request")
			if d := p.Get("error_description"); !strings.Contains(d, "prompt") {
				t.Errorf("error_description %q does not name the parameter", d)
			}
		})
	}
}

// prompt=consent asks again although consent was remembered;
// select_account is a normal request (one account per browser session).
func TestPromptConsentAndSelectAccount(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	b := op.Browser()
	op.Run(t, b, op.NewRequest(op.Basic, "openid"), op.User, nil)

	f := op.Run(t, b, op.NewRequest(op.Basic, "openid").With("prompt", "consent"), op.User, nil)
	if f.Result.ConsentPages != 1 || f.Result.LoginPages != 0 {
		t.Fatalf("prompt=consent: %d consent and %d login pages, want 1 and 0", f.Result.ConsentPages, f.Result.LoginPages)
	}
	f = op.Run(t, b, op.NewRequest(op.Basic, "openid").With("prompt", "select_account"), op.User, nil)
	if f.Result.ConsentPages+f.Result.LoginPages != 0 {
		t.Fatalf("prompt=select_account while signed in showed %d pages", f.Result.ConsentPages+f.Result.LoginPages)
	}
	// Not signed in: select_account is a login.
	res := op.Authorize(t, op.Browser(), op.NewRequest(op.Basic, "openid").With("prompt", "select_account"), nil)
	if res.LoginPages != 1 {
		t.Fatal("prompt=select_account without a session did not show the login page")
	}
	// Consent not yet given to another client: prompt=none says so.
	r := op.NewRequest(op.Post, "openid").With("prompt", "none")
	res = op.Authorize(t, b, r, nil)
	op.CheckError(t, r, res, "consent_required")
}

// max_age=0 is prompt=login (OIDC Core §3.1.2.1): one login page, then the
// code, not a login page again and again.
func TestMaxAgeZeroMeansLogin(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	b := op.Browser()
	f1 := op.Run(t, b, op.NewRequest(op.Basic, "openid"), op.User, nil)
	op.clock.Advance(2 * time.Second)
	f2 := op.Run(t, b, op.NewRequest(op.Basic, "openid").With("max_age", "0"), op.User, nil)
	if f2.Result.LoginPages != 1 {
		t.Fatalf("max_age=0: %d login pages, want 1", f2.Result.LoginPages)
	}
	if !f2.IDToken.AuthTime(t).After(f1.IDToken.AuthTime(t)) {
		t.Fatal("max_age=0: auth_time is not the new login's")
	}
	// max_age=0 with prompt=none cannot be answered without a login.
	r := op.NewRequest(op.Basic, "openid").With("max_age", "0", "prompt", "none")
	op.CheckError(t, r, op.Authorize(t, b, r, nil), "login_required")
}

// An id_token_hint naming another account than the signed-in one: with
// prompt=none login_required; otherwise the login page, pre-filled with
// the hinted account, and a login as someone else is refused.
func TestIDTokenHintForAnotherAccount(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	alice := &oidcctest.Login{Username: "alice", Password: alicePass}
	aliceToken := op.Run(t, op.Browser(), op.NewRequest(op.Basic, "openid"), alice, nil).IDToken

	b := op.Browser()
	op.Run(t, b, op.NewRequest(op.Basic, "openid"), op.User, nil) // buffy
	r := op.NewRequest(op.Basic, "openid").With("prompt", "none", "id_token_hint", aliceToken.Raw)
	op.CheckError(t, r, op.Authorize(t, b, r, nil), "login_required")

	r = op.NewRequest(op.Basic, "openid").With("id_token_hint", aliceToken.Raw)
	res := op.Authorize(t, b, r, nil)
	if res.LoginPages != 1 || res.Page.InputValue("username") != "alice" {
		t.Fatalf("want the login page for alice, got %d login pages, username %q", res.LoginPages, res.Page.InputValue("username"))
	}
	op.CheckError(t, r, op.Authorize(t, b, r, op.User), "login_required")

	r = op.NewRequest(op.Basic, "openid").With("id_token_hint", aliceToken.Raw)
	f := op.Run(t, b, r, alice, nil)
	if f.Subject() != aliceToken.Str("sub") {
		t.Fatalf("sub = %q, want alice's %q", f.Subject(), aliceToken.Str("sub"))
	}
}

// A hint we did not sign is refused before anyone signs in.
func TestIDTokenHintForged(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	tok := op.run(t, op.NewRequest(op.Basic, "openid")).IDToken.Raw
	parts := strings.Split(tok, ".")
	sig := []byte(parts[2])
	sig[10] ^= 1
	forged := parts[0] + "." + parts[1] + "." + string(sig)
	op.refuse(t, op.NewRequest(op.Basic, "openid").With("id_token_hint", forged), "invalid_request")
	op.refuse(t, op.NewRequest(op.Basic, "openid").With("id_token_hint", "not a jwt"), "invalid_request")
}

func claimsJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestClaimsParameter(t *testing.T) {
	t.Parallel()
	narrow := clientspec.Spec{ID: "narrow", Secret: "narrow-secret", ClientSettings: storage.ClientSettings{
		RedirectURIs: []string{suiteBase + "/callback"},
		GrantTypes:   []string{"authorization_code"},
		Scopes:       []string{"openid", "profile"},
	}}
	op := newOIDCCOP(t, withSuiteClients(narrow))

	t.Run("not JSON", func(t *testing.T) {
		for _, bad := range []string{"{", `["name"]`, `"name"`, `{"userinfo":["name"]}`, `{"userinfo":{"name":{"essential":"yes"}}}`} {
			op.refuse(t, op.NewRequest(op.Basic, "openid").With("claims", bad), "invalid_request")
		}
	})

	t.Run("targets", func(t *testing.T) {
		b := op.Browser()
		claims := claimsJSON(t, map[string]any{
			"id_token": map[string]any{"email": nil, "auth_time": map[string]any{"essential": true}},
			"userinfo": map[string]any{"name": map[string]any{"essential": true}, "phone_number": nil, "nickname": nil},
		})
		f := op.Run(t, b, op.NewRequest(op.Basic, "openid").With("claims", claims), op.User, nil)
		if f.IDToken.Str("email") != "buffy@example.org" {
			t.Errorf("id_token email = %v, want the requested claim", f.IDToken.Claims["email"])
		}
		for _, c := range []string{"name", "phone_number", "nickname"} {
			if _, ok := f.IDToken.Claims[c]; ok {
				t.Errorf("id_token has %s, which was asked for in userinfo only", c)
			}
		}
		if f.Userinfo["name"] != "Buffy Summers" || f.Userinfo["phone_number"] != "+1 555 0100" {
			t.Errorf("userinfo = %v, want name and phone_number", f.Userinfo)
		}
		for _, c := range []string{"email", "nickname", "given_name"} {
			if _, ok := f.Userinfo[c]; ok {
				t.Errorf("userinfo has %s, which was not asked for there (or is not held)", c)
			}
		}
		// What the claims asked for was consented to as its scopes: a
		// later request for those scopes is silent, others are not.
		op.Run(t, b, op.NewRequest(op.Basic, "openid profile email phone").With("prompt", "none"), nil, nil)
		r := op.NewRequest(op.Basic, "openid address").With("prompt", "none")
		op.CheckError(t, r, op.Authorize(t, b, r, nil), "consent_required")
	})

	t.Run("kept across refresh", func(t *testing.T) {
		r := op.NewRequest(op.Basic, "openid offline_access").With("claims", claimsJSON(t, map[string]any{"userinfo": map[string]any{"email": nil}}))
		f := op.run(t, r)
		tr := op.Refresh(t, op.Basic, f.Token.Str("refresh_token"), "")
		op.CheckTokenSuccess(t, tr)
		ui := op.CheckUserinfo(t, op.Userinfo(t, tr.Str("access_token"), "get"), f.Subject())
		if ui["email"] != "buffy@example.org" {
			t.Fatalf("userinfo after refresh = %v, want the requested email", ui)
		}
	})

	t.Run("only within the client's scopes", func(t *testing.T) {
		c := op.client(narrow)
		claims := claimsJSON(t, map[string]any{
			"userinfo": map[string]any{"email": nil, "name": nil},
			"id_token": map[string]any{"phone_number": nil},
		})
		f := op.run(t, op.NewRequest(c, "openid").With("claims", claims))
		if _, ok := f.Userinfo["email"]; ok {
			t.Error("userinfo released email to a client not registered for the email scope")
		}
		if _, ok := f.IDToken.Claims["phone_number"]; ok {
			t.Error("id_token released phone_number to a client not registered for the phone scope")
		}
		if f.Userinfo["name"] != "Buffy Summers" {
			t.Errorf("userinfo name = %v", f.Userinfo["name"])
		}
	})
}

func TestACRAndAMR(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	if got := op.Strings("acr_values_supported"); !slices.Equal(got, []string{"password", "mfa"}) {
		t.Fatalf("acr_values_supported = %v", got)
	}
	f := op.run(t, op.NewRequest(op.Basic, "openid"))
	if _, ok := f.IDToken.Claims["acr"]; ok {
		t.Error("acr without being asked for")
	}
	if amr, _ := f.IDToken.Claims["amr"].([]any); !slices.Equal(amr, []any{"pwd"}) {
		t.Errorf("amr = %v, want [pwd] (RFC 8176)", f.IDToken.Claims["amr"])
	}

	// Voluntary: an acr_values we do not have still gets our acr.
	f = op.run(t, op.NewRequest(op.Basic, "openid").With("acr_values", "urn:example:gold"))
	if f.IDToken.Str("acr") != "password" {
		t.Errorf("acr = %v with acr_values", f.IDToken.Claims["acr"])
	}
	essential := func(values ...string) string {
		return claimsJSON(t, map[string]any{"id_token": map[string]any{"acr": map[string]any{"essential": true, "values": values}}})
	}
	f = op.run(t, op.NewRequest(op.Basic, "openid").With("claims", essential("urn:example:gold", "password")))
	if f.IDToken.Str("acr") != "password" {
		t.Errorf("acr = %v with an essential acr claim", f.IDToken.Claims["acr"])
	}
	// Essential and impossible: OIDC Core §5.5.1.1, before any login.
	op.refuse(t, op.NewRequest(op.Basic, "openid").With("claims", essential("urn:example:gold")), "unmet_authentication_requirements")
}

// auth_time stays the login's across SSO and refresh.
func TestAuthTimeStableAcrossRefresh(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	f := op.run(t, op.NewRequest(op.Basic, "openid offline_access"))
	op.clock.Advance(3 * time.Second)
	tr := op.Refresh(t, op.Basic, f.Token.Str("refresh_token"), "")
	op.CheckTokenSuccess(t, tr)
	tok := op.CheckIDToken(t, op.Basic, tr.Str("id_token"), oidcctest.IDTokenCheck{})
	if !tok.AuthTime(t).Equal(f.IDToken.AuthTime(t)) {
		t.Fatalf("auth_time %v after refresh, was %v", tok.AuthTime(t), f.IDToken.AuthTime(t))
	}
}

// OpenID Connect requires redirect_uri; without it there is nowhere
// verified to send an error, so it is a page.
func TestMissingRedirectURIIsAPage(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	r := op.NewRequest(op.Basic, "openid").With("redirect_uri", "")
	op.CheckErrorPage(t, op.Authorize(t, op.Browser(), r, op.User))
}

// A code that lives less than the suite's 30 seconds, reused after it has
// expired and the garbage collector has run: still refused, and the first
// exchange's tokens are still revoked, because the redeemed code is kept
// for as long as the access tokens it issued.
func TestCodeReuseAfterExpiryAndGarbageCollection(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t, withSuiteConfig(func(c *provider.Config) { c.AuthCodeLifespan = 10 * time.Second }))
	f := op.run(t, op.NewRequest(op.Basic, "openid offline_access"))
	op.clock.Advance(30 * time.Second)
	if _, err := op.ts.Store.GarbageCollect(t.Context(), op.clock.Now()); err != nil {
		t.Fatal(err)
	}
	reuseCode(t, op, f)
	if ur := op.Userinfo(t, f.AccessToken, "get"); ur.Status != 401 {
		t.Fatalf("userinfo with the first access token: HTTP %d, want 401", ur.Status)
	}
	op.CheckTokenError(t, op.Refresh(t, op.Basic, f.Token.Str("refresh_token"), ""), "invalid_grant")
}
