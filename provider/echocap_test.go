package provider_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// maxDescription is the bound on every error_description (provider's
// maxErrorDescription).
const maxDescription = 256

// Long resource and audience values (RFC 8707, fosite's audience) neither
// end up in the error redirect's Location nor make error_description long:
// an over-long one is invalid_request like state or nonce, and one within
// the parameter limit is not quoted whole.
func TestResourceAndAudienceAreNotEchoed(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	huge := "https://api.example.org/" + strings.Repeat("r", 60<<10)
	within := "https://api.example.org/" + strings.Repeat("r", 1900)
	for _, tc := range []struct {
		name  string
		param string
		value string
	}{
		{"resource 60 KiB", "resource", huge},
		{"audience 60 KiB", "audience", huge},
		{"resource within the limit", "resource", within},
		{"audience within the limit", "audience", within},
		{"resource with a fragment", "resource", within + "#f"},
	} {
		q := url.Values{"client_id": {"web"}, "response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {webRedirect},
			"state": {"st"}, "nonce": {"n"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGmSyyGNmo"}, "code_challenge_method": {"S256"},
			tc.param: {tc.value}}
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/authorize", strings.NewReader(q.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		u, err := url.Parse(loc)
		if resp.StatusCode != http.StatusSeeOther || err != nil || !strings.HasPrefix(loc, webRedirect) || u.Query().Get("error") == "" {
			t.Errorf("%s: HTTP %d Location %.200q, want an error redirect to the client", tc.name, resp.StatusCode, loc)
			continue
		}
		if len(loc) > 1024 {
			t.Errorf("%s: Location of %d bytes: %.300q", tc.name, len(loc), loc)
		}
		// Our own resource hints quote no value; fosite's audience hint
		// does, cut to the bound.
		if d := u.Query().Get("error_description"); len(d) > maxDescription || (tc.param == "resource" && strings.Contains(d, strings.Repeat("r", 100))) {
			t.Errorf("%s: error_description of %d bytes: %.300q", tc.name, len(d), d)
		}
	}
}

// error_description is bounded on the JSON endpoints too, where fosite's
// own hints quote a request value (a scope here).
func TestErrorDescriptionIsBounded(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	scope := "api:" + strings.Repeat("x", 1900)
	status, _, body := postForm(t, ts.URL+"/token", url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}, "svc", "svc-secret")
	d, _ := body["error_description"].(string)
	if status != http.StatusBadRequest || body["error"] != "invalid_scope" || d == "" {
		t.Fatalf("token with an unknown long scope: HTTP %d %v", status, body)
	}
	if len(d) > maxDescription || !utf8.ValidString(d) {
		t.Errorf("token error_description of %d bytes: %.300q", len(d), d)
	}
	// PAR, with an audience the client is not registered for.
	status, _, body = postForm(t, ts.URL+"/par", url.Values{"client_id": {"web"}, "response_type": {"code"}, "scope": {"openid"},
		"redirect_uri": {webRedirect}, "state": {"st"}, "nonce": {"n"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGmSyyGNmo"},
		"code_challenge_method": {"S256"}, "audience": {"https://api.example.org/" + strings.Repeat("a", 1900)}}, "web", "web-secret")
	d, _ = body["error_description"].(string)
	if status/100 != 4 || d == "" || len(d) > maxDescription {
		t.Errorf("PAR with an unknown long audience: HTTP %d error_description of %d bytes: %.300q", status, len(d), d)
	}
}
