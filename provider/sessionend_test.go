package provider_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/smallsso/provider/provider/admin"
	"github.com/smallsso/provider/provider/providertest"
	"github.com/smallsso/provider/storage"
)

// refreshFails asserts a client's refresh token no longer works.
func refreshFails(t *testing.T, ts *testServer, clientID, refreshToken, what string) {
	t.Helper()
	status, _, body := postForm(t, ts.URL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}, clientID, clientID+"-secret")
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("%s: refresh answered HTTP %d %v, want 400 invalid_grant", what, status, body)
	}
}

func refreshWorks(t *testing.T, ts *testServer, clientID, refreshToken, what string) {
	t.Helper()
	status, _, body := postForm(t, ts.URL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}, clientID, clientID+"-secret")
	if status != http.StatusOK {
		t.Errorf("%s: refresh answered HTTP %d %v, want 200", what, status, body)
	}
}

// A password change on the account page ends the person's other browser
// sessions (their clients told over the back channel) and revokes every
// refresh token, with its access token; the browser that changed it stays
// signed in.
func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	bc := newBackchannelRP(t, 0)
	app := logoutClient(t, ts, "app", bc.srv.URL+"/bc", "")

	here := providertest.NewBrowser(ts.URL)
	elsewhere := providertest.NewBrowser(ts.URL)
	mine := signIn(t, ts, here, app)
	theirs := signIn(t, ts, elsewhere, app)
	// The elsewhere browser also holds an access token issued with its
	// refresh token.
	status, _, fresh := postForm(t, ts.URL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {theirs.refresh}}, "app", "app-secret")
	if status != http.StatusOK {
		t.Fatalf("refresh before the change: HTTP %d %v", status, fresh)
	}
	theirRefresh, _ := fresh["refresh_token"].(string)
	theirAccess, _ := fresh["access_token"].(string)
	if active, _ := ts.introspect(t, theirAccess)["active"].(bool); !active {
		t.Fatal("fresh access token inactive before the change")
	}

	// The account page of the first browser: already signed in.
	if page := get(t, here, ts.URL+"/account"); !strings.Contains(page.Body, "Alice Liddell") {
		t.Fatalf("account page not signed in:\n%s", page.Body)
	}
	status2, body := postAccountForm(t, here, ts.URL+"/account/password", url.Values{"current": {alicePass}, "new": {"a brand new passphrase"}, "confirm": {"a brand new passphrase"}})
	if status2 != http.StatusOK || !strings.Contains(body, "You were signed out on every other device") {
		t.Fatalf("change: HTTP %d, want the notice that other sessions ended:\n%s", status2, body)
	}

	// The other browser is signed out: a sign-in request shows the login
	// form, and a silent one fails.
	if e := promptNone(t, elsewhere, app); e != "login_required" {
		t.Errorf("prompt=none in the other browser after the change: %q, want login_required", e)
	}
	page := get(t, elsewhere, app.oauth2.AuthCodeURL("s"))
	if page.Status != http.StatusOK || !strings.Contains(page.Body, `name="password"`) {
		t.Errorf("authorize in the other browser: HTTP %d, want the sign-in form:\n%s", page.Status, page.Body)
	}
	// Every refresh token is gone, this browser's too, and the access
	// token issued with one.
	refreshFails(t, ts, "app", theirRefresh, "the other browser's refresh token")
	refreshFails(t, ts, "app", mine.refresh, "this browser's refresh token")
	if active, _ := ts.introspect(t, theirAccess)["active"].(bool); active {
		t.Error("the access token issued with a revoked refresh token is still active")
	}
	// The client of the ended session was told, with that session's sid.
	forms, _ := bc.received()
	if len(forms) != 1 {
		t.Fatalf("back-channel logouts: %d, want 1 (the other session)", len(forms))
	}
	if lt := jwtClaims(t, forms[0].Get("logout_token")); lt["sid"] != theirs.claims["sid"] {
		t.Errorf("logout token sid %v, want the other session's %v", lt["sid"], theirs.claims["sid"])
	}
	// This browser stays signed in: a silent sign-in works, with the
	// session's sid kept.
	if e := promptNone(t, here, app); e != "" {
		t.Errorf("prompt=none in the browser that changed the password: %q, want success", e)
	}
	again := signIn(t, ts, here, app)
	if again.claims["sid"] != mine.claims["sid"] {
		t.Errorf("sid after the change %v, want the session's %v", again.claims["sid"], mine.claims["sid"])
	}
	refreshWorks(t, ts, "app", again.refresh, "a refresh token issued after the change")
}

// The German account page says the same.
func TestPasswordChangeNoticeGerman(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	b, _ := accountBrowser(t, ts)
	b.HTTP.Transport = acceptLanguage{"de", http.DefaultTransport}
	status, body := postAccountForm(t, b, ts.URL+"/account/password", url.Values{"current": {alicePass}, "new": {"a brand new passphrase"}, "confirm": {"a brand new passphrase"}})
	if status != http.StatusOK || !strings.Contains(body, "Sie wurden auf allen anderen Geräten abgemeldet") {
		t.Fatalf("change in German: HTTP %d:\n%s", status, body)
	}
}

// acceptLanguage sets Accept-Language on every request.
type acceptLanguage struct {
	lang string
	next http.RoundTripper
}

func (a acceptLanguage) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Accept-Language", a.lang)
	return a.next.RoundTrip(r)
}

// An admin setting the password (the CLI's LocalAdmin, also behind the
// admin socket) ends every session and refresh token of the person.
func TestAdminSetPasswordEndsSessions(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	app := logoutClient(t, ts, "app", "", "")
	b := providertest.NewBrowser(ts.URL)
	s := signIn(t, ts, b, app)
	var told []storage.BrowserSession
	adm := &admin.Local{Store: ts.Store, SessionsEnded: func(_ context.Context, ss []storage.BrowserSession) { told = append(told, ss...) }}
	if err := adm.SetPassword(context.Background(), "alice", "set by the admin"); err != nil {
		t.Fatal(err)
	}
	if e := promptNone(t, b, app); e != "login_required" {
		t.Errorf("prompt=none after the admin set the password: %q, want login_required", e)
	}
	refreshFails(t, ts, "app", s.refresh, "refresh token after the admin set the password")
	if len(told) != 1 || told[0].SID != s.claims["sid"] {
		t.Errorf("sessions reported ended: %+v, want the one with sid %v", told, s.claims["sid"])
	}
}

// A relying party's server (no browser, no cookie) sends the person's ID
// token to /logout, as oauth2-proxy's backend logout does: the session the
// token's sid names ends, its tokens are revoked, its clients told.
func TestServerLogoutWithIDTokenHint(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	bc := newBackchannelRP(t, 0)
	app := logoutClient(t, ts, "app", bc.srv.URL+"/bc", "")
	other := logoutClient(t, ts, "other", "", "")

	b := providertest.NewBrowser(ts.URL)
	s := signIn(t, ts, b, app)
	sOther := signIn(t, ts, b, other) // same session, another client
	// Another browser of the same person: a session of its own, untouched.
	b2 := providertest.NewBrowser(ts.URL)
	s2 := signIn(t, ts, b2, app)

	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).
		Get(logoutURL(ts, url.Values{"id_token_hint": {s.idToken}}))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("server logout: HTTP %d, want 200 (the signed-out page, as today)", resp.StatusCode)
	}
	if e := promptNone(t, b, app); e != "login_required" {
		t.Errorf("prompt=none in the browser after the server logout: %q, want login_required", e)
	}
	refreshFails(t, ts, "app", s.refresh, "the session's refresh token")
	refreshFails(t, ts, "other", sOther.refresh, "the session's other client's refresh token")
	if forms, _ := bc.received(); len(forms) != 1 || jwtClaims(t, forms[0].Get("logout_token"))["sid"] != s.claims["sid"] {
		t.Errorf("back-channel logouts %v, want one for the session", forms)
	}
	// The other session and its token live on.
	if e := promptNone(t, b2, app); e != "" {
		t.Errorf("prompt=none in the other browser: %q, want success", e)
	}
	refreshWorks(t, ts, "app", s2.refresh, "the other session's refresh token")
}

// A forged or expired hint sent without a cookie ends nothing.
func TestServerLogoutBadHintEndsNothing(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	app := logoutClient(t, ts, "app", "", "")
	b := providertest.NewBrowser(ts.URL)
	s := signIn(t, ts, b, app)
	claims := s.claims

	// Forged: the same claims signed by a key of our own.
	forged := signWithProvider(t, ts, claims, true)
	// Expired: the same claims, exp in the past, signed by the provider.
	expired := map[string]any{}
	for k, v := range claims {
		expired[k] = v
	}
	expired["iat"] = time.Now().Add(-2 * time.Hour).Unix()
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	expiredToken := signWithProvider(t, ts, expired, false)

	for name, hint := range map[string]string{"forged": forged, "expired": expiredToken} {
		resp, err := http.Get(logoutURL(ts, url.Values{"id_token_hint": {hint}}))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Errorf("%s hint: HTTP %d", name, resp.StatusCode)
		}
		if e := promptNone(t, b, app); e != "" {
			t.Errorf("%s hint ended the session: prompt=none %q", name, e)
		}
	}
	refreshWorks(t, ts, "app", s.refresh, "refresh token after bad hints")

	// The same claims, validly signed and unexpired, do end it: the
	// refusals above were for the forgery and the expiry.
	live := map[string]any{}
	for k, v := range claims {
		live[k] = v
	}
	live["exp"] = time.Now().Add(time.Hour).Unix()
	resp, err := http.Get(logoutURL(ts, url.Values{"id_token_hint": {signWithProvider(t, ts, live, false)}}))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if e := promptNone(t, b, app); e != "login_required" {
		t.Errorf("a valid hint did not end the session: prompt=none %q", e)
	}
}

// signWithProvider signs claims as an ID token with the provider's
// active RS256 key, or, with forge, with a stranger's key under the same
// kid.
func signWithProvider(t *testing.T, ts *testServer, claims map[string]any, forge bool) string {
	t.Helper()
	k, err := ts.Keys.Active("RS256")
	if err != nil {
		t.Fatal(err)
	}
	var key any = k.Signer
	if forge {
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
	}
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.ID)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// A password change racing with refreshes: whatever refresh token a
// client ends up holding, none works once the change has returned, so a
// refresh in flight cannot outlive the revocation.
func TestPasswordChangeRacesRefresh(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	passwordClient(t, ts)
	const clients = 4
	start := make([]string, clients)
	for i := range start {
		status, body := passwordGrant(t, ts, "alice", alicePass, "openid")
		rt, _ := body["refresh_token"].(string)
		if status != http.StatusOK || rt == "" {
			t.Fatalf("password grant: HTTP %d %v", status, body)
		}
		start[i] = rt
	}
	refresh := func(rt string) (string, bool) {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("legacy", "legacy-secret-0123456789")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return rt, false
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		next, _ := body["refresh_token"].(string)
		return next, resp.StatusCode == http.StatusOK && next != ""
	}
	stop := make(chan struct{})
	held := make([]string, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			rt := start[i]
			defer func() { held[i] = rt }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				next, ok := refresh(rt)
				if !ok {
					return
				}
				rt = next
			}
		})
	}
	adm := &admin.Local{Store: ts.Store}
	err := adm.SetPassword(context.Background(), "alice", "changed while refreshing")
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	for i, rt := range held {
		if _, ok := refresh(rt); ok {
			t.Errorf("client %d: its refresh token still works after the password change", i)
		}
	}
}
