package provider_test

// Conformance modules of the implicit plan (oidcc-implicit-certification-
// test-plan), the hybrid plan (oidcc-hybrid-certification-test-plan), the
// form post plan (oidcc-formpost-basic-certification-test-plan) and the
// request-object modules; checklist §1.2, §1.5, §1.6, §3.7.
//
// Naming: a module that is also in the Basic plan (whose code-flow test is
// TestOIDCC_<Module>) runs here as TestOIDCC_Implicit_<Module> and
// TestOIDCC_Hybrid_<Module>, with a subtest per response type; modules of
// these plans only, and the request-object modules, are TestOIDCC_<Module>
// with a subtest per variant. The form post plan is one function,
// TestOIDCC_FormPostBasicPlan, with a subtest named after each module.

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/oidcctest"
)

// objectHost is the suite's own web server, where it publishes request
// objects for request_uri.
type objectHost struct {
	*httptest.Server
	mu      sync.Mutex
	body    string
	fetches atomic.Int32
}

func newObjectHost(t testing.TB) *objectHost {
	h := &objectHost{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.fetches.Add(1)
		h.mu.Lock()
		body := h.body
		h.mu.Unlock()
		w.Header().Set("Content-Type", "application/oauth-authz-req+jwt")
		w.Write([]byte(body))
	}))
	t.Cleanup(h.Close)
	return h
}

// uri is the registered request_uri.
func (h *objectHost) uri() string { return h.URL + "/request.jwt" }

// publish serves obj at the registered request_uri and returns it.
func (h *objectHost) publish(obj string) string {
	h.mu.Lock()
	h.body = obj
	h.mu.Unlock()
	return h.uri()
}

// flowsOP is the conformance fixture plus clients registered for every
// response type (the suite's static client of the implicit and hybrid
// plans), and one whose request objects must be signed RS256.
type flowsOP struct {
	*oidccOP
	// Flows is client_secret_basic, FlowsPost client_secret_post, Flows2
	// the second client of oidcc-refresh-token; Signed registered
	// request_object_signing_alg RS256 with its key in jwks.
	Flows, FlowsPost, Flows2, Signed *oidcctest.Client
	SignedKey                        *jose.JSONWebKey
	objects                          *objectHost
}

func newFlowsOP(t testing.TB) *flowsOP {
	t.Helper()
	host := newObjectHost(t)
	key := requestObjectKey()
	pub, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	spec := func(id, method string) clientspec.Spec {
		s := suiteClientSpec(id, id+"-secret", method)
		s.ResponseTypes = []string{"code", "id_token", "id_token token", "code id_token", "code token", "code id_token token"}
		s.GrantTypes = []string{"authorization_code", "implicit", "refresh_token"}
		s.RequestURIs = []string{host.uri()}
		return s
	}
	flows, post, flows2, signed := spec("oidcc-flows", "client_secret_basic"), spec("oidcc-flows-post", "client_secret_post"),
		spec("oidcc-flows2", "client_secret_basic"), spec("oidcc-signed", "client_secret_basic")
	signed.JWKS, signed.RequestObjectSigningAlg = clientspec.JWKSDoc(pub), "RS256"
	specs := []clientspec.Spec{flows, post, flows2, signed}
	hashed := make([]clientspec.Spec, len(specs))
	for i, s := range specs {
		hashed[i] = s
		hashed[i].Secret, hashed[i].SecretHash = "", testHash(s.Secret)
	}
	op := &flowsOP{oidccOP: newOIDCCOP(t, withSuiteClients(hashed...)), SignedKey: key, objects: host}
	op.Flows, op.FlowsPost, op.Flows2, op.Signed = suiteClient(flows, flows.Secret), suiteClient(post, post.Secret),
		suiteClient(flows2, flows2.Secret), suiteClient(signed, signed.Secret)
	op.Signed.Key = key
	return op
}

// requestObjectKey is the RS256 key of the client whose request objects
// are signed, generated once for all tests.
var requestObjectKey = sync.OnceValue(func() *jose.JSONWebKey {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return &jose.JSONWebKey{Key: priv, KeyID: "request-objects-1", Algorithm: "RS256", Use: "sig"}
})

// variant is one run of a module: its response type and response mode
// ("" is the default mode).
type variant struct{ responseType, responseMode string }

func (v variant) String() string {
	if v.responseMode != "" {
		return v.responseType + "/" + v.responseMode
	}
	return v.responseType
}

// req is the suite's default request for the variant.
func (op *flowsOP) req(c *oidcctest.Client, v variant, scope string) *oidcctest.Request {
	return op.NewRequest(c, scope).With("response_type", v.responseType, "response_mode", v.responseMode)
}

// postOf and secondOf are the client_secret_post client and the second
// client that go with c.
func (op *flowsOP) postOf(c *oidcctest.Client) *oidcctest.Client {
	if c == op.Basic {
		return op.Post
	}
	return op.FlowsPost
}

func (op *flowsOP) secondOf(c *oidcctest.Client) *oidcctest.Client {
	if c == op.Basic {
		return op.Client2
	}
	return op.Flows2
}

type module func(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant)

var (
	implicitTypes = []string{"id_token", "id_token token"}
	hybridTypes   = []string{"code id_token", "code token", "code id_token token"}
)

// runTypes runs m once per response type, each on a provider of its own:
// fosite checks auth_time against the real clock (5 s of tolerance), so
// the modules that move the provider's clock cannot share one.
func runTypes(t *testing.T, types []string, m module) {
	for _, rt := range types {
		t.Run(rt, func(t *testing.T) {
			op := newFlowsOP(t)
			m(t, op, op.Flows, variant{responseType: rt})
		})
	}
}

// --- modules ---------------------------------------------------------------

// oidcc-server
func mServer(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
	op.Run(t, op.Browser(), op.req(c, v, "openid"), op.User, nil)
}

// oidcc-server-client-secret-post
func mServerClientSecretPost(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
	op.Run(t, op.Browser(), op.req(op.postOf(c), v, "openid"), op.User, nil)
}

// oidcc-response-type-missing: an error page, or the error in the query
// (by form_post when asked), never a code.
func mResponseTypeMissing(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
	r := op.req(c, v, "openid").With("response_type", "")
	res := op.Authorize(t, op.Browser(), r, nil)
	if res.Params == nil {
		op.CheckErrorPage(t, res)
		return
	}
	op.CheckError(t, r, res, "invalid_request", "unsupported_response_type")
}

// oidcc-ensure-request-without-nonce-fails: refused before anyone signs in.
func mNonceFails(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
	r := op.req(c, v, "openid").With("nonce", "")
	res := op.Authorize(t, op.Browser(), r, nil)
	op.CheckError(t, r, res, "invalid_request")
	if res.LoginPages > 0 {
		t.Error("a login page came before the error")
	}
}

// oidcc-ensure-request-without-nonce-succeeds-for-code-flow: and no nonce
// claim appears (Run checks ValidateIdTokenNonce with an empty nonce).
func mNonceSucceedsForCode(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
	op.Run(t, op.Browser(), op.req(c, v, "openid").With("nonce", ""), op.User, nil)
}

// oidcc-scope-*: the scope's claims in userinfo, or in the ID token when
// there is no access token (response_type id_token).
func mScope(scope string, want ...string) module {
	return func(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
		if !slices.Contains(op.Strings("scopes_supported"), strings.Fields(scope)[len(strings.Fields(scope))-1]) {
			t.Fatalf("scopes_supported %v lacks a scope of %q (the module would be skipped)", op.Strings("scopes_supported"), scope)
		}
		f := op.Run(t, op.Browser(), op.req(c, v, scope), op.User, nil)
		claims, where := f.Userinfo, "userinfo"
		if claims == nil {
			claims, where = f.AuthIDToken.Claims, "the id_token"
		}
		for _, k := range want {
			if _, ok := claims[k]; !ok {
				t.Errorf("VerifyScopesReturnedInUserInfoClaims: %s has no %s for scope %q", where, k, scope)
			}
		}
	}
}

var (
	profileClaims = []string{"name", "given_name", "family_name", "preferred_username", "updated_at"}
	emailClaims   = []string{"email", "email_verified"}
	phoneClaims   = []string{"phone_number", "phone_number_verified"}
	allClaims     = slices.Concat(profileClaims, emailClaims, phoneClaims, []string{"address"})
)

// Modules that add parameters the provider must accept without error.
func mWith(kv ...string) module {
	return func(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
		op.Run(t, op.Browser(), op.req(c, v, "openid").With(kv...), op.User, nil)
	}
}

// oidcc-ensure-request-with-acr-values-succeeds
func mAcrValues(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
	acr := strings.Join(op.Strings("acr_values_supported"), " ")
	if acr == "" {
		acr = "1 2"
	}
	f := op.Run(t, op.Browser(), op.req(c, v, "openid").With("acr_values", acr), op.User, nil)
	if got := f.LatestIDToken().Str("acr"); got != "" && !slices.Contains(strings.Fields(acr), got) {
		t.Logf("warning (ValidateIdTokenACRClaimAgainstRequest): acr %q is none of %q", got, acr)
	}
}

// oidcc-login-hint
func mLoginHint(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
	u, _ := url.Parse(op.Issuer)
	mWith("login_hint", "buffy@"+u.Hostname())(t, op, c, v)
}

// authTime returns the auth_time of the flow's latest ID token.
func authTime(f *oidcctest.Flow) (float64, bool) { return f.LatestIDToken().Num("auth_time") }

// oidcc-prompt-login: a second login, and a later auth_time.
func mPromptLogin(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
	b := op.Browser()
	f1 := op.Run(t, b, op.req(c, v, "openid"), op.User, nil)
	op.clock.Advance(2 * time.Second)
	f2 := op.Run(t, b, op.req(c, v, "openid").With("prompt", "login"), op.User, nil)
	if f2.Result.LoginPages != 1 {
		t.Fatalf("prompt=login showed %d login pages, want 1", f2.Result.LoginPages)
	}
	a1, ok1 := authTime(f1)
	a2, ok2 := authTime(f2)
	if ok1 && ok2 && a1 == a2 {
		t.Fatalf("CheckIdTokenAuthTimeClaimsDifferIfPresent: auth_time %v both times", a1)
	}
}

// oidcc-prompt-none-not-logged-in
func mPromptNoneNotLoggedIn(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
	r := op.req(c, v, "openid").With("prompt", "none")
	res := op.Authorize(t, op.Browser(), r, nil)
	op.CheckError(t, r, res, "login_required", "interaction_required", "account_selection_required", "consent_required")
}

// sameAuth is CheckIdTokenSubConsistentForSecondAuthorization and the
// equal auth_time rule of the silent second flows.
func sameAuth(t *testing.T, f1, f2 *oidcctest.Flow, requireAuthTime bool) {
	t.Helper()
	if f1.Subject() != f2.Subject() {
		t.Fatalf("sub %q then %q", f1.Subject(), f2.Subject())
	}
	a1, ok1 := authTime(f1)
	a2, ok2 := authTime(f2)
	if requireAuthTime && (!ok1 || !ok2) {
		t.Fatalf("auth_time missing (first %v, second %v) though max_age was sent", ok1, ok2)
	}
	if ok1 && ok2 && a1 != a2 {
		t.Fatalf("auth_time %v then %v without a new login", a1, a2)
	}
}

// oidcc-prompt-none-logged-in
func mPromptNoneLoggedIn(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
	b := op.Browser()
	f1 := op.Run(t, b, op.req(c, v, "openid"), op.User, nil)
	f2 := op.Run(t, b, op.req(c, v, "openid").With("prompt", "none"), nil, nil)
	sameAuth(t, f1, f2, false)
}

// oidcc-id-token-hint
func mIDTokenHint(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
	b := op.Browser()
	f1 := op.Run(t, b, op.req(c, v, "openid"), op.User, nil)
	f2 := op.Run(t, b, op.req(c, v, "openid").With("prompt", "none", "id_token_hint", f1.LatestIDToken().Raw), nil, nil)
	sameAuth(t, f1, f2, false)
}

// oidcc-max-age-1: a new login after two seconds, with auth_time.
func mMaxAge1(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
	b := op.Browser()
	f1 := op.Run(t, b, op.req(c, v, "openid"), op.User, nil)
	op.clock.Advance(2 * time.Second)
	f2 := op.Run(t, b, op.req(c, v, "openid").With("max_age", "1"), op.User, nil)
	if f2.Result.LoginPages != 1 {
		t.Fatalf("max_age=1 showed %d login pages, want 1", f2.Result.LoginPages)
	}
	a2, ok := authTime(f2)
	if !ok {
		t.Fatal("CheckIdTokenAuthTimeClaimPresentDueToMaxAge: no auth_time")
	}
	if a1, ok := authTime(f1); ok && a2 <= a1 {
		t.Fatalf("CheckSecondIdTokenAuthTimeIsLaterIfPresent: auth_time %v then %v", a1, a2)
	}
	if d := op.clock.Now().Sub(time.Unix(int64(a2), 0)); d > 5*time.Minute+time.Second || d < -5*time.Minute {
		t.Fatalf("CheckIdTokenAuthTimeIsRecentIfPresent: auth_time is %v from now", d)
	}
}

// oidcc-max-age-10000: no new login, the same auth_time in both.
func mMaxAge10000(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
	b := op.Browser()
	f1 := op.Run(t, b, op.req(c, v, "openid").With("max_age", "15000"), op.User, nil)
	f2 := op.Run(t, b, op.req(c, v, "openid").With("max_age", "10000"), nil, nil)
	sameAuth(t, f1, f2, true)
}

// oidcc-ensure-registered-redirect-uri: an error page, no redirect.
func mRegisteredRedirectURI(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
	r := op.req(c, v, "openid").With("redirect_uri", suiteBase+"/callback_not_registered")
	op.CheckErrorPage(t, op.Authorize(t, op.Browser(), r, nil))
}

// oidcc-claims-essential: must succeed. The suite only warns when name is
// missing where it was asked for, or in an ID token when it was asked for
// in userinfo; we hold to both.
func mClaimsEssential(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
	target := "userinfo"
	if v.responseType == "id_token" {
		target = "id_token"
	}
	f := op.Run(t, op.Browser(), op.req(c, v, "openid").With("claims", `{"`+target+`":{"name":{"essential":true}}}`), op.User, nil)
	claims := f.Userinfo
	if target == "id_token" {
		claims = f.AuthIDToken.Claims
	}
	if _, ok := claims["name"]; !ok {
		t.Errorf("the essential name claim is not in the %s", target)
	}
	if target == "userinfo" {
		for _, tok := range []*oidcctest.IDToken{f.AuthIDToken, f.IDToken} {
			if tok == nil {
				continue
			}
			if _, ok := tok.Claims["name"]; ok {
				t.Error("EnsureIdTokenDoesNotContainName: name asked for in userinfo is in the id_token")
			}
		}
	}
}

// oidcc-userinfo-get, -post-header, -post-body.
func mUserinfo(method string) module {
	return func(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
		f := op.Run(t, op.Browser(), op.req(c, v, "openid"), op.User, nil)
		ur := op.Userinfo(t, f.AccessToken, method)
		if method == "post-body" && ur.Status/100 != 2 {
			t.Fatalf("userinfo with the token in the body: HTTP %d (the suite warns; we support it)", ur.Status)
		}
		ui := op.CheckUserinfo(t, ur, f.Subject())
		if f.AuthIDToken != nil && ui["sub"] != f.AuthIDToken.Str("sub") {
			t.Fatalf("userinfo sub %v, authorization endpoint id_token sub %q", ui["sub"], f.AuthIDToken.Str("sub"))
		}
	}
}

// oidcc-codereuse and oidcc-codereuse-30seconds: invalid_grant, and the
// tokens of the first exchange are revoked.
func mCodeReuse(wait time.Duration) module {
	return func(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
		r := op.req(c, v, "openid")
		f := op.Run(t, op.Browser(), r, op.User, nil)
		op.clock.Advance(wait)
		tr := op.TokenRequest(t, c, url.Values{"grant_type": {"authorization_code"}, "code": {f.Response.Code}, "redirect_uri": {c.RedirectURI}})
		op.CheckTokenError(t, tr, "invalid_grant")
		if ur := op.Userinfo(t, f.Token.Str("access_token"), "get"); ur.Status == http.StatusOK {
			t.Fatal("the access token of the first exchange still works after the code was reused")
		}
	}
}

// oidcc-ensure-request-with-valid-pkce-succeeds
func mValidPKCE(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
	verifier := oauth2.GenerateVerifier()
	r := op.req(c, v, "openid").With("code_challenge", oauth2.S256ChallengeFromVerifier(verifier), "code_challenge_method", "S256")
	op.Run(t, op.Browser(), r, op.User, url.Values{"code_verifier": {verifier}})
}

// oidcc-ensure-post-request-succeeds
func mPostRequest(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
	r := op.req(c, v, "openid")
	r.Post = true
	op.Run(t, op.Browser(), r, op.User, nil)
}

// oidcc-refresh-token: two clients, refresh with scope, the refreshed ID
// token keeps iss/sub/aud/auth_time with a new iat, userinfo with the new
// token, and one client cannot use the other's refresh token.
func mRefreshToken(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
	if !slices.Contains(op.Strings("scopes_supported"), "offline_access") {
		t.Fatal("scopes_supported lacks offline_access")
	}
	refresh := func(c *oidcctest.Client) string {
		f := op.Run(t, op.Browser(), op.req(c, v, "openid offline_access").With("prompt", "consent"), op.User, nil)
		rt := f.Token.Str("refresh_token")
		if rt == "" {
			t.Fatal("no refresh token (the module would be skipped)")
		}
		// The suite waits a second, so the refreshed ID token's iat
		// differs; here the provider's clock moves on a second.
		op.clock.Advance(time.Second)
		tr := op.Refresh(t, c, rt, "openid offline_access")
		op.CheckTokenSuccess(t, tr)
		if raw := tr.Str("id_token"); raw != "" {
			// OIDC Core §12.2: no nonce in a refreshed ID token.
			tok := op.CheckIDToken(t, c, raw, oidcctest.IDTokenCheck{AccessToken: tr.Str("access_token")})
			for _, k := range []string{"iss", "sub", "azp"} {
				if tok.Str(k) != f.IDToken.Str(k) {
					t.Fatalf("CompareIdTokenClaims: %s %q then %q", k, f.IDToken.Str(k), tok.Str(k))
				}
			}
			a1, _ := f.IDToken.Num("auth_time")
			a2, _ := tok.Num("auth_time")
			i1, _ := f.IDToken.Num("iat")
			i2, _ := tok.Num("iat")
			if a1 != a2 || i1 == i2 {
				t.Fatalf("CompareIdTokenClaims: auth_time %v→%v (want equal), iat %v→%v (want new)", a1, a2, i1, i2)
			}
		}
		op.CheckUserinfo(t, op.Userinfo(t, tr.Str("access_token"), "get"), f.Subject())
		if next := tr.Str("refresh_token"); next != "" {
			return next
		}
		return rt
	}
	refresh(c)
	other := refresh(op.secondOf(c))
	op.CheckTokenError(t, op.Refresh(t, c, other, ""), "invalid_grant")
}

// --- request objects (checklist §3.7) --------------------------------------

// mUnsignedRequestObject is oidcc-unsigned-request-object-supported-
// correctly-or-rejected-as-unsupported, processed fully: state and nonce
// travel only in the object.
func mUnsignedRequestObject(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
	if op.Discovery["request_parameter_supported"] != true {
		t.Error("request_parameter_supported is not true though request objects work")
	}
	if !slices.Contains(op.Strings("request_object_signing_alg_values_supported"), "none") {
		t.Fatal("request_object_signing_alg_values_supported lacks none: the module would be skipped")
	}
	r := op.req(c, v, "openid")
	outer := r.Outer("request", op.RequestObject(t, r, nil), nil)
	op.Finish(t, r, op.Authorize(t, op.Browser(), outer, op.User), nil)
}

// mRequestURIUnsigned is oidcc-request-uri-unsigned and its
// -supported-correctly-or-rejected-as-unsupported twin: the provider
// fetches the alg none object from the registered request_uri.
func mRequestURIUnsigned(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
	if got, ok := op.Discovery["request_uri_parameter_supported"]; ok && got != true {
		t.Fatalf("request_uri_parameter_supported = %v", got)
	}
	r := op.req(c, v, "openid")
	before := op.objects.fetches.Load()
	outer := r.Outer("request_uri", op.objects.publish(op.RequestObject(t, r, nil)), nil)
	op.Finish(t, r, op.Authorize(t, op.Browser(), outer, op.User), nil)
	if n := op.objects.fetches.Load() - before; n != 1 {
		t.Fatalf("the request_uri was fetched %d times, want once", n)
	}
}

// mRequestURISignedRS256 is oidcc-request-uri-signed-rs256: the client
// registered request_object_signing_alg RS256 and its key in jwks.
func mRequestURISignedRS256(t *testing.T, op *flowsOP, _ *oidcctest.Client, v variant) {
	if !slices.Contains(op.Strings("request_object_signing_alg_values_supported"), "RS256") {
		t.Fatal("request_object_signing_alg_values_supported lacks RS256")
	}
	r := op.req(op.Signed, v, "openid")
	outer := r.Outer("request_uri", op.objects.publish(op.RequestObject(t, r, op.SignedKey)), nil)
	op.Finish(t, r, op.Authorize(t, op.Browser(), outer, op.User), nil)
}

// mRequestObjectWithRedirectURI is oidcc-ensure-request-object-with-
// redirect-uri: the object has the registered redirect_uri, the URL an
// unregistered one. The object's wins and the flow completes.
func mRequestObjectWithRedirectURI(t *testing.T, op *flowsOP, c *oidcctest.Client, v variant) {
	r := op.req(c, v, "openid")
	outer := r.Outer("request", op.RequestObject(t, r, nil), url.Values{"redirect_uri": {suiteBase + "/callback_invalid"}})
	op.Finish(t, r, op.Authorize(t, op.Browser(), outer, op.User), nil)
}

// requestObjectVariants are the plans a request-object module runs in:
// the Basic plan (code), the form post plan, the implicit and the hybrid
// plan.
func runRequestObjectModule(t *testing.T, m module) {
	op := newFlowsOP(t)
	vs := []variant{{responseType: "code"}, {responseType: "code", responseMode: "form_post"}}
	for _, rt := range slices.Concat(implicitTypes, hybridTypes) {
		vs = append(vs, variant{responseType: rt})
	}
	for _, v := range vs {
		t.Run(v.String(), func(t *testing.T) { m(t, op, op.Flows, v) })
	}
}

func TestOIDCC_UnsignedRequestObjectSupportedCorrectlyOrRejectedAsUnsupported(t *testing.T) {
	t.Parallel()
	runRequestObjectModule(t, mUnsignedRequestObject)
}

func TestOIDCC_RequestURIUnsignedSupportedCorrectlyOrRejectedAsUnsupported(t *testing.T) {
	t.Parallel()
	runRequestObjectModule(t, mRequestURIUnsigned)
}

func TestOIDCC_EnsureRequestObjectWithRedirectURI(t *testing.T) {
	t.Parallel()
	runRequestObjectModule(t, mRequestObjectWithRedirectURI)
}

// The Dynamic plan's request_uri modules run for every response type.
func TestOIDCC_RequestURIUnsigned(t *testing.T) {
	t.Parallel()
	runTypes(t, slices.Concat([]string{"code"}, implicitTypes, hybridTypes), mRequestURIUnsigned)
}

func TestOIDCC_RequestURISignedRS256(t *testing.T) {
	t.Parallel()
	runTypes(t, slices.Concat([]string{"code"}, implicitTypes, hybridTypes), mRequestURISignedRS256)
}

// --- modules of the implicit and hybrid plans only ---------------------------

func TestOIDCC_EnsureRequestWithoutNonceFails(t *testing.T) {
	t.Parallel()
	runTypes(t, []string{"id_token", "id_token token", "code id_token", "code id_token token"}, mNonceFails)
}

// --- the implicit plan (§1.5) ----------------------------------------------

func TestOIDCC_Implicit_Server(t *testing.T) { runTypes(t, implicitTypes, mServer) }
func TestOIDCC_Implicit_ScopeProfile(t *testing.T) {
	t.Parallel()
	runTypes(t, implicitTypes, mScope("openid profile", profileClaims...))
}
func TestOIDCC_Implicit_ScopeEmail(t *testing.T) {
	t.Parallel()
	runTypes(t, implicitTypes, mScope("openid email", emailClaims...))
}
func TestOIDCC_Implicit_ScopeAddress(t *testing.T) {
	t.Parallel()
	runTypes(t, implicitTypes, mScope("openid address", "address"))
}
func TestOIDCC_Implicit_ScopePhone(t *testing.T) {
	t.Parallel()
	runTypes(t, implicitTypes, mScope("openid phone", phoneClaims...))
}
func TestOIDCC_Implicit_ScopeAll(t *testing.T) {
	t.Parallel()
	runTypes(t, implicitTypes, mScope("openid profile email address phone", allClaims...))
}
func TestOIDCC_Implicit_EnsureOtherScopeOrderSucceeds(t *testing.T) {
	t.Parallel()
	runTypes(t, implicitTypes, mScope("email openid", emailClaims...))
}
func TestOIDCC_Implicit_DisplayPage(t *testing.T) {
	t.Parallel()
	runTypes(t, implicitTypes, mWith("display", "page"))
}
func TestOIDCC_Implicit_DisplayPopup(t *testing.T) {
	t.Parallel()
	runTypes(t, implicitTypes, mWith("display", "popup"))
}
func TestOIDCC_Implicit_PromptLogin(t *testing.T) { runTypes(t, implicitTypes, mPromptLogin) }
func TestOIDCC_Implicit_PromptNoneNotLoggedIn(t *testing.T) {
	t.Parallel()
	runTypes(t, implicitTypes, mPromptNoneNotLoggedIn)
}
func TestOIDCC_Implicit_PromptNoneLoggedIn(t *testing.T) {
	t.Parallel()
	runTypes(t, implicitTypes, mPromptNoneLoggedIn)
}
func TestOIDCC_Implicit_MaxAge1(t *testing.T)     { runTypes(t, implicitTypes, mMaxAge1) }
func TestOIDCC_Implicit_MaxAge10000(t *testing.T) { runTypes(t, implicitTypes, mMaxAge10000) }
func TestOIDCC_Implicit_EnsureRequestWithUnknownParameterSucceeds(t *testing.T) {
	t.Parallel()
	runTypes(t, implicitTypes, mWith("extra", "foobar"))
}
func TestOIDCC_Implicit_IDTokenHint(t *testing.T) { runTypes(t, implicitTypes, mIDTokenHint) }
func TestOIDCC_Implicit_LoginHint(t *testing.T)   { runTypes(t, implicitTypes, mLoginHint) }
func TestOIDCC_Implicit_UILocales(t *testing.T) {
	t.Parallel()
	runTypes(t, implicitTypes, mWith("ui_locales", "se"))
}
func TestOIDCC_Implicit_ClaimsLocales(t *testing.T) {
	t.Parallel()
	runTypes(t, implicitTypes, mWith("claims_locales", "se"))
}
func TestOIDCC_Implicit_EnsureRequestWithAcrValuesSucceeds(t *testing.T) {
	t.Parallel()
	runTypes(t, implicitTypes, mAcrValues)
}
func TestOIDCC_Implicit_EnsureRegisteredRedirectURI(t *testing.T) {
	t.Parallel()
	runTypes(t, implicitTypes, mRegisteredRedirectURI)
}
func TestOIDCC_Implicit_ClaimsEssential(t *testing.T) { runTypes(t, implicitTypes, mClaimsEssential) }

// Only in the id_token token run.
func TestOIDCC_Implicit_UserinfoGet(t *testing.T) {
	t.Parallel()
	runTypes(t, []string{"id_token token"}, mUserinfo("get"))
}
func TestOIDCC_Implicit_UserinfoPostHeader(t *testing.T) {
	t.Parallel()
	runTypes(t, []string{"id_token token"}, mUserinfo("post-header"))
}
func TestOIDCC_Implicit_UserinfoPostBody(t *testing.T) {
	t.Parallel()
	runTypes(t, []string{"id_token token"}, mUserinfo("post-body"))
}
func TestOIDCC_Implicit_ResponseTypeMissing(t *testing.T) {
	t.Parallel()
	runTypes(t, []string{"id_token token"}, mResponseTypeMissing)
}

// --- the hybrid plan (§1.6) ------------------------------------------------

func TestOIDCC_Hybrid_Server(t *testing.T) { runTypes(t, hybridTypes, mServer) }

// Only in the first (code id_token) run.
func TestOIDCC_Hybrid_ResponseTypeMissing(t *testing.T) {
	t.Parallel()
	runTypes(t, []string{"code id_token"}, mResponseTypeMissing)
}
func TestOIDCC_Hybrid_UserinfoGet(t *testing.T) { runTypes(t, hybridTypes, mUserinfo("get")) }
func TestOIDCC_Hybrid_UserinfoPostHeader(t *testing.T) {
	t.Parallel()
	runTypes(t, hybridTypes, mUserinfo("post-header"))
}
func TestOIDCC_Hybrid_UserinfoPostBody(t *testing.T) {
	t.Parallel()
	runTypes(t, hybridTypes, mUserinfo("post-body"))
}

// code token only; the other two runs have oidcc-ensure-request-without-
// nonce-fails.
func TestOIDCC_Hybrid_EnsureRequestWithoutNonceSucceedsForCodeFlow(t *testing.T) {
	t.Parallel()
	runTypes(t, []string{"code token"}, mNonceSucceedsForCode)
}
func TestOIDCC_Hybrid_ScopeProfile(t *testing.T) {
	t.Parallel()
	runTypes(t, hybridTypes, mScope("openid profile", profileClaims...))
}
func TestOIDCC_Hybrid_ScopeEmail(t *testing.T) {
	t.Parallel()
	runTypes(t, hybridTypes, mScope("openid email", emailClaims...))
}
func TestOIDCC_Hybrid_ScopeAddress(t *testing.T) {
	t.Parallel()
	runTypes(t, hybridTypes, mScope("openid address", "address"))
}
func TestOIDCC_Hybrid_ScopePhone(t *testing.T) {
	t.Parallel()
	runTypes(t, hybridTypes, mScope("openid phone", phoneClaims...))
}
func TestOIDCC_Hybrid_ScopeAll(t *testing.T) {
	t.Parallel()
	runTypes(t, hybridTypes, mScope("openid profile email address phone", allClaims...))
}

// code id_token run only.
func TestOIDCC_Hybrid_EnsureOtherScopeOrderSucceeds(t *testing.T) {
	t.Parallel()
	runTypes(t, []string{"code id_token"}, mScope("email openid", emailClaims...))
}
func TestOIDCC_Hybrid_DisplayPage(t *testing.T)  { runTypes(t, hybridTypes, mWith("display", "page")) }
func TestOIDCC_Hybrid_DisplayPopup(t *testing.T) { runTypes(t, hybridTypes, mWith("display", "popup")) }
func TestOIDCC_Hybrid_PromptLogin(t *testing.T)  { runTypes(t, hybridTypes, mPromptLogin) }
func TestOIDCC_Hybrid_PromptNoneNotLoggedIn(t *testing.T) {
	t.Parallel()
	runTypes(t, hybridTypes, mPromptNoneNotLoggedIn)
}
func TestOIDCC_Hybrid_PromptNoneLoggedIn(t *testing.T) { runTypes(t, hybridTypes, mPromptNoneLoggedIn) }
func TestOIDCC_Hybrid_MaxAge1(t *testing.T)            { runTypes(t, hybridTypes, mMaxAge1) }
func TestOIDCC_Hybrid_MaxAge10000(t *testing.T)        { runTypes(t, hybridTypes, mMaxAge10000) }
func TestOIDCC_Hybrid_EnsureRequestWithUnknownParameterSucceeds(t *testing.T) {
	t.Parallel()
	runTypes(t, hybridTypes, mWith("extra", "foobar"))
}
func TestOIDCC_Hybrid_IDTokenHint(t *testing.T) { runTypes(t, hybridTypes, mIDTokenHint) }
func TestOIDCC_Hybrid_LoginHint(t *testing.T)   { runTypes(t, hybridTypes, mLoginHint) }
func TestOIDCC_Hybrid_UILocales(t *testing.T)   { runTypes(t, hybridTypes, mWith("ui_locales", "se")) }
func TestOIDCC_Hybrid_ClaimsLocales(t *testing.T) {
	t.Parallel()
	runTypes(t, hybridTypes, mWith("claims_locales", "se"))
}
func TestOIDCC_Hybrid_EnsureRequestWithAcrValuesSucceeds(t *testing.T) {
	t.Parallel()
	runTypes(t, hybridTypes, mAcrValues)
}
func TestOIDCC_Hybrid_Codereuse(t *testing.T) { runTypes(t, hybridTypes, mCodeReuse(0)) }
func TestOIDCC_Hybrid_Codereuse30seconds(t *testing.T) {
	t.Parallel()
	runTypes(t, hybridTypes, mCodeReuse(30*time.Second))
}
func TestOIDCC_Hybrid_EnsureRegisteredRedirectURI(t *testing.T) {
	t.Parallel()
	runTypes(t, hybridTypes, mRegisteredRedirectURI)
}
func TestOIDCC_Hybrid_ServerClientSecretPost(t *testing.T) {
	t.Parallel()
	runTypes(t, hybridTypes, mServerClientSecretPost)
}
func TestOIDCC_Hybrid_ClaimsEssential(t *testing.T) { runTypes(t, hybridTypes, mClaimsEssential) }
func TestOIDCC_Hybrid_RefreshToken(t *testing.T)    { runTypes(t, hybridTypes, mRefreshToken) }

// code id_token run only.
func TestOIDCC_Hybrid_EnsureRequestWithValidPKCESucceeds(t *testing.T) {
	t.Parallel()
	runTypes(t, []string{"code id_token"}, mValidPKCE)
}

// --- the form post plan (§1.2) ---------------------------------------------

// TestOIDCC_FormPostBasicPlan is the Basic plan with response_mode=
// form_post on every request, one subtest per module, with the suite's
// static client (code only). oidcc-idtoken-signature and
// oidcc-idtoken-unsigned do not apply to static clients, and
// oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported
// needs a client with registered request_uris.
func TestOIDCC_FormPostBasicPlan(t *testing.T) {
	t.Parallel()
	v := variant{responseType: "code", responseMode: "form_post"}
	for _, m := range []struct {
		name string
		run  module
	}{
		{"oidcc-server", mServer},
		{"oidcc-response-type-missing", mResponseTypeMissing},
		{"oidcc-userinfo-get", mUserinfo("get")},
		{"oidcc-userinfo-post-header", mUserinfo("post-header")},
		{"oidcc-userinfo-post-body", mUserinfo("post-body")},
		{"oidcc-ensure-request-without-nonce-succeeds-for-code-flow", mNonceSucceedsForCode},
		{"oidcc-scope-profile", mScope("openid profile", profileClaims...)},
		{"oidcc-scope-email", mScope("openid email", emailClaims...)},
		{"oidcc-scope-address", mScope("openid address", "address")},
		{"oidcc-scope-phone", mScope("openid phone", phoneClaims...)},
		{"oidcc-scope-all", mScope("openid profile email address phone", allClaims...)},
		{"oidcc-ensure-other-scope-order-succeeds", mScope("email openid", emailClaims...)},
		{"oidcc-display-page", mWith("display", "page")},
		{"oidcc-display-popup", mWith("display", "popup")},
		{"oidcc-prompt-login", mPromptLogin},
		{"oidcc-prompt-none-not-logged-in", mPromptNoneNotLoggedIn},
		{"oidcc-prompt-none-logged-in", mPromptNoneLoggedIn},
		{"oidcc-max-age-1", mMaxAge1},
		{"oidcc-max-age-10000", mMaxAge10000},
		{"oidcc-ensure-request-with-unknown-parameter-succeeds", mWith("extra", "foobar")},
		{"oidcc-id-token-hint", mIDTokenHint},
		{"oidcc-login-hint", mLoginHint},
		{"oidcc-ui-locales", mWith("ui_locales", "se")},
		{"oidcc-claims-locales", mWith("claims_locales", "se")},
		{"oidcc-ensure-request-with-acr-values-succeeds", mAcrValues},
		{"oidcc-codereuse", mCodeReuse(0)},
		{"oidcc-codereuse-30seconds", mCodeReuse(30 * time.Second)},
		{"oidcc-ensure-registered-redirect-uri", mRegisteredRedirectURI},
		{"oidcc-ensure-post-request-succeeds", mPostRequest},
		{"oidcc-server-client-secret-post", mServerClientSecretPost},
		{"oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported", mUnsignedRequestObject},
		{"oidcc-claims-essential", mClaimsEssential},
		{"oidcc-ensure-request-object-with-redirect-uri", mRequestObjectWithRedirectURI},
		{"oidcc-refresh-token", mRefreshToken},
		{"oidcc-ensure-request-with-valid-pkce-succeeds", mValidPKCE},
	} {
		t.Run(m.name, func(t *testing.T) {
			op := newFlowsOP(t)
			m.run(t, op, op.Basic, v)
		})
	}
	// With a client that registered request_uris, as a dynamic client would.
	t.Run("oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported", func(t *testing.T) {
		op := newFlowsOP(t)
		mRequestURIUnsigned(t, op, op.Flows, v)
	})
}
