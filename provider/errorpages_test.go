package provider_test

import (
	"github.com/smallsso/provider/storage"

	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/providertest"
)

// fositeWords are phrases of fosite's developer-facing error texts; none
// may reach a person's page.
var fositeWords = []string{"Client authentication failed", "e.g.", "OAuth 2.0", "does not exist", "Make sure", "The request is missing", "redirect_uri", "parameter"}

func browserIn(ts *testServer, lang string) *providertest.Browser {
	b := providertest.NewBrowser(ts.URL)
	b.HTTP.Transport = acceptLanguage{lang, http.DefaultTransport}
	return b
}

func authorizeURL(ts *testServer, params url.Values) string {
	return ts.URL + "/authorize?" + params.Encode()
}

// An authorization request from an unknown client_id: the page says in
// plain words what happened and what to do, keeps the code and request
// ID, and shows none of fosite's text.
func TestAuthorizeErrorPageUnknownClient(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	req := url.Values{"client_id": {"no-such-app"}, "response_type": {"code"}, "scope": {"openid"}, "state": {"s"}, "redirect_uri": {webRedirect}}
	for _, tc := range []struct {
		lang string
		want []string
	}{
		{"en", []string{"Unknown application", "is not registered with this sign-in service", "it has to be registered here before anyone can sign in to it", "Error code", "Request ID"}},
		{"de", []string{"Unbekannte Anwendung", "ist bei diesem Anmeldedienst nicht registriert", "Betreiber der Anwendung", "Fehlercode", "Anfrage-ID"}},
	} {
		page := get(t, browserIn(ts, tc.lang), authorizeURL(ts, req))
		body := html.UnescapeString(page.Body)
		if page.Status < 400 || page.Status >= 500 || page.Location != nil {
			t.Fatalf("%s: HTTP %d, location %v: want a 4xx page", tc.lang, page.Status, page.Location)
		}
		for _, w := range append(tc.want, "<code>invalid_client</code>") {
			if !strings.Contains(body, w) {
				t.Errorf("%s page lacks %q:\n%s", tc.lang, w, body)
			}
		}
		if !regexp.MustCompile(`<code>[0-9a-zA-Z_-]{8,}</code>`).MatchString(body) {
			t.Errorf("%s page shows no request ID:\n%s", tc.lang, body)
		}
		for _, w := range fositeWords {
			if strings.Contains(body, w) {
				t.Errorf("%s page shows fosite's text %q:\n%s", tc.lang, w, body)
			}
		}
	}
}

// Every authorization error shown as a page speaks plainly, per error code.
func TestAuthorizeErrorPagesPlainWords(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.addClient(t, clientspec.Spec{ID: "narrow", Secret: "narrow-secret", ClientSettings: storage.ClientSettings{
		RedirectURIs: []string{webRedirect},
		GrantTypes:   []string{"authorization_code"},
		Scopes:       []string{"openid"},
	}})
	base := func(kv ...string) url.Values {
		v := url.Values{"client_id": {"web"}, "response_type": {"code"}, "scope": {"openid"}, "state": {"s"}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	for _, tc := range []struct {
		name   string
		params url.Values
		code   string
		want   string
	}{
		{"unregistered redirect", base("redirect_uri", "http://127.0.0.1:9/elsewhere"), "invalid_request", "The application sent an invalid sign-in request."},
		{"no client_id", base("client_id", ""), "invalid_client", "Unknown application"},
		{"unsupported response type", base("response_type", "token token", "redirect_uri", "http://127.0.0.1:9/x"), "", "Please go back to the application"},
	} {
		page := get(t, browserIn(ts, "en"), authorizeURL(ts, tc.params))
		body := html.UnescapeString(page.Body)
		if page.Status < 400 || page.Status >= 500 || page.Location != nil {
			t.Errorf("%s: HTTP %d, location %v: want a 4xx page", tc.name, page.Status, page.Location)
			continue
		}
		if !strings.Contains(body, tc.want) || (tc.code != "" && !strings.Contains(body, "<code>"+tc.code+"</code>")) {
			t.Errorf("%s: page lacks %q / code %q:\n%s", tc.name, tc.want, tc.code, body)
		}
		for _, w := range fositeWords {
			if strings.Contains(body, w) {
				t.Errorf("%s: page shows fosite's text %q:\n%s", tc.name, w, body)
			}
		}
	}
	// Other pages say what to do too.
	page := get(t, browserIn(ts, "de"), ts.URL+"/no/such/page")
	if !strings.Contains(html.UnescapeString(page.Body), "Bitte kehren Sie zur Anwendung zurück, von der Sie kommen") {
		t.Errorf("German 404 page gives no advice:\n%s", page.Body)
	}
}

var cancelLink = regexp.MustCompile(`<a class="button secondary" id="cancel" href="([^"]+)"`)

// The sign-out confirmation has a Cancel that keeps the person signed in
// and leads back: to the account page, or to the home page of the
// application a verified ID token names. It works without JavaScript.
func TestLogoutConfirmationCancel(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	app := logoutClient(t, ts, "app", "", "")
	ts.addClient(t, clientspec.Spec{ID: "home", Secret: "home-secret", ClientSettings: storage.ClientSettings{
		RedirectURIs:           []string{webRedirect},
		GrantTypes:             []string{"authorization_code"},
		Scopes:                 []string{"openid"},
		ClientURI:              "https://home.example/start",
		PostLogoutRedirectURIs: []string{byeURI},
	}})
	homeRP := newRP(t, ts, "home", "home-secret", webRedirect, "openid")
	b := browserIn(ts, "en")
	signIn(t, ts, b, app)
	h := signIn(t, ts, b, homeRP)

	page := get(t, b, logoutURL(ts, nil))
	m := cancelLink.FindStringSubmatch(page.Body)
	if page.Status != http.StatusOK || m == nil || !strings.Contains(page.Body, "Cancel keeps you signed in.") {
		t.Fatalf("confirmation: HTTP %d, no Cancel link:\n%s", page.Status, page.Body)
	}
	if m[1] != "/account" {
		t.Errorf("Cancel without a hint leads to %q, want /account", m[1])
	}
	back := get(t, b, ts.URL+html.UnescapeString(m[1]))
	if back.Status != http.StatusOK || !strings.Contains(back.Body, "Alice Liddell") {
		t.Errorf("following Cancel: HTTP %d, want the account page, still signed in:\n%s", back.Status, back.Body)
	}
	if e := promptNone(t, b, app); e != "" {
		t.Errorf("after Cancel, prompt=none: %q, want still signed in", e)
	}
	// A verified hint with a return address not registered: confirmation,
	// and Cancel leads to the application's home page.
	page = get(t, b, logoutURL(ts, url.Values{"id_token_hint": {h.idToken}, "post_logout_redirect_uri": {"http://127.0.0.1:9/unregistered"}}))
	if m = cancelLink.FindStringSubmatch(page.Body); m == nil || html.UnescapeString(m[1]) != "https://home.example/start" {
		t.Errorf("Cancel with a verified hint: %v, want the client's home page:\n%s", m, page.Body)
	}
	// A bare client_id proves nothing: its home page is not linked.
	page = get(t, b, logoutURL(ts, url.Values{"client_id": {"home"}}))
	if m = cancelLink.FindStringSubmatch(page.Body); m == nil || m[1] != "/account" {
		t.Errorf("Cancel with only a client_id: %v, want /account", m)
	}
	// The script that goes back in history is a static file (the CSP
	// allows no inline script).
	js := get(t, b, ts.URL+"/static/logout-cancel.js")
	if js.Status != http.StatusOK || !strings.Contains(js.Body, "history.back") {
		t.Errorf("logout-cancel.js: HTTP %d", js.Status)
	}
	if !strings.Contains(page.Body, `<script src="/static/logout-cancel.js" defer></script>`) {
		t.Errorf("the confirmation does not load logout-cancel.js:\n%s", page.Body)
	}
	// German.
	de := get(t, copyBrowser(b, "de"), logoutURL(ts, nil))
	if !strings.Contains(de.Body, ">Abbrechen</a>") || !strings.Contains(html.UnescapeString(de.Body), "Mit „Abbrechen“ bleiben Sie angemeldet.") {
		t.Errorf("German confirmation lacks Abbrechen:\n%s", de.Body)
	}
}

// copyBrowser is b (its cookies) speaking lang.
func copyBrowser(b *providertest.Browser, lang string) *providertest.Browser {
	c := *b
	hc := *b.HTTP
	hc.Transport = acceptLanguage{lang, http.DefaultTransport}
	c.HTTP = &hc
	return &c
}
