package oidcctest

// The logout plans (checklist §4): RP-Initiated Logout, Back-Channel
// Logout and Front-Channel Logout, as AbstractOIDCCRpInitiatedLogout and
// its modules drive and check them.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/net/html"

	"github.com/smallsso/provider/provider/providertest"
)

// BackchannelLogoutEvent is the one member a logout token's events claim
// must have.
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// EndSessionRequest is CreateEndSessionEndpointRequest with
// CreateRandomEndSessionState: the latest ID token as id_token_hint, the
// registered post_logout_redirect_uri and a random state; no client_id.
// Modules delete or change parameters before sending it.
func EndSessionRequest(idToken *IDToken, postLogoutRedirectURI string) url.Values {
	return url.Values{
		"id_token_hint":            {idToken.Raw},
		"post_logout_redirect_uri": {postLogoutRedirectURI},
		"state":                    {RandomString(32)},
	}
}

// LogoutResult is where the browser ended after the end-session request.
type LogoutResult struct {
	// Redirect is where the provider sent the browser away from itself;
	// nil when it stayed at the provider.
	Redirect *url.URL
	// Page is the last provider page (nil after a redirect).
	Page *providertest.Page
	// Confirmations counts the confirmation forms answered on the way.
	Confirmations int
}

// EndSession sends the browser to end_session_endpoint with params and
// plays the person the suite's tester stands for: a provider page with one
// form that posts back to the end-session endpoint is a logout
// confirmation and is submitted (with its submit button) when confirm is
// true. It stops at a redirect away from the provider or at any other
// page.
func (op *OP) EndSession(t testing.TB, b *providertest.Browser, params url.Values, confirm bool) *LogoutResult {
	t.Helper()
	ctx := context.Background()
	endpoint := op.Endpoint(t, "end_session_endpoint")
	target := endpoint
	if len(params) > 0 {
		target += "?" + params.Encode()
	}
	page, err := b.Get(ctx, target)
	if err != nil {
		t.Fatalf("end-session request: %v", err)
	}
	res := &LogoutResult{}
	for step := 0; step < 4; step++ {
		if page.Location != nil {
			res.Redirect = page.Location
			return res
		}
		res.Page = page
		if !confirm || page.Status != http.StatusOK {
			return res
		}
		form, err := page.ParseForm()
		if err != nil {
			return res
		}
		action, err := page.URL.Parse(form.Action)
		if err != nil || !sameEndpoint(action, endpoint) || form.Method != http.MethodPost {
			return res
		}
		set := url.Values{}
		for name, values := range form.Buttons {
			set.Set(name, values[0])
		}
		res.Confirmations++
		if page, err = b.Submit(ctx, page, form, set); err != nil {
			t.Fatalf("submitting the logout confirmation: %v", err)
		}
	}
	t.Fatal("the browser went round the provider's logout pages without end")
	return nil
}

func sameEndpoint(u *url.URL, endpoint string) bool {
	e, err := url.Parse(endpoint)
	return err == nil && u.Scheme == e.Scheme && u.Host == e.Host && u.Path == e.Path
}

// CheckPostLogoutRedirect applies CheckPostLogoutState and
// CheckForUnexpectedParametersInPostLogoutRedirect to where the browser
// was sent: the registered post_logout_redirect_uri, with state exactly as
// sent (and none when none was sent), and no other parameter.
func CheckPostLogoutRedirect(t testing.TB, got *url.URL, postLogoutRedirectURI string, params url.Values) {
	t.Helper()
	if got == nil {
		t.Fatalf("the browser never reached the post_logout_redirect_uri %s", postLogoutRedirectURI)
	}
	want, err := url.Parse(postLogoutRedirectURI)
	if err != nil {
		t.Fatal(err)
	}
	if got.Scheme != want.Scheme || got.Host != want.Host || got.Path != want.Path {
		t.Fatalf("the browser was sent to %s, not the post_logout_redirect_uri %s", got.Redacted(), postLogoutRedirectURI)
	}
	q := got.Query()
	if params.Has("state") {
		if q.Get("state") != params.Get("state") {
			t.Fatalf("CheckPostLogoutState: state = %q, want %q", q.Get("state"), params.Get("state"))
		}
	} else if q.Has("state") {
		t.Fatalf("CheckPostLogoutState: state %q came back although none was sent", q.Get("state"))
	}
	registered := want.Query()
	for k := range q {
		if k != "state" && !registered.Has(k) {
			t.Errorf("CheckForUnexpectedParametersInPostLogoutRedirect: unexpected parameter %q", k)
		}
	}
}

// CheckNoPostLogoutRedirect is the handleHttp guard of the modules that
// must not be sent back ("OP has incorrectly called the registered
// post_logout_redirect_uri"): the browser stayed at the provider, on a
// page the tester screenshots (an error, a confirmation or the signed-out
// page). It returns that page.
func CheckNoPostLogoutRedirect(t testing.TB, res *LogoutResult, postLogoutRedirectURI string) *providertest.Page {
	t.Helper()
	if res.Redirect != nil {
		t.Fatalf("the provider redirected to %s; it must not use an unverified post_logout_redirect_uri (registered: %s)", res.Redirect.Redacted(), postLogoutRedirectURI)
	}
	if res.Page == nil {
		t.Fatal("no page")
	}
	return res.Page
}

// CheckLoggedOut is the second authorization of the successful logout
// modules: prompt=none must come back as an error that needs a user
// interface (CheckErrorFromAuthorizationEndpointIsOneThatRequiredAUserInterface),
// after the generic error-response checks.
func (op *OP) CheckLoggedOut(t testing.TB, b *providertest.Browser, c *Client, scope string) {
	t.Helper()
	r := op.NewRequest(c, scope).With("prompt", "none")
	op.CheckError(t, r, op.Authorize(t, b, r, nil), "login_required", "interaction_required", "account_selection_required", "consent_required")
}

// CheckLogoutRequest applies the back-channel module's checks to the
// request the client's backchannel_logout_uri received, for the ID token
// the client holds: ExtractLogoutTokenFromBackchannelLogoutRequest,
// CheckForUnexpectedParametersInBackchannelLogoutRequest,
// ValidateLogoutTokenSignature (by kid, as for ID tokens),
// ValidateLogoutTokenClaims, CheckIdTokenSubMatchesLogoutToken,
// CheckIdTokenSidMatchesLogoutToken, CheckLogoutTokenNoNonce and
// CheckLogoutTokenHasSubOrSid. It also holds the token to what the final
// Back-Channel Logout 1.0 requires and the suite does not check: typ
// logout+jwt and an exp. It returns the token's claims.
func (op *OP) CheckLogoutRequest(t testing.TB, c *Client, method, contentType string, form url.Values, idToken *IDToken) map[string]any {
	t.Helper()
	if method != http.MethodPost || !strings.HasPrefix(contentType, "application/x-www-form-urlencoded") {
		t.Fatalf("back-channel logout: %s with Content-Type %q, want a form POST", method, contentType)
	}
	raw := form.Get("logout_token")
	if raw == "" {
		t.Fatal("ExtractLogoutTokenFromBackchannelLogoutRequest: no logout_token")
	}
	for k := range form {
		if k != "logout_token" {
			t.Errorf("CheckForUnexpectedParametersInBackchannelLogoutRequest: unexpected parameter %q", k)
		}
	}
	jws, err := jose.ParseSigned(raw, signingAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		t.Fatalf("ValidateLogoutTokenSignature: not a JWS with one signature: %v", err)
	}
	h := jws.Signatures[0].Header
	if h.KeyID == "" {
		t.Fatal("ValidateLogoutTokenSignature: the logout token header has no kid")
	}
	payload := op.verifyWithKid(t, "logout_token", jws, h)
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "logout+jwt" {
		t.Errorf("logout token typ = %q, want logout+jwt (Back-Channel Logout 1.0 §2.4)", typ)
	}
	var cl map[string]any
	if err := json.Unmarshal(payload, &cl); err != nil {
		t.Fatalf("the logout token payload is not a JSON object: %v", err)
	}
	now := op.now()
	str := func(k string) string { s, _ := cl[k].(string); return s }
	num := func(k string) (float64, bool) { n, ok := cl[k].(float64); return n, ok }
	if str("iss") != op.Issuer {
		t.Fatalf("ValidateLogoutTokenClaims: iss = %v, want %q", cl["iss"], op.Issuer)
	}
	switch aud := cl["aud"].(type) {
	case string:
		if aud != c.ID {
			t.Fatalf("ValidateLogoutTokenClaims: aud = %q, want %q", aud, c.ID)
		}
	case []any:
		if !slices.Contains(aud, any(c.ID)) {
			t.Fatalf("ValidateLogoutTokenClaims: aud %v does not contain %q", aud, c.ID)
		}
	default:
		t.Fatalf("ValidateLogoutTokenClaims: aud = %v", cl["aud"])
	}
	iat, ok := num("iat")
	if !ok {
		t.Fatal("ValidateLogoutTokenClaims: no iat")
	}
	if iat > float64(now.Unix()+300) {
		t.Fatalf("ValidateLogoutTokenClaims: iat %v is in the future", iat)
	}
	if str("jti") == "" {
		t.Fatal("ValidateLogoutTokenClaims: no jti")
	}
	events, ok := cl["events"].(map[string]any)
	if !ok || len(events) != 1 {
		t.Fatalf("ValidateLogoutTokenClaims: events = %v, want an object with exactly one member", cl["events"])
	}
	if ev, ok := events[BackchannelLogoutEvent].(map[string]any); !ok || len(ev) != 0 {
		t.Fatalf("ValidateLogoutTokenClaims: events[%s] = %v, want {}", BackchannelLogoutEvent, events[BackchannelLogoutEvent])
	}
	if exp, ok := num("exp"); !ok || exp < float64(now.Unix()) || exp < iat {
		t.Errorf("logout token exp = %v, want a short lifetime after iat", cl["exp"])
	}
	if _, ok := cl["sub"]; ok && str("sub") != idToken.Str("sub") {
		t.Fatalf("CheckIdTokenSubMatchesLogoutToken: sub %v, ID token sub %q", cl["sub"], idToken.Str("sub"))
	}
	if _, ok := cl["sid"]; ok && (idToken.Str("sid") == "" || str("sid") != idToken.Str("sid")) {
		t.Fatalf("CheckIdTokenSidMatchesLogoutToken: sid %v, ID token sid %q", cl["sid"], idToken.Str("sid"))
	}
	if _, ok := cl["nonce"]; ok {
		t.Fatal("CheckLogoutTokenNoNonce: the logout token has a nonce")
	}
	if str("sub") == "" && str("sid") == "" {
		t.Fatal("CheckLogoutTokenHasSubOrSid: neither sub nor sid")
	}
	return cl
}

// FrontchannelPage is what a signed-out page asks the browser to load:
// the iframes, and the links a person (or the page's script) follows on.
type FrontchannelPage struct {
	Frames []*url.URL
	Links  []*url.URL
}

// ParseFrontchannelPage reads the provider's page the way a browser
// without JavaScript would: every iframe's src and every link's href,
// resolved against the page URL. A page with inline script fails: the
// provider's CSP allows none, so a browser would not run it.
func ParseFrontchannelPage(t testing.TB, page *providertest.Page) FrontchannelPage {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page.Body))
	if err != nil {
		t.Fatal(err)
	}
	var out FrontchannelPage
	resolve := func(ref string) *url.URL {
		u, err := page.URL.Parse(ref)
		if err != nil {
			t.Fatalf("unparsable URL %q on the logout page", ref)
		}
		return u
	}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "iframe":
				out.Frames = append(out.Frames, resolve(attrOf(n, "src")))
			case "a":
				if href := attrOf(n, "href"); href != "" {
					out.Links = append(out.Links, resolve(href))
				}
			case "script":
				if n.FirstChild != nil && strings.TrimSpace(n.FirstChild.Data) != "" {
					t.Error("the logout page has an inline script")
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return out
}

// Frame returns the iframe that loads the given frontchannel_logout_uri
// (scheme, host and path), failing the test if there is none.
func (p FrontchannelPage) Frame(t testing.TB, frontchannelLogoutURI string) *url.URL {
	t.Helper()
	for _, f := range p.Frames {
		if sameEndpoint(f, frontchannelLogoutURI) {
			return f
		}
	}
	t.Fatalf("no iframe loads the frontchannel_logout_uri %s (iframes: %v)", frontchannelLogoutURI, p.Frames)
	return nil
}

// Next returns the link to the post_logout_redirect_uri, nil if none.
func (p FrontchannelPage) Next(postLogoutRedirectURI string) *url.URL {
	for _, l := range p.Links {
		if sameEndpoint(l, postLogoutRedirectURI) {
			return l
		}
	}
	return nil
}

// CheckFrontchannelLogoutRequest applies the front-channel module's checks
// to the URL the browser loads for the client:
// CheckForUnexpectedParametersInFrontchannelLogoutRequest (only iss and
// sid, besides the registered URI's own query), ValidateFrontchannelLogoutIss
// and CheckIdTokenSidMatchesFrontChannelLogoutRequest.
func (op *OP) CheckFrontchannelLogoutRequest(t testing.TB, got *url.URL, frontchannelLogoutURI string, idToken *IDToken) {
	t.Helper()
	registered := url.Values{}
	if u, err := url.Parse(frontchannelLogoutURI); err == nil {
		registered = u.Query()
	}
	q := got.Query()
	for k := range q {
		if k != "iss" && k != "sid" && !registered.Has(k) {
			t.Errorf("CheckForUnexpectedParametersInFrontchannelLogoutRequest: unexpected parameter %q", k)
		}
	}
	if q.Get("iss") != op.Issuer {
		t.Fatalf("ValidateFrontchannelLogoutIss: iss = %q, want %q", q.Get("iss"), op.Issuer)
	}
	if idToken.Str("sid") == "" || q.Get("sid") != idToken.Str("sid") {
		t.Fatalf("CheckIdTokenSidMatchesFrontChannelLogoutRequest: sid = %q, ID token sid %q", q.Get("sid"), idToken.Str("sid"))
	}
}

// CheckLogoutDiscovery is the logout plans' discovery verification:
// CheckDiscEndpointAllEndpointsAreHttps, CheckDiscEndSessionEndpoint and,
// for the back- and front-channel plans,
// CheckDiscEndpointBackchannelLogoutSupported /
// ...SessionSupported and their front-channel twins.
func (op *OP) CheckLogoutDiscovery(t testing.TB, backchannel, frontchannel bool) {
	t.Helper()
	for k, v := range op.Discovery {
		if s, ok := v.(string); ok && strings.HasSuffix(k, "_endpoint") {
			if err := SecureURL(s); err != nil {
				t.Errorf("CheckDiscEndpointAllEndpointsAreHttps: %s: %v", k, err)
			}
		}
	}
	end, _ := op.Discovery["end_session_endpoint"].(string)
	if end == "" {
		t.Fatal("CheckDiscEndSessionEndpoint: no end_session_endpoint")
	}
	if err := SecureURL(end); err != nil {
		t.Errorf("CheckDiscEndSessionEndpoint: %v", err)
	}
	var flags []string
	if backchannel {
		flags = append(flags, "backchannel_logout_supported", "backchannel_logout_session_supported")
	}
	if frontchannel {
		flags = append(flags, "frontchannel_logout_supported", "frontchannel_logout_session_supported")
	}
	for _, k := range flags {
		if op.Discovery[k] != true {
			t.Errorf("CheckDiscEndpoint: %s = %v, want true", k, op.Discovery[k])
		}
	}
}

func attrOf(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// CheckFramesAllowed holds the page to what a browser enforces: its
// Content-Security-Policy must let each iframe load (frame-src, else
// child-src, else default-src), or the client is never told.
func CheckFramesAllowed(t testing.TB, page *providertest.Page, frames []*url.URL) {
	t.Helper()
	directives := map[string][]string{}
	for _, policy := range page.Header.Values("Content-Security-Policy") {
		for _, d := range strings.Split(policy, ";") {
			f := strings.Fields(d)
			if len(f) > 0 {
				if _, seen := directives[f[0]]; !seen {
					directives[f[0]] = f[1:]
				}
			}
		}
	}
	sources, ok := directives["frame-src"]
	if !ok {
		sources, ok = directives["child-src"]
	}
	if !ok {
		sources, ok = directives["default-src"]
	}
	if !ok {
		return // no policy restricts frames
	}
	for _, f := range frames {
		origin := f.Scheme + "://" + f.Host
		if !slices.Contains(sources, "*") && !slices.Contains(sources, origin) && !slices.Contains(sources, f.Scheme+":") {
			t.Errorf("the page's Content-Security-Policy blocks the iframe %s (sources %v)", origin, sources)
		}
	}
}
