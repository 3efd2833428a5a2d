package provider_test

import (
	"github.com/smallsso/provider/storage"

	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/providertest"
)

// Issue 11 item 5: a client may introspect the tokens issued to it and
// those whose audience names it; only a client the operator declared with
// `introspect: any` may introspect every token. Anyone else hears exactly
// what an unknown token gets: {"active": false}.
func TestIntrospectionScoping(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withRegistration("initial-token"))
	owner := ts.addClient(t, clientspec.Spec{ID: "owner", Secret: "owner-secret-0123456789",
		ClientSettings: storage.ClientSettings{GrantTypes: []string{"client_credentials"}, Scopes: []string{"api"}, Audience: []string{"rs-api"}}})
	rs := ts.addClient(t, clientspec.Spec{ID: "rs-api", Secret: "rs-secret-0123456789", ClientSettings: storage.ClientSettings{GrantTypes: []string{"client_credentials"}}})
	foreign := ts.addClient(t, clientspec.Spec{ID: "foreign", Secret: "foreign-secret-0123456789", ClientSettings: storage.ClientSettings{GrantTypes: []string{"client_credentials"}}})
	auditor := ts.addClient(t, clientspec.Spec{ID: "auditor", Secret: "auditor-secret-0123456789",
		ClientSettings: storage.ClientSettings{GrantTypes: []string{"client_credentials"}, Introspect: clientspec.IntrospectAny}})

	token := func(form url.Values) string {
		t.Helper()
		form.Set("grant_type", "client_credentials")
		status, _, body := postForm(t, ts.URL+"/token", form, "owner", owner)
		if status != http.StatusOK {
			t.Fatalf("token: HTTP %d %v", status, body)
		}
		return body["access_token"].(string)
	}
	forRS := token(url.Values{"scope": {"api"}, "audience": {"rs-api"}})
	noAudience := token(url.Values{"scope": {"api"}})

	// A client registered dynamically cannot make itself an auditor: the
	// field is not registration metadata, on registration or on update.
	reg := ts.register(t, map[string]any{"redirect_uris": []string{webRedirect}, "introspect": "any"}, "initial-token")
	if _, ok := reg.Body["introspect"]; ok {
		t.Errorf("registration response claims introspect: %v", reg.Body)
	}
	upd := map[string]any{"client_id": reg.ID, "client_secret": reg.Secret, "redirect_uris": []string{webRedirect}, "introspect": "any"}
	if status, _, body := sendJSON(t, http.MethodPut, reg.URI, upd, reg.Token); status != http.StatusOK {
		t.Fatalf("registration update: HTTP %d %v", status, body)
	}

	inactive := map[string]any{"active": false}
	for _, c := range []struct {
		name, client, secret, token string
		active                      bool
	}{
		{"owner, audience token", "owner", owner, forRS, true},
		{"owner, token without audience", "owner", owner, noAudience, true},
		{"audience client", "rs-api", rs, forRS, true},
		{"audience client, token not for it", "rs-api", rs, noAudience, false},
		{"foreign client", "foreign", foreign, forRS, false},
		{"foreign client, token without audience", "foreign", foreign, noAudience, false},
		{"introspect: any", "auditor", auditor, forRS, true},
		{"introspect: any, token without audience", "auditor", auditor, noAudience, true},
		{"registered client asking for introspect: any", reg.ID, reg.Secret, forRS, false},
	} {
		status, _, body := postForm(t, ts.URL+"/introspect", url.Values{"token": {c.token}}, c.client, c.secret)
		if status != http.StatusOK {
			t.Errorf("%s: HTTP %d %v", c.name, status, body)
			continue
		}
		if !c.active {
			// Indistinguishable from an unknown token.
			_, _, unknown := postForm(t, ts.URL+"/introspect", url.Values{"token": {"no-such-token"}}, c.client, c.secret)
			if !reflect.DeepEqual(body, inactive) || !reflect.DeepEqual(unknown, inactive) {
				t.Errorf("%s: %v (unknown token: %v), want %v", c.name, body, unknown, inactive)
			}
			continue
		}
		if body["active"] != true || body["client_id"] != "owner" {
			t.Errorf("%s: %v, want active, client_id owner", c.name, body)
		}
	}
}

// Issue 11 item 6: one code exchanged by many requests at once has one
// winner; every other request is a replay and gets invalid_grant (never a
// 5xx), and the replay revokes what the code issued, the winner's tokens
// included (RFC 6749 §4.1.2), whichever request gets there first.
func TestCodeExchangeRace(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rp := newRP(t, ts, "web", "web-secret", webRedirect, "openid", "profile")
	f := rp.authorize(t, providertest.NewBrowser(ts.URL), alicePass, "allow")
	code := f.code(t, ts.URL)

	const n = 8
	type answer struct {
		status int
		body   map[string]any
		err    error
	}
	answers := make([]answer, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect}, "code_verifier": {f.verifier}}
			req, err := http.NewRequest(http.MethodPost, ts.URL+"/token", strings.NewReader(form.Encode()))
			if err != nil {
				answers[i].err = err
				return
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("web", "web-secret")
			<-start
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				answers[i].err = err
				return
			}
			defer resp.Body.Close()
			answers[i].status = resp.StatusCode
			answers[i].err = json.NewDecoder(resp.Body).Decode(&answers[i].body)
		}()
	}
	close(start)
	wg.Wait()

	var winner map[string]any
	for i, a := range answers {
		switch {
		case a.err != nil:
			t.Errorf("exchange %d: %v", i, a.err)
		case a.status == http.StatusOK && winner == nil:
			winner = a.body
		case a.status == http.StatusBadRequest && a.body["error"] == "invalid_grant":
		default:
			t.Errorf("exchange %d: HTTP %d %v, want one 200 and the rest 400 invalid_grant", i, a.status, a.body)
		}
	}
	if winner == nil {
		t.Fatal("no exchange succeeded")
	}
	if info := ts.introspect(t, winner["access_token"].(string)); info["active"] != false {
		t.Errorf("winner's access token after the replay: %v, want inactive", info)
	}
	if status, body := ts.refresh(t, winner["refresh_token"].(string)); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("winner's refresh token after the replay: HTTP %d %v, want 400 invalid_grant", status, body)
	}
	// A later replay is refused the same way.
	status, _, body := postForm(t, ts.URL+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {webRedirect}, "code_verifier": {f.verifier}}, "web", "web-secret")
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("later replay: HTTP %d %v", status, body)
	}
}

// Issue 11 items 8 and 14: the any-port rule of RFC 8252 §7.3 is for public
// (native) clients, on 127.0.0.1, [::1] and localhost alike; a
// confidential client's redirect URI matches exactly. Everything but the
// port matches exactly either way. A request whose redirect URI does not
// match gets an error page, never a redirect.
func TestLoopbackRedirectMatching(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.addClient(t, clientspec.Spec{ID: "native", ClientSettings: storage.ClientSettings{
		Public:       true,
		RedirectURIs: []string{"http://127.0.0.1/callback", "http://[::1]/callback", "http://localhost/callback"},
	}})
	ts.addClient(t, clientspec.Spec{ID: "server", Secret: "server-secret-0123456789",
		ClientSettings: storage.ClientSettings{RedirectURIs: []string{"http://127.0.0.1:5555/callback", "http://localhost:8000/callback"}}})

	// prompt=none with nobody signed in: a valid request is answered at
	// the redirect URI with login_required, without a page in between.
	probe := func(clientID, redirect string) *http.Response {
		t.Helper()
		q := url.Values{"client_id": {clientID}, "response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {redirect},
			"state": {"s"}, "prompt": {"none"}, "code_challenge_method": {"S256"},
			"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}}
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Get(ts.URL + "/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, c := range []struct {
		client, redirect string
		redirected       bool
	}{
		{"native", "http://127.0.0.1:49152/callback", true},
		{"native", "http://[::1]:49153/callback", true},
		{"native", "http://localhost:8000/callback", true},
		{"native", "http://localhost/callback", true},
		{"native", "http://localhost:8000/callback/", false},
		{"native", "http://localhost:8000/other", false},
		{"native", "http://localhost:8000/callback?x=1", false},
		{"native", "https://localhost:8000/callback", false},
		{"native", "http://127.0.0.2:8000/callback", false},
		{"native", "http://user@localhost:8000/callback", false},
		{"server", "http://127.0.0.1:5555/callback", true},
		{"server", "http://localhost:8000/callback", true},
		{"server", "http://127.0.0.1:5556/callback", false},
		{"server", "http://127.0.0.1/callback", false},
		{"server", "http://localhost:8001/callback", false},
	} {
		resp := probe(c.client, c.redirect)
		loc := resp.Header.Get("Location")
		switch {
		case c.redirected && (resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, c.redirect+"?")):
			t.Errorf("%s %s: HTTP %d Location %q, want a redirect there", c.client, c.redirect, resp.StatusCode, loc)
		case c.redirected && !strings.Contains(loc, "error=login_required"):
			t.Errorf("%s %s: Location %q, want login_required", c.client, c.redirect, loc)
		case !c.redirected && (loc != "" || resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html")):
			t.Errorf("%s %s: HTTP %d Location %q (%s), want an error page", c.client, c.redirect, resp.StatusCode, loc, resp.Header.Get("Content-Type"))
		}
	}
	// The same rule when the request is pushed first (RFC 9126).
	for redirect, want := range map[string]int{"http://127.0.0.1:5555/callback": http.StatusCreated, "http://127.0.0.1:5556/callback": http.StatusBadRequest} {
		status, _, body := postForm(t, ts.URL+"/par", url.Values{"response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {redirect}, "state": {"s"}},
			"server", "server-secret-0123456789")
		if status != want {
			t.Errorf("PAR with %s: HTTP %d %v, want %d", redirect, status, body, want)
		}
	}
}

// Issue 11 item 14: kubelogin's defaults, a public client with
// http://localhost:8000 as its callback, through a whole sign-in.
func TestKubeloginLocalhostRedirect(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.addClient(t, clientspec.Spec{ID: "kubernetes", ClientSettings: storage.ClientSettings{
		Public:       true,
		RedirectURIs: []string{"http://localhost/"},
		GrantTypes:   []string{"authorization_code", "refresh_token"},
		Scopes:       []string{"openid", "email", "groups"},
	}})
	rp := newRP(t, ts, "kubernetes", "", "http://localhost:8000/", "openid", "email")
	f := rp.authorize(t, providertest.NewBrowser(ts.URL), alicePass, "allow")
	if got := f.redirect.Scheme + "://" + f.redirect.Host + f.redirect.Path; got != "http://localhost:8000/" {
		t.Fatalf("redirected to %s, want http://localhost:8000/", f.redirect)
	}
	tok, err := rp.oauth2.Exchange(t.Context(), f.code(t, ts.URL), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	if idt.Subject != ts.alice.ID || idt.Nonce != f.nonce {
		t.Errorf("ID token sub %q nonce %q", idt.Subject, idt.Nonce)
	}
}

// Issue 11 item 13: the password grant with scope openid returns an ID
// token, as kubelogin's password mode expects: sub, aud, iss, at_hash,
// auth_time, amr pwd and the scopes' claims, signed with the client's
// algorithm; a refresh gives a new one for the same person.
func TestPasswordGrantIDToken(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	disc, err := oidc.NewProvider(t.Context(), ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range []string{"", "ES256", "EdDSA"} {
		id := "kubelogin" + alg
		secret := ts.addClient(t, clientspec.Spec{ID: id, Secret: "kubelogin-secret-0123456789", ClientSettings: storage.ClientSettings{
			IDTokenSignedResponseAlg: alg,
			GrantTypes:               []string{"password", "refresh_token"},
			Scopes:                   []string{"openid", "profile", "email", "groups"},
		}})
		want := alg
		if want == "" {
			want = "RS256"
		}
		conf := oauth2.Config{ClientID: id, ClientSecret: secret, Endpoint: disc.Endpoint(), Scopes: []string{"openid", "email", "groups", "profile"}}
		verifier := disc.Verifier(&oidc.Config{ClientID: id, SupportedSigningAlgs: []string{want}})
		before := time.Now().Add(-2 * time.Second).Unix()
		tok, err := conf.PasswordCredentialsToken(t.Context(), "alice", alicePass)
		if err != nil {
			t.Fatalf("%s: password grant: %v", want, err)
		}
		raw, _ := tok.Extra("id_token").(string)
		if raw == "" {
			t.Fatalf("%s: no id_token in %v", want, tok)
		}
		idt, err := verifier.Verify(t.Context(), raw)
		if err != nil {
			t.Fatalf("%s: ID token: %v", want, err)
		}
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil || idt.AccessTokenHash == "" {
			t.Errorf("%s: at_hash %q: %v", want, idt.AccessTokenHash, err)
		}
		var claims struct {
			Amr       []string `json:"amr"`
			AuthTime  int64    `json:"auth_time"`
			Email     string   `json:"email"`
			Groups    []string `json:"groups"`
			UpdatedAt int64    `json:"updated_at"`
		}
		if err := idt.Claims(&claims); err != nil {
			t.Fatalf("%s: claims: %v", want, err)
		}
		if idt.Subject != ts.alice.ID || idt.Issuer != ts.URL || !reflect.DeepEqual(idt.Audience, []string{id}) ||
			!reflect.DeepEqual(claims.Amr, []string{"pwd"}) || claims.AuthTime < before || claims.AuthTime > time.Now().Unix() ||
			claims.Email != ts.alice.Email || !reflect.DeepEqual(claims.Groups, ts.alice.Groups) || claims.UpdatedAt != ts.alice.UpdatedAt.Unix() {
			t.Errorf("%s: sub %q iss %q aud %v, claims %+v", want, idt.Subject, idt.Issuer, idt.Audience, claims)
		}
		// kubelogin refreshes with the refresh token when the ID token expires.
		tok.Expiry = time.Now().Add(-time.Minute)
		fresh, err := conf.TokenSource(t.Context(), tok).Token()
		if err != nil {
			t.Fatalf("%s: refresh: %v", want, err)
		}
		raw, _ = fresh.Extra("id_token").(string)
		if idt2, err := verifier.Verify(t.Context(), raw); err != nil || idt2.Subject != ts.alice.ID {
			t.Errorf("%s: refreshed ID token: %v", want, err)
		}
	}
	// Without openid there is no ID token, as before.
	conf := oauth2.Config{ClientID: "kubelogin", ClientSecret: "kubelogin-secret-0123456789", Endpoint: disc.Endpoint(), Scopes: []string{"email"}}
	tok, err := conf.PasswordCredentialsToken(t.Context(), "alice", alicePass)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Extra("id_token") != nil {
		t.Errorf("ID token without the openid scope")
	}
}

// Issue 11 item 17: updated_at is a JSON integer (OIDC Core §5.1), in the
// ID token and in userinfo, plain and signed, so an int64 field decodes it.
func TestUpdatedAtIsInteger(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.addClient(t, clientspec.Spec{ID: "signed-ui", Secret: "signed-ui-secret-0123456789", ClientSettings: storage.ClientSettings{
		RedirectURIs:              []string{webRedirect},
		UserinfoSignedResponseAlg: "RS256",
		Scopes:                    []string{"openid", "profile"},
	}})
	want := ts.alice.UpdatedAt.Unix()
	type profile struct {
		UpdatedAt int64 `json:"updated_at"`
	}
	for _, c := range []struct{ client, secret string }{{"web", "web-secret"}, {"signed-ui", "signed-ui-secret-0123456789"}} {
		rp := newRP(t, ts, c.client, c.secret, webRedirect, "openid", "profile")
		f := rp.authorize(t, providertest.NewBrowser(ts.URL), alicePass, "allow")
		tok, err := rp.oauth2.Exchange(t.Context(), f.code(t, ts.URL), oauth2.VerifierOption(f.verifier))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := rp.verifier.Verify(t.Context(), raw)
		if err != nil {
			t.Fatal(err)
		}
		var p profile
		if err := idt.Claims(&p); err != nil || p.UpdatedAt != want {
			t.Errorf("%s: ID token updated_at: %v (%d, want %d)", c.client, err, p.UpdatedAt, want)
		}
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if c.client == "signed-ui" {
			// application/jwt: the payload is the second part.
			parts := strings.Split(string(body), ".")
			if len(parts) != 3 {
				t.Fatalf("signed userinfo %q", body)
			}
			if body, err = base64.RawURLEncoding.DecodeString(parts[1]); err != nil {
				t.Fatal(err)
			}
		}
		p = profile{}
		if err := json.Unmarshal(body, &p); err != nil || p.UpdatedAt != want {
			t.Errorf("%s: userinfo updated_at: %v (%d, want %d) in %s", c.client, err, p.UpdatedAt, want, body)
		}
	}
}

// A code someone intercepted cannot be spent by them: a token request
// from another client, with another redirect_uri or a wrong PKCE verifier
// is refused without redeeming the code, and the person's own exchange
// still succeeds (RFC 9700 §4.5: PKCE makes an intercepted code useless,
// which it would not be if the interceptor could burn it).
func TestStolenCodeCannotBeBurnt(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rp := newRP(t, ts, "web", "web-secret", webRedirect, "openid", "profile")
	f := rp.authorize(t, providertest.NewBrowser(ts.URL), alicePass, "allow")
	code := f.code(t, ts.URL)

	exchange := func(form url.Values, user, pass string) (int, map[string]any) {
		form.Set("grant_type", "authorization_code")
		form.Set("code", code)
		status, _, body := postForm(t, ts.URL+"/token", form, user, pass)
		return status, body
	}
	for _, tc := range []struct {
		name       string
		form       url.Values
		user, pass string
	}{
		{"public client", url.Values{"client_id": {"spa"}, "redirect_uri": {spaRedirect}, "code_verifier": {f.verifier}}, "", ""},
		{"other confidential client", url.Values{"redirect_uri": {webRedirect}, "code_verifier": {f.verifier}}, "svc", "svc-secret"},
		{"other redirect_uri", url.Values{"redirect_uri": {spaRedirect}, "code_verifier": {f.verifier}}, "web", "web-secret"},
		{"wrong verifier", url.Values{"redirect_uri": {webRedirect}, "code_verifier": {strings.Repeat("x", 43)}}, "web", "web-secret"},
		{"no verifier", url.Values{"redirect_uri": {webRedirect}}, "web", "web-secret"},
	} {
		if status, body := exchange(tc.form, tc.user, tc.pass); status < 400 || status >= 500 || body["access_token"] != nil {
			t.Errorf("%s: HTTP %d %v, want a 4xx error", tc.name, status, body)
		}
	}
	status, body := exchange(url.Values{"redirect_uri": {webRedirect}, "code_verifier": {f.verifier}}, "web", "web-secret")
	if status != http.StatusOK || body["access_token"] == nil {
		t.Fatalf("the person's own exchange after the attempts: HTTP %d %v, want tokens", status, body)
	}
	if status, body := exchange(url.Values{"redirect_uri": {webRedirect}, "code_verifier": {f.verifier}}, "web", "web-secret"); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("second exchange: HTTP %d %v, want invalid_grant", status, body)
	}
	if info := ts.introspect(t, body["access_token"].(string)); info["active"] != false {
		t.Errorf("access token after a replay: %v, want inactive", info)
	}
}
