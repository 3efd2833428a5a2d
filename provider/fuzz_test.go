package provider_test

// Fuzz targets for the parsing of authorization and token requests (issue
// 11): the real handler, called in-process, must answer every input below
// 500, without a panic (the recoverer would make one a 500) and without
// logging at ERROR. Without -fuzz, `go test` runs the seeds below.
//
//	go test -run='^$' -fuzz='^FuzzAuthorizeRequest$' -fuzztime=30s ./provider/
//	go test -run='^$' -fuzz='^FuzzTokenRequest$' -fuzztime=30s ./provider/

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/smallsso/provider/provider"
)

// fuzzServer is a test server whose ERROR lines (only those) are kept.
func fuzzServer(f *testing.F) (http.Handler, string, *logBuffer) {
	errs := &logBuffer{}
	ts := newTestServerDeps(f, func(d *provider.Deps) {
		d.Logger = slog.New(slog.NewTextHandler(errs, &slog.HandlerOptions{Level: slog.LevelError}))
	}, withRegistration(""))
	return ts.srv.Config.Handler, ts.URL, errs
}

// serveFuzz sends one request to h and fails on a 5xx or an ERROR line.
func serveFuzz(t *testing.T, h http.Handler, errs *logBuffer, req *http.Request) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code >= 500 {
		t.Fatalf("%s %q: HTTP %d %.500s", req.Method, req.URL.RawQuery, rec.Code, rec.Body)
	}
	if s := errs.String(); s != "" {
		t.Fatalf("%s %q: logged at ERROR: %.1000s", req.Method, req.URL.RawQuery, s)
	}
}

func fuzzRequest(method, issuer, path, rawQuery, contentType, body string) *http.Request {
	req := httptest.NewRequest(method, issuer+path, strings.NewReader(body))
	req.URL.RawQuery = rawQuery
	req.RequestURI = path
	if rawQuery != "" {
		req.RequestURI += "?" + rawQuery
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

func FuzzAuthorizeRequest(f *testing.F) {
	h, issuer, errs := fuzzServer(f)
	pkce := "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGmSyyGNmo&code_challenge_method=S256"
	web := "client_id=web&redirect_uri=" + url.QueryEscape(webRedirect)
	spa := "client_id=spa&redirect_uri=" + url.QueryEscape(spaRedirect)
	for _, q := range []string{
		"",
		web + "&response_type=code&scope=openid&state=abcdefgh&nonce=n" + pkce,
		spa + "&response_type=code&scope=openid+profile&state=abcdefgh" + pkce + "&prompt=none",
		spa + "&response_type=code+id_token&scope=openid&state=s&nonce=n&response_mode=form_post" + pkce,
		spa + "&response_type=id_token+token&scope=openid&nonce=n&response_mode=fragment",
		web + "&response_type=code&scope=openid&state=s&max_age=0&prompt=login+consent&ui_locales=de&login_hint=alice" + pkce,
		web + "&response_type=code&scope=openid&request=eyJhbGciOiJub25lIn0.eyJzdGF0ZSI6InMiLCJtYXhfYWdlIjoiMSJ9." + pkce,
		web + "&response_type=code&scope=openid&request_uri=urn:ietf:params:oauth:request_uri:abc",
		web + "&response_type=code&scope=openid&claims=%7B%22id_token%22%3A%7B%22sub%22%3A%7B%22value%22%3A%22x%22%7D%7D%7D" + pkce,
		web + "&response_type=code&scope=openid&id_token_hint=eyJhbGciOiJSUzI1NiJ9.e30.c2ln&resource=https%3A%2F%2Fapi" + pkce,
		"client_id=%ff&state=%zz&redirect_uri=%00&response_type=code&response_type=token",
		"client_id=nope&response_type=code",
	} {
		f.Add(q, false, "")
		f.Add("", true, q)
	}
	f.Fuzz(func(t *testing.T, query string, post bool, body string) {
		method, ct := http.MethodGet, ""
		if post {
			method, ct = http.MethodPost, "application/x-www-form-urlencoded"
		}
		serveFuzz(t, h, errs, fuzzRequest(method, issuer, "/authorize", query, ct, body))
	})
}

func FuzzTokenRequest(f *testing.F) {
	h, issuer, errs := fuzzServer(f)
	for _, seed := range []struct{ body, auth string }{
		{"", ""},
		{"grant_type=authorization_code&code=abc&redirect_uri=" + url.QueryEscape(spaRedirect) + "&client_id=spa&code_verifier=" + strings.Repeat("v", 43), ""},
		{"grant_type=refresh_token&refresh_token=abc&client_id=spa&scope=openid", ""},
		{"grant_type=client_credentials&scope=api%3Aread&client_id=nope&client_secret=x", ""},
		{"grant_type=password&username=alice&password=x&client_id=spa&scope=openid", ""},
		{"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=eyJhbGciOiJSUzI1NiJ9.e30.c2ln&client_id=spa", ""},
		{"grant_type=client_credentials&client_id=web&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=eyJhbGciOiJub25lIn0.e30.", ""},
		{"grant_type=authorization_code&code=abc", "Basic bm9wZTp4"}, // nope:x
		{"grant_type=authorization_code&code=abc", "Basic !!!"},
		{"grant_type=%zz&code=%ff&grant_type=x", "Bearer x"},
		{"grant_type=authorization_code&resource=https%3A%2F%2Fa&resource=%00&audience=x&client_id=spa", ""},
	} {
		f.Add(seed.body, seed.auth, "application/x-www-form-urlencoded")
	}
	f.Add(`{"grant_type":"client_credentials"}`, "", "application/json")
	f.Add("grant_type=client_credentials", "", "multipart/form-data; boundary=x")
	f.Fuzz(func(t *testing.T, body, auth, contentType string) {
		req := fuzzRequest(http.MethodPost, issuer, "/token", "", contentType, body)
		if auth != "" {
			req.Header["Authorization"] = []string{auth}
		}
		serveFuzz(t, h, errs, req)
	})
}
