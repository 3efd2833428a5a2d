package provider_test

// One test per module of the OIDF Basic OP plan that exercises the
// authorization request (docs/conformance-checklist.md §1.1, §3.1-§3.6),
// response_type=code. Each follows what the module sends and checks, with
// the harness in provider/oidcctest; WARNING-level conditions are asserted
// too where we meet them, and logged where we deliberately do not.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider/oidcctest"
)

// heldProfileClaims are the profile claims our user records hold; the
// others of ScopeClaims["profile"] (middle_name, nickname, picture, ...)
// are not kept, so the suite's scope modules WARN about them.
var heldProfileClaims = []string{"name", "given_name", "family_name", "preferred_username", "updated_at"}

// run is the module's happy flow as the suite user buffy.
func (op *oidccOP) run(t *testing.T, r *oidcctest.Request) *oidcctest.Flow {
	t.Helper()
	return op.Run(t, op.Browser(), r, op.User, nil)
}

// checkScopeModule is AbstractOIDCCScopesServerTest for scope: the scopes
// are advertised, the flow succeeds, and userinfo has every scope claim
// the user holds (VerifyScopesReturnedInUserInfoClaims).
func checkScopeModule(t *testing.T, scope string) {
	op := newOIDCCOP(t)
	op.CheckScopesSupported(t, scope)
	f := op.run(t, op.NewRequest(op.Basic, scope))
	for _, c := range oidcctest.MissingScopeClaims(scope, f.Userinfo) {
		if !slices.Contains(oidcctest.ScopeClaims["profile"], c) || slices.Contains(heldProfileClaims, c) {
			t.Errorf("VerifyScopesReturnedInUserInfoClaims: userinfo lacks %q, which the user has", c)
			continue
		}
		t.Logf("WARNING VerifyScopesReturnedInUserInfoClaims: no %s (not kept in user records)", c)
	}
}

func TestOIDCC_Server(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	f := op.run(t, op.NewRequest(op.Basic, "openid"))
	if _, ok := f.IDToken.Claims["name"]; ok {
		t.Error("EnsureIdTokenDoesNotContainName: name in the id_token of an openid-only request")
	}
	// auth_time always, although no max_age was sent (checklist §3.4).
	f.IDToken.AuthTime(t)
}

func TestOIDCC_ServerClientSecretPost(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	if !slices.Contains(op.Strings("token_endpoint_auth_methods_supported"), "client_secret_post") {
		t.Fatal("EnsureServerConfigurationSupportsClientSecretPost: not in discovery")
	}
	op.run(t, op.NewRequest(op.Post, "openid"))
}

// No response_type: an error page, never a code.
func TestOIDCC_ResponseTypeMissing(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	b := op.Browser()
	// Signed in first, so nothing but the request itself can stop a code.
	op.Run(t, b, op.NewRequest(op.Basic, "openid"), op.User, nil)
	r := op.NewRequest(op.Basic, "openid").With("response_type", "")
	res := op.Authorize(t, b, r, op.User)
	op.CheckErrorPage(t, res)
	if !strings.Contains(oidcctest.PageText(res.Page.Body), "response_type") {
		t.Errorf("the error page does not say what is wrong: %s", oidcctest.PageText(res.Page.Body))
	}
}

func testUserinfoModule(t *testing.T, method string) {
	op := newOIDCCOP(t)
	f := op.run(t, op.NewRequest(op.Basic, "openid"))
	op.CheckUserinfo(t, op.Userinfo(t, f.AccessToken, method), f.Subject())
}

func TestOIDCC_UserinfoGet(t *testing.T)        { testUserinfoModule(t, "get") }
func TestOIDCC_UserinfoPostHeader(t *testing.T) { testUserinfoModule(t, "post-header") }
func TestOIDCC_UserinfoPostBody(t *testing.T)   { testUserinfoModule(t, "post-body") }

func TestOIDCC_EnsureRequestWithoutNonceSucceedsForCodeFlow(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	// Run checks the id_token has no nonce when none was sent.
	op.run(t, op.NewRequest(op.Basic, "openid").With("nonce", ""))
}

func TestOIDCC_ScopeProfile(t *testing.T) { checkScopeModule(t, "openid profile") }
func TestOIDCC_ScopeEmail(t *testing.T)   { checkScopeModule(t, "openid email") }
func TestOIDCC_ScopeAddress(t *testing.T) { checkScopeModule(t, "openid address") }
func TestOIDCC_ScopePhone(t *testing.T)   { checkScopeModule(t, "openid phone") }
func TestOIDCC_ScopeAll(t *testing.T)     { checkScopeModule(t, "openid profile email address phone") }

func TestOIDCC_EnsureOtherScopeOrderSucceeds(t *testing.T) { checkScopeModule(t, "email openid") }

func TestOIDCC_DisplayPage(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	op.run(t, op.NewRequest(op.Basic, "openid").With("display", "page"))
}

func TestOIDCC_DisplayPopup(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	op.run(t, op.NewRequest(op.Basic, "openid").With("display", "popup"))
}

// prompt=login: the second request shows the login page although the
// browser is signed in, and the second auth_time is the new login's.
func TestOIDCC_PromptLogin(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	b := op.Browser()
	f1 := op.Run(t, b, op.NewRequest(op.Basic, "openid"), op.User, nil)
	op.clock.Advance(2 * time.Second) // the person takes a moment
	f2 := op.Run(t, b, op.NewRequest(op.Basic, "openid").With("prompt", "login"), op.User, nil)
	if f2.Result.LoginPages != 1 {
		t.Fatalf("prompt=login: %d login pages, want 1", f2.Result.LoginPages)
	}
	a1, a2 := f1.IDToken.AuthTime(t), f2.IDToken.AuthTime(t)
	if !a2.After(a1) {
		t.Fatalf("CheckIdTokenAuthTimeClaimsDifferIfPresent: auth_time %v then %v", a1, a2)
	}
}

func TestOIDCC_PromptNoneNotLoggedIn(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	r := op.NewRequest(op.Basic, "openid").With("prompt", "none")
	res := op.Authorize(t, op.Browser(), r, nil)
	if res.LoginPages > 0 {
		t.Fatal("prompt=none showed the login page")
	}
	op.CheckError(t, r, res, oidcctest.PromptNoneErrors...)
	if res.Params.Get("iss") != op.Issuer {
		t.Errorf("iss = %q, want the issuer (RFC 9207)", res.Params.Get("iss"))
	}
}

// prompt=none after a normal sign-in: silent, same sub and auth_time (the
// consent given in the first flow is remembered).
func TestOIDCC_PromptNoneLoggedIn(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	b := op.Browser()
	f1 := op.Run(t, b, op.NewRequest(op.Basic, "openid"), op.User, nil)
	op.clock.Advance(2 * time.Second)
	f2 := op.Run(t, b, op.NewRequest(op.Basic, "openid").With("prompt", "none"), nil, nil)
	checkSameLogin(t, f1, f2)
}

// checkSameLogin is CheckIdTokenSubConsistentForSecondAuthorization and the
// equal auth_time of the same-auth-twice modules.
func checkSameLogin(t *testing.T, f1, f2 *oidcctest.Flow) {
	t.Helper()
	if f2.Result.LoginPages+f2.Result.ConsentPages > 0 {
		t.Fatalf("the second request showed %d login and %d consent pages, want none", f2.Result.LoginPages, f2.Result.ConsentPages)
	}
	if f1.Subject() != f2.Subject() {
		t.Fatalf("CheckIdTokenSubConsistentForSecondAuthorization: sub %q then %q", f1.Subject(), f2.Subject())
	}
	if a1, a2 := f1.IDToken.AuthTime(t), f2.IDToken.AuthTime(t); !a1.Equal(a2) {
		t.Fatalf("auth_time %v then %v, want the same login", a1, a2)
	}
}

// max_age=1 two seconds after a login: a new login, whose auth_time is
// later and recent.
func TestOIDCC_MaxAge1(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	b := op.Browser()
	f1 := op.Run(t, b, op.NewRequest(op.Basic, "openid"), op.User, nil)
	op.clock.Advance(2 * time.Second)
	f2 := op.Run(t, b, op.NewRequest(op.Basic, "openid").With("max_age", "1"), op.User, nil)
	if f2.Result.LoginPages != 1 {
		t.Fatalf("max_age=1: %d login pages, want 1", f2.Result.LoginPages)
	}
	a2 := f2.IDToken.AuthTime(t)
	if n, ok := f1.IDToken.Num("auth_time"); ok && !a2.After(time.Unix(int64(n), 0)) {
		t.Fatalf("CheckSecondIdTokenAuthTimeIsLaterIfPresent: auth_time %v then %v", time.Unix(int64(n), 0), a2)
	}
	now := op.clock.Now()
	if a2.Before(now.Add(-time.Second-5*time.Minute)) || a2.After(now.Add(5*time.Minute)) {
		t.Fatalf("CheckIdTokenAuthTimeIsRecentIfPresent: auth_time %v, now %v", a2, now)
	}
}

// max_age 15000 then 10000: no second login, auth_time in both and equal.
func TestOIDCC_MaxAge10000(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	b := op.Browser()
	f1 := op.Run(t, b, op.NewRequest(op.Basic, "openid").With("max_age", "15000"), op.User, nil)
	op.clock.Advance(2 * time.Second)
	f2 := op.Run(t, b, op.NewRequest(op.Basic, "openid").With("max_age", "10000"), op.User, nil)
	checkSameLogin(t, f1, f2)
}

func TestOIDCC_EnsureRequestWithUnknownParameterSucceeds(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	op.run(t, op.NewRequest(op.Basic, "openid").With("extra", "foobar"))
}

// The first ID token as id_token_hint with prompt=none: accepted silently.
func TestOIDCC_IDTokenHint(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	b := op.Browser()
	f1 := op.Run(t, b, op.NewRequest(op.Basic, "openid"), op.User, nil)
	op.clock.Advance(2 * time.Second)
	r := op.NewRequest(op.Basic, "openid").With("prompt", "none", "id_token_hint", f1.IDToken.Raw)
	checkSameLogin(t, f1, op.Run(t, b, r, nil, nil))
}

func TestOIDCC_LoginHint(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	u, _ := url.Parse(op.Issuer)
	hint := "buffy@" + u.Hostname()
	r := op.NewRequest(op.Basic, "openid").With("login_hint", hint)
	res := op.Authorize(t, op.Browser(), r, nil)
	if res.LoginPages != 1 || res.Page.InputValue("username") != hint {
		t.Fatalf("the login page does not offer the hinted username %q (got %q)", hint, res.Page.InputValue("username"))
	}
	op.run(t, r.With("state", oidcctest.RandomString(128)))
}

func TestOIDCC_UILocales(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	op.run(t, op.NewRequest(op.Basic, "openid").With("ui_locales", "se"))
}

func TestOIDCC_ClaimsLocales(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	op.run(t, op.NewRequest(op.Basic, "openid").With("claims_locales", "se"))
}

// acr_values with every advertised value: success, and the id_token's acr
// is one of them (a WARNING in the suite; we hold to it).
func TestOIDCC_EnsureRequestWithAcrValuesSucceeds(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	values := op.Strings("acr_values_supported")
	if len(values) == 0 {
		t.Fatal("acr_values_supported is not published")
	}
	f := op.run(t, op.NewRequest(op.Basic, "openid").With("acr_values", strings.Join(values, " ")))
	if acr := f.IDToken.Str("acr"); !slices.Contains(values, acr) {
		t.Fatalf("acr = %q, want one of %v", acr, values)
	}
}

// reuseCode redeems the flow's code a second time and checks the refusal.
func reuseCode(t *testing.T, op *oidccOP, f *oidcctest.Flow) {
	t.Helper()
	tr := op.TokenRequest(t, op.Basic, url.Values{
		"grant_type": {"authorization_code"}, "code": {f.Response.Code}, "redirect_uri": {op.Basic.RedirectURI},
	})
	op.CheckTokenError(t, tr, "invalid_grant")
}

func TestOIDCC_Codereuse(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	f := op.run(t, op.NewRequest(op.Basic, "openid"))
	reuseCode(t, op, f)
}

// The code again after 30 seconds, after the garbage collector has run:
// still invalid_grant, and the first exchange's access token is revoked.
func TestOIDCC_Codereuse30seconds(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	f := op.run(t, op.NewRequest(op.Basic, "openid"))
	op.clock.Advance(30 * time.Second)
	if _, err := op.ts.Store.GarbageCollect(t.Context(), op.clock.Now()); err != nil {
		t.Fatal(err)
	}
	reuseCode(t, op, f)
	if ur := op.Userinfo(t, f.AccessToken, "get"); ur.Status != http.StatusUnauthorized {
		t.Fatalf("userinfo with the first access token after the code's reuse: HTTP %d %s, want 401", ur.Status, ur.Body)
	}
}

// An unregistered redirect_uri gets an error page; the browser is never
// sent there (Authorize fails the test on any redirect elsewhere).
func TestOIDCC_EnsureRegisteredRedirectURI(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	bad := *op.Basic
	bad.RedirectURI = suiteBase + "/callback_invalid"
	r := op.NewRequest(&bad, "openid")
	op.CheckErrorPage(t, op.Authorize(t, op.Browser(), r, op.User))
}

func TestOIDCC_EnsurePostRequestSucceeds(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	r := op.NewRequest(op.Basic, "openid")
	r.Post = true
	op.run(t, r)
}

// name requested as an essential userinfo claim with scope openid only:
// userinfo has it (EnsureUserInfoContainsName), the id_token does not
// (EnsureIdTokenDoesNotContainName).
func TestOIDCC_ClaimsEssential(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	if op.Discovery["claims_parameter_supported"] != true {
		t.Fatal("claims_parameter_supported is not true")
	}
	claims, _ := json.Marshal(map[string]any{"userinfo": map[string]any{"name": map[string]any{"essential": true}}})
	f := op.run(t, op.NewRequest(op.Basic, "openid").With("claims", string(claims)))
	if f.Userinfo["name"] != "Buffy Summers" {
		t.Errorf("EnsureUserInfoContainsName: userinfo name = %v", f.Userinfo["name"])
	}
	if _, ok := f.IDToken.Claims["name"]; ok {
		t.Error("EnsureIdTokenDoesNotContainName: name was asked for in userinfo only")
	}
}

func TestOIDCC_EnsureRequestWithValidPKCESucceeds(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	verifier := oauth2.GenerateVerifier()
	r := op.NewRequest(op.Basic, "openid").With("code_challenge", oauth2.S256ChallengeFromVerifier(verifier), "code_challenge_method", "S256")
	op.Run(t, op.Browser(), r, op.User, url.Values{"code_verifier": {verifier}})
}
