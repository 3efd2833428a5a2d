package provider_test

// TestOIDCC_ tests for the modules of the Dynamic plan
// (oidcc-dynamic-certification-test-plan: client_registration=dynamic_client,
// client_auth_type=private_key_jwt) that are about registration and
// redirect URIs; checklist §2.6, §3.6 and §3.8.

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/oidcctest"
)

// suiteHost stands for the suite's own host, where it keeps its logo and
// policy pages.
const suiteHost = "https://suite.example.test"

// newDynamicOP is the fixture with open registration, as the Dynamic plan
// is run against it: the operator lists the suite's host for redirects,
// and the host where the suite publishes client keys (a loopback server
// here) as one the provider may call.
func newDynamicOP(t *testing.T) *oidccOP {
	t.Helper()
	op := newOIDCCOP(t, withSuiteConfig(withRegistration("")), withSuiteConfig(func(c *provider.Config) {
		c.Registration.AllowedRedirectHosts = []string{"suite.example.test"}
		c.Outbound.AllowedHosts = []string{"127.0.0.1"}
	}))
	if err := oidcctest.SecureURL(op.Endpoint(t, "registration_endpoint")); err != nil {
		t.Fatalf("registration_endpoint %v", err)
	}
	if !slices.Contains(op.Strings("token_endpoint_auth_methods_supported"), "private_key_jwt") {
		t.Fatal("EnsureServerConfigurationSupportsPrivateKeyJwt: private_key_jwt not in token_endpoint_auth_methods_supported")
	}
	return op
}

// registerDynamic registers a private_key_jwt client for response type
// code the way the Dynamic plan does, with customize adding the module's
// members, and unregisters it when the test ends (the suite's cleanup).
func (op *oidccOP) registerDynamic(t *testing.T, customize func(md map[string]any)) *oidcctest.Registration {
	t.Helper()
	key := oidcctest.NewClientKey(t)
	md := oidcctest.DynamicRegistrationRequest("smallsso "+t.Name(), "code", "private_key_jwt", suiteBase+"/callback", key)
	if customize != nil {
		customize(md)
	}
	reg := op.Register(t, md, "", key)
	t.Cleanup(func() { op.Unregister(t, reg) })
	return reg
}

// oidcc-server with a dynamically registered private_key_jwt client: the
// registration, the happy code flow, and the cleanup DELETE (204).
func TestOIDCC_DynamicServer(t *testing.T) {
	t.Parallel()
	op := newDynamicOP(t)
	key := oidcctest.NewClientKey(t)
	md := oidcctest.DynamicRegistrationRequest("smallsso oidcc-server", "code", "private_key_jwt", suiteBase+"/callback", key)
	reg := op.Register(t, md, "", key)
	if reg.Client.Secret != "" {
		t.Fatal("a private_key_jwt client was issued a client_secret")
	}
	f := op.Run(t, op.Browser(), op.NewRequest(reg.Client, "openid"), op.User, nil)
	if f.IDToken.Str("sub") != op.UserID {
		t.Fatalf("sub = %q, want %q", f.IDToken.Str("sub"), op.UserID)
	}
	op.Unregister(t, reg)
	// The registration is gone: its client can no longer get tokens.
	tr := op.TokenRequest(t, reg.Client, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}})
	op.CheckTokenError(t, tr, "invalid_client")
}

// checkLoginPage starts an authorization for the registered client, checks
// the login page with check (the module's REVIEW screenshot), then lets the
// flow finish as the suite's module does.
func checkLoginPage(t *testing.T, op *oidccOP, reg *oidcctest.Registration, check func(page string)) {
	t.Helper()
	b := op.Browser()
	req := op.NewRequest(reg.Client, "openid")
	res := op.Authorize(t, b, req, nil)
	if res.LoginPages != 1 || res.Page == nil {
		t.Fatalf("want the login page, got %+v", res)
	}
	check(res.Page.Body)
	op.Run(t, op.Browser(), op.NewRequest(reg.Client, "openid"), op.User, nil)
}

// oidcc-registration-logo-uri: the login page shows the registered logo.
func TestOIDCC_RegistrationLogoURI(t *testing.T) {
	t.Parallel()
	op := newDynamicOP(t)
	logo := suiteHost + "/images/openid.png"
	reg := op.registerDynamic(t, func(md map[string]any) { md["logo_uri"] = logo })
	if reg.Body["logo_uri"] != logo {
		t.Fatalf("logo_uri = %v, want it registered", reg.Body["logo_uri"])
	}
	checkLoginPage(t, op, reg, func(page string) {
		if !hasImage(page, logo) {
			t.Fatalf("ExpectLoginPageWithLogo: the login page has no <img> of %s", logo)
		}
	})
}

// oidcc-registration-policy-uri: the login page links to the policy.
func TestOIDCC_RegistrationPolicyURI(t *testing.T) {
	t.Parallel()
	op := newDynamicOP(t)
	policy := suiteHost + "/test/a/smallsso/policy"
	reg := op.registerDynamic(t, func(md map[string]any) { md["policy_uri"] = policy })
	checkLoginPage(t, op, reg, func(page string) {
		if !strings.Contains(page, `href="`+policy+`"`) || !strings.Contains(oidcctest.PageText(page), "Privacy policy") {
			t.Fatalf("ExpectLoginPageWithPolicyUri: the login page does not link to %s", policy)
		}
	})
}

// oidcc-registration-tos-uri: the login page links to the terms.
func TestOIDCC_RegistrationTosURI(t *testing.T) {
	t.Parallel()
	op := newDynamicOP(t)
	tos := suiteHost + "/test/a/smallsso/tos"
	reg := op.registerDynamic(t, func(md map[string]any) { md["tos_uri"] = tos })
	checkLoginPage(t, op, reg, func(page string) {
		if !strings.Contains(page, `href="`+tos+`"`) || !strings.Contains(oidcctest.PageText(page), "Terms of service") {
			t.Fatalf("ExpectLoginPageWithTosUri: the login page does not link to %s", tos)
		}
	})
}

// oidcc-registration-jwks-uri: the client registers jwks_uri instead of
// jwks; the provider fetches the key (with its kid) to verify the
// private_key_jwt assertion.
func TestOIDCC_RegistrationJWKSURI(t *testing.T) {
	t.Parallel()
	op := newDynamicOP(t)
	key := oidcctest.NewClientKey(t)
	fetched := 0
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched++
		w.Header().Set("Content-Type", "application/json")
		w.Write(oidcctest.PublicJWKS(t, key))
	}))
	t.Cleanup(rp.Close)
	md := oidcctest.DynamicRegistrationRequest("smallsso jwks-uri", "code", "private_key_jwt", suiteBase+"/callback", nil)
	md["jwks_uri"] = rp.URL + "/jwks"
	reg := op.Register(t, md, "", key)
	t.Cleanup(func() { op.Unregister(t, reg) })
	if reg.Body["jwks_uri"] != rp.URL+"/jwks" || reg.Body["jwks"] != nil {
		t.Fatalf("registered jwks_uri %v, jwks %v", reg.Body["jwks_uri"], reg.Body["jwks"])
	}
	op.Run(t, op.Browser(), op.NewRequest(reg.Client, "openid"), op.User, nil)
	if fetched == 0 {
		t.Fatal("the client's jwks_uri was never fetched")
	}
}

// oidcc-registration-sector-uri and -sector-bad run only when
// subject_types_supported lists pairwise; it does not (pairwise subjects
// are not offered), so the suite skips both. A client that asks anyway is
// refused as -sector-bad expects of a refusal: 400, JSON,
// invalid_client_metadata.
// The provider never fetches the sector document, so what it holds (the
// redirect URI for -sector-uri, not for -sector-bad) makes no difference.
func TestOIDCC_RegistrationSectorURI(t *testing.T) { testSectorDeclined(t) }

func TestOIDCC_RegistrationSectorBad(t *testing.T) { testSectorDeclined(t) }

func testSectorDeclined(t *testing.T) {
	op := newDynamicOP(t)
	if slices.Contains(op.Strings("subject_types_supported"), "pairwise") {
		t.Fatal("subject_types_supported lists pairwise; the sector modules would run and need sector_identifier_uri support")
	}
	key := oidcctest.NewClientKey(t)
	md := oidcctest.DynamicRegistrationRequest("smallsso sector", "code", "private_key_jwt", suiteBase+"/callback", key)
	md["subject_type"] = "pairwise"
	md["sector_identifier_uri"] = suiteBase + "/sector_identifier_uri"
	rr := op.PostRegistration(t, md, "")
	op.CheckRegistrationError(t, rr, http.StatusBadRequest, "invalid_client_metadata")

	// Without subject_type the sector URI is refused all the same: it has
	// no use without pairwise subjects.
	delete(md, "subject_type")
	rr = op.PostRegistration(t, md, "")
	op.CheckRegistrationError(t, rr, http.StatusBadRequest, "invalid_client_metadata")
}

// oidcc-redirect-uri-regfrag: a redirect URI with a fragment is refused at
// registration.
func TestOIDCC_RedirectURIRegfrag(t *testing.T) {
	t.Parallel()
	op := newDynamicOP(t)
	md := oidcctest.DynamicRegistrationRequest("smallsso regfrag", "code", "private_key_jwt", suiteBase+"/callback#fragment", oidcctest.NewClientKey(t))
	rr := op.PostRegistration(t, md, "")
	op.CheckRegistrationError(t, rr, http.StatusBadRequest, "invalid_request", "invalid_configuration_parameter", "invalid_redirect_uri")
}

// oidcc-redirect-uri-query-OK: a redirect URI registered with a query is
// matched exactly and its query comes back (CheckMatchingCallbackParameters).
func TestOIDCC_RedirectURIQueryOK(t *testing.T) {
	t.Parallel()
	op := newDynamicOP(t)
	redirect := suiteBase + "/callback?bar=foo"
	reg := op.registerDynamic(t, func(md map[string]any) { md["redirect_uris"] = []string{redirect} })
	if reg.Client.RedirectURI != redirect {
		t.Fatalf("client redirect URI %q", reg.Client.RedirectURI)
	}
	f := op.Run(t, op.Browser(), op.NewRequest(reg.Client, "openid"), op.User, nil)
	if f.Result.CallbackURL.Query().Get("bar") != "foo" {
		t.Fatalf("callback %s lost the registered query", f.Result.CallbackURL.Redacted())
	}
}

// oidcc-redirect-uri-query-mismatch: registered with ?bar=foo, requested
// with ?foo=bar: an error page, never a callback.
func TestOIDCC_RedirectURIQueryMismatch(t *testing.T) {
	t.Parallel()
	op := newDynamicOP(t)
	reg := op.registerDynamic(t, func(md map[string]any) { md["redirect_uris"] = []string{suiteBase + "/callback?bar=foo"} })
	req := op.NewRequest(reg.Client, "openid").With("redirect_uri", suiteBase+"/callback?foo=bar")
	op.CheckErrorPage(t, op.Authorize(t, op.Browser(), req, op.User))
}

// oidcc-redirect-uri-query-added: registered without a query, requested
// with ?foo=bar: an error page, never a callback.
func TestOIDCC_RedirectURIQueryAdded(t *testing.T) {
	t.Parallel()
	op := newDynamicOP(t)
	reg := op.registerDynamic(t, nil)
	req := op.NewRequest(reg.Client, "openid").With("redirect_uri", suiteBase+"/callback?foo=bar")
	op.CheckErrorPage(t, op.Authorize(t, op.Browser(), req, op.User))
}

// oidcc-ensure-redirect-uri-in-authorization-request: the client has one
// registered redirect URI and sends none. OpenID Connect requires it, so
// the request must not succeed: an error page, or invalid_request at the
// registered URI.
func TestOIDCC_EnsureRedirectURIInAuthorizationRequest(t *testing.T) {
	t.Parallel()
	op := newDynamicOP(t)
	reg := op.registerDynamic(t, nil)
	req := op.NewRequest(reg.Client, "openid").With("redirect_uri", "")
	res := op.Authorize(t, op.Browser(), req, op.User)
	if res.Params == nil {
		op.CheckErrorPage(t, res)
		return
	}
	op.CheckError(t, req, res, "invalid_request", "invalid_request_object")
	if res.LoginPages > 0 || res.ConsentPages > 0 {
		t.Fatal("the person was asked to sign in for a request that cannot succeed")
	}
}

// oidcc-ensure-client-assertion-with-iss-aud-succeeds: a private_key_jwt
// assertion whose aud is the issuer rather than the token endpoint is
// accepted (OIDC Core §9 allows either).
func TestOIDCC_EnsureClientAssertionWithIssAudSucceeds(t *testing.T) {
	t.Parallel()
	op := newDynamicOP(t)
	reg := op.registerDynamic(t, nil)
	req := op.NewRequest(reg.Client, "openid")
	res := op.Authorize(t, op.Browser(), req, op.User)
	resp := op.CheckSuccess(t, req, res)
	tr := op.ExchangeWithAssertionAudience(t, reg.Client, resp.Code, op.Issuer)
	op.CheckTokenSuccess(t, tr)
	op.CheckIDToken(t, reg.Client, tr.Str("id_token"), oidcctest.IDTokenCheck{Nonce: req.Nonce(), AccessToken: tr.Str("access_token"), Code: resp.Code})
	op.CheckUserinfo(t, op.Userinfo(t, tr.Str("access_token"), "get"), op.UserID)
}

// hasImage reports whether the page has an <img> of src.
func hasImage(page, src string) bool {
	return regexp.MustCompile(`<img[^>]*\ssrc="` + regexp.QuoteMeta(src) + `"`).MatchString(page)
}
