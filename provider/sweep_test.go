package provider_test

// Issue 11, item 9: no 5xx from input. Thousands of malformed requests
// over every endpoint: wrong methods, missing, empty and duplicate
// parameters, 100k values, invalid UTF-8, NUL bytes, odd content types,
// broken JSON and JWTs where JWTs go, odd paths, bad percent-encoding.
// Every answer must be below 500 and nothing may be logged at ERROR.

import (
	"github.com/smallsso/provider/storage"

	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/smallsso/provider/provider/clientspec"
)

// sweepProbe is one request of the sweep.
type sweepProbe struct {
	method, target, contentType, auth string
	body                              string
}

func (p sweepProbe) String() string {
	return fmt.Sprintf("%s %.200q ct=%q auth=%.60q body=%.200q", p.method, p.target, p.contentType, p.auth, p.body)
}

// Values that break parsers: empty, control and NUL bytes, invalid UTF-8,
// bad escapes once encoded, broken JSON, broken and unsigned JWTs, and a
// 100k value (414 in a query, 413 in a body: answered, never a 5xx).
var sweepValues = []string{
	"", " ", "\x00", "a\x00b", "\xff\xfe", "\xc0\xaf", "%zz", "%", "\r\nX-Injected: 1", "<script>", "'\"", "\u202e",
	"{", "[]", "null", "{\"a\":", "a.b.c", "..", "eyJ.eyJ.", "e30.e30.", "eyJhbGciOiJub25lIn0.e30.",
	"eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln",
	"eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d", "http://", "https://127.0.0.1:1/x", "javascript:alert(1)",
	"urn:ietf:params:oauth:request_uri:x", "-1", "99999999999999999999999", "1e400", "NaN", "true",
	strings.Repeat("a", 100_000),
}

// sweepEndpoints are the endpoints that read parameters, each with a
// request that is nearly valid (so mutations get deep into the handler)
// and the parameters to mutate.
var sweepEndpoints = []struct {
	method, path string
	base         url.Values
	auth         string // Authorization header of the base request
}{
	{"GET", "/authorize", url.Values{"client_id": {"web"}, "response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {webRedirect},
		"state": {"abcdefgh"}, "nonce": {"n"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGmSyyGNmo"}, "code_challenge_method": {"S256"},
		"prompt": {"none"}, "max_age": {"10"}, "login_hint": {"alice"}, "id_token_hint": {"x"}, "request": {"x"}, "request_uri": {"x"},
		"response_mode": {"query"}, "ui_locales": {"de"}, "claims": {"{}"}, "resource": {"https://api.example"}, "acr_values": {"x"}}, ""},
	{"POST", "/authorize", url.Values{"client_id": {"spa"}, "response_type": {"code id_token"}, "scope": {"openid"}, "redirect_uri": {spaRedirect},
		"state": {"abcdefgh"}, "nonce": {"n"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGmSyyGNmo"}, "code_challenge_method": {"S256"},
		"response_mode": {"form_post"}}, ""},
	{"POST", "/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {spaRedirect}, "client_id": {"spa"},
		"code_verifier": {"x"}, "refresh_token": {"x"}, "scope": {"openid"}, "username": {"alice"}, "password": {"x"}, "audience": {"x"},
		"resource": {"x"}, "assertion": {"x"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion": {"x"}}, ""},
	{"POST", "/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {"x"}, "client_id": {"nope"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {"x"}}, ""},
	{"POST", "/revoke", url.Values{"token": {"x"}, "token_type_hint": {"refresh_token"}, "client_id": {"spa"}}, ""},
	{"POST", "/introspect", url.Values{"token": {"x"}, "token_type_hint": {"access_token"}, "client_id": {"nope"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {"x"}}, ""},
	{"POST", "/par", url.Values{"client_id": {"spa"}, "response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {spaRedirect},
		"state": {"abcdefgh"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGmSyyGNmo"}, "code_challenge_method": {"S256"},
		"request": {"x"}, "request_uri": {"x"}}, ""},
	{"POST", "/userinfo", url.Values{"access_token": {"x"}}, ""},
	{"GET", "/logout", url.Values{"id_token_hint": {"x"}, "client_id": {"web"}, "post_logout_redirect_uri": {webRedirect}, "state": {"s"},
		"ui_locales": {"de"}, "logout_hint": {"x"}}, ""},
	{"POST", "/logout", url.Values{"id_token_hint": {"x"}, "client_id": {"web"}, "post_logout_redirect_uri": {webRedirect}, "confirm": {"1"},
		"csrf": {"x"}}, ""},
	{"POST", "/login", url.Values{"username": {"alice"}, "password": {"x"}, "interaction": {"x"}, "csrf": {"x"}, "remember": {"1"}}, ""},
	{"POST", "/consent", url.Values{"decision": {"allow"}, "interaction": {"x"}, "csrf": {"x"}, "remember": {"1"}}, ""},
	{"POST", "/login/mfa", url.Values{"code": {"123456"}, "interaction": {"x"}, "csrf": {"x"}, "cancel": {"yes"}, "switch": {"recovery"}, "shown": {"totp"}}, ""},
	{"POST", "/account/password", url.Values{"current": {"x"}, "new": {"x"}, "confirm": {"x"}, "csrf": {"x"}}, ""},
	{"POST", "/account/revoke", url.Values{"client_id": {"web"}, "csrf": {"x"}}, ""},
}

// sweepRegistrations are broken registration bodies (RFC 7591).
var sweepRegistrations = []string{
	``, `{`, `[]`, `null`, `"x"`, `{"redirect_uris":"x"}`, `{"redirect_uris":[1]}`, `{"redirect_uris":["\u0000"]}`,
	`{"redirect_uris":["http://127.0.0.1:5555/cb"],"token_endpoint_auth_method":"none","jwks":{"keys":[{"kty":"zz"}]}}`,
	`{"redirect_uris":["http://127.0.0.1:5555/cb"],"token_endpoint_auth_method":"none","jwks":{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}}`,
	`{"redirect_uris":["http://127.0.0.1:5555/cb"],"token_endpoint_auth_method":"none","jwks":{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}}`,
	`{"redirect_uris":["http://127.0.0.1:5555/cb"],"token_endpoint_auth_method":"none","jwks":"{"}`,
	`{"redirect_uris":["http://127.0.0.1:5555/cb"],"token_endpoint_auth_method":"none","jwks":{"keys":"x"}}`,
	`{"redirect_uris":["http://127.0.0.1:5555/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[{"kty":"oct","k":"AA"}]}}`,
	`{"redirect_uris":["http://127.0.0.1:5555/cb"],"token_endpoint_auth_method":"none","jwks_uri":"http://[::1"}`,
	`{"redirect_uris":["http://127.0.0.1:5555/cb"],"token_endpoint_auth_method":"none","request_uris":["%zz"]}`,
	`{"redirect_uris":["http://127.0.0.1:5555/cb"],"token_endpoint_auth_method":"none","default_max_age":1e400}`,
	`{"redirect_uris":["http://127.0.0.1:5555/cb"],"token_endpoint_auth_method":"none","client_name":"` + "\xff\xfe" + `"}`,
	`{"redirect_uris":["http://127.0.0.1:5555/cb"],"token_endpoint_auth_method":"none","grant_types":["x"],"response_types":["code token id_token none"]}`,
	`{"redirect_uris":["http://127.0.0.1:5555/cb"],"token_endpoint_auth_method":"none","post_logout_redirect_uris":["javascript:x"],"backchannel_logout_uri":"ftp://x"}`,
	`{"redirect_uris":["http://127.0.0.1:5555/cb"],"token_endpoint_auth_method":"none","scope":"` + strings.Repeat("openid ", 5000) + `"}`,
}

// sweepPaths are odd request-targets, sent as they are.
var sweepPaths = []string{
	"/", "//", "/%ff", "/%00", "/%zz", "/static/", "/static/%ff", "/static/%00", "/static/..%2f..%2fgo.mod", "/static/%2e%2e/x",
	"/static/a%5cb", "/static//theme.css", "/authorize/", "/authorize%00", "/AUTHORIZE", "/register/", "/register/%ff", "/register/%zz",
	"/register/%00", "/register/a%2fb", "/.well-known/", "/.well-known/%ff", "/jwks?%zz", "/authorize?%", "/authorize?a=%zz&client_id=%ff",
	"/logout?post_logout_redirect_uri=%zz", "/userinfo?access_token=%ff", "/token?grant_type=%00", "*",
}

var sweepContentTypes = []string{
	"", "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-16", "application/json", "text/plain",
	"multipart/form-data; boundary=x", "multipart/form-data", "multipart/mixed; boundary=x", "application/x-www-form-urlencoded;;;=",
	"\xff", "application/jwt",
}

var sweepAuths = []string{
	"", "Basic", "Basic !!!", "Basic " + base64.StdEncoding.EncodeToString([]byte(":")), "Basic " + base64.StdEncoding.EncodeToString([]byte("nope:x")),
	"Basic " + base64.StdEncoding.EncodeToString([]byte("%zz:%zz")), "Basic " + base64.StdEncoding.EncodeToString([]byte("\xff:\x00")),
	"Bearer", "Bearer ", "Bearer x", "Bearer a.b.c", "Bearer eyJhbGciOiJub25lIn0.e30.", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
	"Bearer \xff", "DPoP x", "bearer x y z",
}

func sweepProbes() []sweepProbe {
	var probes []sweepProbe
	form := "application/x-www-form-urlencoded"
	add := func(method, path string, q url.Values, auth string) {
		p := sweepProbe{method: method, target: path, auth: auth}
		if method == http.MethodGet {
			p.target += "?" + q.Encode()
		} else {
			p.contentType, p.body = form, q.Encode()
		}
		probes = append(probes, p)
	}
	for _, ep := range sweepEndpoints {
		add(ep.method, ep.path, ep.base, ep.auth)
		for name := range ep.base {
			// Missing, duplicate, and every odd value.
			q := cloneValues(ep.base)
			q.Del(name)
			add(ep.method, ep.path, q, ep.auth)
			q = cloneValues(ep.base)
			q.Add(name, "other")
			add(ep.method, ep.path, q, ep.auth)
			for _, v := range sweepValues {
				q = cloneValues(ep.base)
				q.Set(name, v)
				add(ep.method, ep.path, q, ep.auth)
			}
		}
		// Bad percent-encoding, raw.
		raw := ep.base.Encode() + "&state=%zz&x=%&%ff=%00"
		if ep.method == http.MethodGet {
			probes = append(probes, sweepProbe{method: ep.method, target: ep.path + "?" + raw})
		} else {
			probes = append(probes, sweepProbe{method: ep.method, target: ep.path, contentType: form, body: raw})
		}
		for _, ct := range sweepContentTypes {
			probes = append(probes, sweepProbe{method: http.MethodPost, target: ep.path, contentType: ct, body: ep.base.Encode()})
			probes = append(probes, sweepProbe{method: http.MethodPost, target: ep.path, contentType: ct, body: `{"client_id":"web"`})
		}
		for _, a := range sweepAuths {
			add(ep.method, ep.path, ep.base, a)
		}
	}
	for _, a := range sweepAuths {
		probes = append(probes, sweepProbe{method: http.MethodGet, target: "/userinfo", auth: a})
		probes = append(probes, sweepProbe{method: http.MethodGet, target: "/register/web", auth: a})
		probes = append(probes, sweepProbe{method: http.MethodGet, target: "/account", auth: a})
	}
	for _, body := range sweepRegistrations {
		for _, target := range []struct{ method, path string }{{"POST", "/register"}, {"PUT", "/register/web"}} {
			probes = append(probes, sweepProbe{method: target.method, target: target.path, contentType: "application/json", body: body})
		}
	}
	// Every route and odd path with every method.
	paths := append([]string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server", "/jwks", "/authorize",
		"/login", "/login/mfa", "/consent", "/token", "/userinfo", "/revoke", "/introspect", "/par", "/logout", "/healthz", "/register",
		"/register/web", "/account", "/account/password", "/account/revoke", "/static/theme.css", "/static/style.css"}, sweepPaths...)
	for _, path := range paths {
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND"} {
			probes = append(probes, sweepProbe{method: m, target: path})
			if m == "POST" || m == "PUT" {
				probes = append(probes, sweepProbe{method: m, target: path, contentType: form, body: "a=%zz&\x00=\xff"})
			}
		}
	}
	return probes
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// deepProbes reach the code that fetches and verifies keys and request
// objects: clients whose jwks_uri serves garbage or nothing, and
// well-formed JWTs signed with a key nobody knows.
func deepProbes(t *testing.T, ts *testServer) []sweepProbe {
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/jwks":
			w.Write([]byte(`{"keys":[{"kty":"zz","kid":"k1"},{"kty":"EC","crv":"P-256","x":"AA","y":"AA","kid":"k1"}]}`))
		case "/json":
			w.Write([]byte(`{"keys":`))
		case "/ro":
			w.Write([]byte("eyJhbGciOiJub25lIn0.bm90IGpzb24."))
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(garbage.Close)
	down := "http://127.0.0.1:1"
	for id, uri := range map[string]string{"pk-garbage": garbage.URL + "/jwks", "pk-json": garbage.URL + "/json", "pk-500": garbage.URL + "/500", "pk-down": down + "/jwks"} {
		ts.addClient(t, clientspec.Spec{ID: id, ClientSettings: storage.ClientSettings{
			TokenEndpointAuthMethod: "private_key_jwt",
			JWKSURI:                 uri,
			GrantTypes:              []string{"authorization_code", "client_credentials"},
			RedirectURIs:            []string{webRedirect},
			Scopes:                  []string{"openid"},
			RequestURIs:             []string{garbage.URL + "/ro", garbage.URL + "/500", down + "/ro"},
		}})
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	sign := func(claims map[string]any) string {
		tok, err := jwt.Signed(signer).Claims(claims).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	now := time.Now().Unix()
	var probes []sweepProbe
	form := "application/x-www-form-urlencoded"
	for _, id := range []string{"pk-garbage", "pk-json", "pk-500", "pk-down", "web", "nope"} {
		assertion := sign(map[string]any{"iss": id, "sub": id, "aud": ts.URL + "/token", "exp": now + 60, "iat": now, "jti": randomString()})
		auth := url.Values{"client_id": {id}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
		for _, ep := range []string{"/token", "/introspect", "/revoke", "/par"} {
			q := cloneValues(auth)
			q.Set("grant_type", "client_credentials")
			q.Set("token", "x")
			q.Set("response_type", "code")
			q.Set("redirect_uri", webRedirect)
			q.Set("request", sign(map[string]any{"iss": id, "aud": ts.URL, "client_id": id, "response_type": "code", "exp": now + 60}))
			probes = append(probes, sweepProbe{method: "POST", target: ep, contentType: form, body: q.Encode()})
		}
		authz := url.Values{"client_id": {id}, "response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {webRedirect}, "state": {"abcdefgh"}}
		for _, extra := range []url.Values{
			{"request": {sign(map[string]any{"iss": id, "aud": ts.URL, "client_id": id, "response_type": "code", "exp": now + 60})}},
			{"request": {sign(map[string]any{"iss": id, "aud": ts.URL, "client_id": id, "max_age": "x", "claims": 1, "exp": "x"})}},
			{"request_uri": {garbage.URL + "/ro"}}, {"request_uri": {garbage.URL + "/500"}}, {"request_uri": {down + "/ro"}},
			{"id_token_hint": {sign(map[string]any{"iss": ts.URL, "sub": "x", "aud": id, "exp": now + 60})}},
		} {
			q := cloneValues(authz)
			for k, v := range extra {
				q[k] = v
			}
			probes = append(probes, sweepProbe{method: "GET", target: "/authorize?" + q.Encode()})
		}
	}
	// A jwt-bearer grant and an ID token hint from nobody we know.
	probes = append(probes,
		sweepProbe{method: "POST", target: "/token", contentType: form, body: url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
			"client_id": {"spa"}, "assertion": {sign(map[string]any{"iss": "https://idp.example", "sub": "x", "aud": ts.URL + "/token", "exp": now + 60})}}.Encode()},
		sweepProbe{method: "GET", target: "/logout?" + url.Values{"id_token_hint": {sign(map[string]any{"iss": ts.URL, "sub": "x", "aud": "web", "exp": now + 60})}}.Encode()},
		sweepProbe{method: "GET", target: "/userinfo", auth: "Bearer " + sign(map[string]any{"iss": ts.URL, "sub": "x", "exp": now + 60})},
	)
	return probes
}

func TestMalformedRequestsGetNo5xx(t *testing.T) {
	t.Parallel()
	ts, logs := newLoggedServer(t, withRegistration(""))
	probes := append(sweepProbes(), deepProbes(t, ts)...)
	if len(probes) < 2000 {
		t.Fatalf("only %d probes", len(probes))
	}
	host := strings.TrimPrefix(ts.URL, "http://")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	work := make(chan sweepProbe)
	var mu sync.Mutex
	var failures []string
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for p := range work {
				status, body, err := sendProbe(client, host, p)
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, fmt.Sprintf("%s: %v", p, err))
				case status >= 500:
					failures = append(failures, fmt.Sprintf("%s: HTTP %d %.300q", p, status, body))
				case libraryText(body) != "":
					failures = append(failures, fmt.Sprintf("%s: HTTP %d shows library text %q: %.300q", p, status, libraryText(body), body))
				}
				statuses[status]++
				mu.Unlock()
			}
		})
	}
	for _, p := range probes {
		work <- p
	}
	close(work)
	wg.Wait()
	t.Logf("%d requests, answers by status: %v", len(probes), statuses)
	for i, f := range failures {
		if i == 30 {
			t.Errorf("... and %d more", len(failures)-30)
			break
		}
		t.Error(f)
	}
	if lines := logs.errorLines(); len(lines) > 0 {
		for i, l := range lines {
			if i == 10 {
				break
			}
			t.Errorf("logged at ERROR: %.500s", l)
		}
	}
}

// libraryMarkers are what error texts of Go libraries look like (item 10:
// none reaches a client).
var libraryMarkers = []string{"go-jose", "square/go-jose", "json: ", "illegal base64", "x509:", "crypto/", "strconv.", "unexpected EOF",
	"invalid character", "cannot unmarshal", "Go struct", "runtime error", "goroutine ", "context canceled", "bbolt", "dial tcp", "connection refused"}

func libraryText(body string) string {
	for _, m := range libraryMarkers {
		if strings.Contains(body, m) {
			return m
		}
	}
	return ""
}

// sendProbe sends p as it is: the target is not re-encoded.
func sendProbe(client *http.Client, host string, p sweepProbe) (int, string, error) {
	var body io.Reader
	if p.body != "" {
		body = strings.NewReader(p.body)
	}
	req, err := http.NewRequest(p.method, "http://"+host+"/", body)
	if err != nil {
		return 0, "", err
	}
	req.URL = &url.URL{Scheme: "http", Host: host, Opaque: p.target}
	if p.target == "*" {
		req.URL.Opaque = "*"
	}
	if p.contentType != "" {
		req.Header.Set("Content-Type", p.contentType)
	}
	if p.auth != "" {
		req.Header.Set("Authorization", p.auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b), nil
}
