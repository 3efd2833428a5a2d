package oidcctest

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// Response is what a successful authorization response carried.
type Response struct {
	Code, IDToken, AccessToken string
	Params                     url.Values
}

// CheckSuccess applies the suite's callback checks to a response that must
// be a success (checklist §2.3): the response mode fits the request
// (RejectAuthCodeInUrlQuery, RejectErrorInUrlQuery for fragment and
// form_post), the registered redirect URI's query came back
// (CheckMatchingCallbackParameters), iss if present is the issuer
// (ValidateIssIfPresentInAuthorizationResponse), no error
// (CheckIfAuthorizationEndpointError), state echoed exactly
// (CheckStateInAuthorizationResponse), and what the response type promises
// is there.
func (op *OP) CheckSuccess(t testing.TB, r *Request, res *Result) Response {
	t.Helper()
	op.checkCallback(t, r, res)
	if e := res.Params.Get("error"); e != "" {
		t.Fatalf("CheckIfAuthorizationEndpointError: error=%s: %s", e, res.Params.Get("error_description"))
	}
	if got := res.Params.Get("state"); got != r.State() {
		t.Fatalf("CheckStateInAuthorizationResponse: state = %q, want %q", got, r.State())
	}
	out := Response{Code: res.Params.Get("code"), IDToken: res.Params.Get("id_token"), AccessToken: res.Params.Get("access_token"), Params: res.Params}
	for rt, v := range map[string]string{"code": out.Code, "id_token": out.IDToken, "token": out.AccessToken} {
		if r.Has(rt) && v == "" {
			t.Fatalf("response_type %q: the response has no %s", r.ResponseType(), rt)
		}
		if !r.Has(rt) && v != "" {
			t.Fatalf("response_type %q: the response has an unrequested %s", r.ResponseType(), rt)
		}
	}
	if r.Has("token") {
		if tt := res.Params.Get("token_type"); !strings.EqualFold(tt, "Bearer") {
			t.Fatalf("token_type = %q, want Bearer", tt)
		}
	}
	if out.Code != "" {
		// EnsureMinimumAuthorizationCodeLength, EnsureMinimumAuthorizationCodeEntropy
		CheckRandomValue(t, "authorization code", out.Code)
	}
	return out
}

// CheckError applies performGenericAuthorizationEndpointErrorResponseValidation
// (checklist §2.7) to a response that must be an error, with error one of
// allowed (any when none are given). It returns the error code.
func (op *OP) CheckError(t testing.TB, r *Request, res *Result, allowed ...string) string {
	t.Helper()
	op.checkCallback(t, r, res)
	e := res.Params.Get("error")
	if e == "" {
		t.Fatalf("expected an error response, got %v", keys(res.Params))
	}
	if len(allowed) > 0 && !slices.Contains(allowed, e) {
		t.Fatalf("error = %q (%s), want one of %v", e, res.Params.Get("error_description"), allowed)
	}
	if r.State() != "" && res.Params.Get("state") != r.State() {
		t.Fatalf("CheckStateInAuthorizationResponse: state = %q, want %q", res.Params.Get("state"), r.State())
	}
	for k := range res.Params {
		switch k {
		case "error", "error_description", "error_uri", "state", "session_state", "iss":
		default:
			t.Errorf("error response has unexpected parameter %q", k)
		}
	}
	CheckErrorDescription(t, res.Params.Get("error_description"))
	if u := res.Params.Get("error_uri"); u != "" {
		if _, err := url.ParseRequestURI(u); err != nil {
			t.Errorf("error_uri %q is not a URI", u)
		}
	}
	return e
}

// CheckErrorDescription: characters outside %x20-21 / %x23-5B / %x5D-7E
// fail the suite (RFC 6749 §5.2); tabs and line breaks only warn, and we
// hold ourselves to the stricter rule.
func CheckErrorDescription(t testing.TB, d string) {
	t.Helper()
	for _, c := range d {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			t.Errorf("error_description has a character outside RFC 6749's set: %q in %q", c, d)
			return
		}
	}
}

// CheckErrorPage asserts the browser stayed at the provider on an error
// page: the client's redirect URI was never called (the REVIEW outcome of
// modules such as oidcc-ensure-registered-redirect-uri).
func (op *OP) CheckErrorPage(t testing.TB, res *Result) {
	t.Helper()
	if res.Params != nil {
		t.Fatalf("the redirect URI was called (%s: %v); want an error page at the provider", res.Mode, keys(res.Params))
	}
	if res.Page == nil || res.Page.Status < 400 {
		status := 0
		if res.Page != nil {
			status = res.Page.Status
		}
		t.Fatalf("want an error page (HTTP 4xx), got HTTP %d", status)
	}
	if res.LoginPages > 0 || res.ConsentPages > 0 {
		t.Fatalf("the person was asked to sign in or consent before the error")
	}
}

// checkCallback holds for successes and errors alike.
func (op *OP) checkCallback(t testing.TB, r *Request, res *Result) {
	t.Helper()
	if res.Params == nil {
		status, body := 0, ""
		if res.Page != nil {
			status, body = res.Page.Status, res.Page.Body
			if len(body) > 300 {
				body = body[:300] + "…"
			}
		}
		t.Fatalf("the browser never reached the redirect URI: ended on HTTP %d (login pages %d, consent pages %d): %s", status, res.LoginPages, res.ConsentPages, body)
	}
	want := "query"
	switch {
	case r.Params.Get("response_mode") != "":
		want = r.Params.Get("response_mode")
	case r.ResponseType() != "code" && r.ResponseType() != "":
		want = "fragment"
	}
	if res.Mode != want {
		t.Fatalf("response mode = %s, want %s", res.Mode, want)
	}
	if res.Mode != "query" {
		q := res.CallbackURL.Query()
		if q.Has("code") || q.Has("error") || q.Has("id_token") || q.Has("access_token") {
			t.Fatalf("RejectAuthCodeInUrlQuery/RejectErrorInUrlQuery: %s response leaked into the query: %v", res.Mode, keys(q))
		}
	}
	if reg, err := url.Parse(r.Client.RedirectURI); err == nil {
		got := res.CallbackURL.Query()
		for k, v := range reg.Query() {
			if !slices.Equal(got[k], v) {
				t.Fatalf("CheckMatchingCallbackParameters: registered query %s=%v came back as %v", k, v, got[k])
			}
		}
	}
	if iss := res.Params.Get("iss"); res.Params.Has("iss") && iss != op.Issuer {
		t.Fatalf("ValidateIssIfPresentInAuthorizationResponse: iss = %q, want %q", iss, op.Issuer)
	}
}

// CheckRandomValue applies the suite's length and entropy rules for codes
// and tokens: at least 16 characters, printable ASCII, and more than 96
// bits by the suite's Shannon estimate (AbstractEnsureMinimumEntropy).
func CheckRandomValue(t testing.TB, what, v string) {
	t.Helper()
	if len(v) < 16 {
		t.Errorf("%s is %d characters; the suite wants at least 128 bits", what, len(v))
	}
	for _, c := range v {
		if c < 0x20 || c > 0x7e {
			t.Errorf("%s has a character outside %%x20-7E", what)
			break
		}
	}
	if bits := shannonBits(v); bits <= 96 {
		t.Errorf("%s has about %.0f bits of entropy by the suite's estimate, want > 96", what, bits)
	}
}

func keys(v url.Values) []string {
	out := make([]string, 0, len(v))
	for k := range v {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// PageText is the visible text of a provider page, for asserting what a
// person reads (tags stripped, whitespace collapsed).
func PageText(body string) string {
	var b strings.Builder
	inTag := false
	for _, c := range body {
		switch {
		case c == '<':
			inTag = true
			b.WriteByte(' ')
		case c == '>':
			inTag = false
		case !inTag:
			b.WriteRune(c)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}
