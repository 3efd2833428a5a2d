package provider_test

// Issue 16: who must prove a second factor (mfa.required_for_groups, a
// client's require_mfa, acr_values=mfa, an essential acr claim), step-up
// of a session that proved only a password, and the password grant that
// must not be a way around the second factor.

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/providertest"
	"github.com/smallsso/provider/storage"
)

// reachedEnrolment checks that page is where showEnrolment leads: the
// enrolment of an authenticator app (a form posting to /login/enrol), not
// a redirect to the client, the login page or the second-factor page, and
// that no session exists yet.
func reachedEnrolment(t *testing.T, ts *testServer, b *providertest.Browser, page *providertest.Page, userID string) {
	t.Helper()
	if page.Location != nil {
		t.Fatalf("redirected to %v, want the enrolment", page.Location)
	}
	form, err := page.ParseForm()
	if page.Status != http.StatusOK || err != nil || form.Action != "/login/enrol" || form.Values.Has("password") {
		t.Fatalf("HTTP %d (%v), want the enrolment page: %.1500s", page.Status, err, page.Body)
	}
	if sessionCookieOf(b, ts.URL) != "" || len(userSessions(t, ts, userID)) != 0 {
		t.Fatal("a session before the enrolment")
	}
}

// completeEnrolment sets up the authenticator app on the enrolment page,
// saves the recovery codes, and returns the page Continue leads to.
func completeEnrolment(t *testing.T, b *providertest.Browser, page *providertest.Page, now time.Time) *providertest.Page {
	t.Helper()
	key, form := enrolPage(t, page)
	codes, err := b.Submit(context.Background(), page, form, url.Values{"code": {totpCode(t, key, now)}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(shownRecoveryCodes(codes.Body)); codes.Status != http.StatusOK || n != 10 {
		t.Fatalf("after the enrolment code: HTTP %d, %d recovery codes: %.1500s", codes.Status, n, codes.Body)
	}
	return submitCode(t, b, codes, nil)
}

// A client with require_mfa sends a person without a factor to enrolment
// after the password: no code, no session. Another client signs them in.
func TestRequireMFAClientSendsToEnrolment(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.addClient(t, clientspec.Spec{ID: "strict", Secret: "strict-secret-0123456789", ClientSettings: storage.ClientSettings{
		RedirectURIs: []string{webRedirect}, Scopes: []string{"openid"}, RequireMFA: true,
	}})
	strict := newRP(t, ts, "strict", "strict-secret-0123456789", webRedirect, "openid")
	b := providertest.NewBrowser(ts.URL)
	_, authURL := strict.start()
	page, err := b.SignInPage(context.Background(), authURL, "alice", alicePass, "allow")
	if err != nil {
		t.Fatal(err)
	}
	reachedEnrolment(t, ts, b, page, ts.alice.ID)

	// prompt=none for such a client with a password-only session: an
	// error to the client, never a page.
	b = providertest.NewBrowser(ts.URL)
	web := newRP(t, ts, "web", "web-secret", webRedirect, "openid")
	f, authURL := web.start()
	loc, err := b.SignIn(context.Background(), authURL, "alice", alicePass, "allow")
	if err != nil {
		t.Fatal(err)
	}
	if c := web.exchange(t, ts, f, loc); !slices.Equal(c.AMR, []string{"pwd"}) {
		t.Fatalf("web: amr %v", c.AMR)
	}
	_, authURL = strict.start(oauth2.SetAuthURLParam("prompt", "none"))
	res, err := b.Get(context.Background(), authURL)
	if err != nil {
		t.Fatal(err)
	}
	if res.Location == nil || res.Location.Query().Get("error") != "login_required" {
		t.Fatalf("prompt=none, require_mfa: HTTP %d %v, want login_required", res.Status, res.Location)
	}
	// Without prompt=none the same session steps up through the
	// enrolment: the ID token says mfa, and the sid stays.
	sid := userSessions(t, ts, ts.alice.ID)[0].SID
	f, authURL = strict.start()
	page, err = b.Get(context.Background(), authURL)
	if err != nil {
		t.Fatal(err)
	}
	if form, err := page.ParseForm(); err != nil || form.Action != "/login/enrol" {
		t.Fatalf("step-up without a factor: HTTP %d %v, want the enrolment: %.1500s", page.Status, page.Location, page.Body)
	}
	c := strict.exchange(t, ts, f, finish(t, b, completeEnrolment(t, b, page, time.Now())))
	if !slices.Equal(c.AMR, []string{"pwd", "otp", "mfa"}) || c.SID != sid {
		t.Errorf("after enrolling: amr %v sid %q, want [pwd otp mfa] and sid %q", c.AMR, c.SID, sid)
	}
	if ss := userSessions(t, ts, ts.alice.ID); len(ss) != 1 || !slices.Contains(ss[0].AMR, "mfa") {
		t.Errorf("sessions after the step-up: %+v", ss)
	}
}

// mfa.required_for_groups: a person in such a group and without a factor
// goes to enrolment, with one to the second factor; someone in no such
// group signs in with the password alone.
func TestMFARequiredForGroups(t *testing.T) {
	t.Parallel()
	ts, clock := mfaServer(t, func(c *provider.Config) { c.MFA.RequiredForGroups = []string{"admins"} })
	bob := storage.User{ID: "bob-" + randomString(), Username: "bob", PasswordHash: testHash(alicePass), Profile: storage.Profile{Groups: []string{"staff"}},
		CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := ts.Store.CreateUser(context.Background(), bob); err != nil {
		t.Fatal(err)
	}
	b := providertest.NewBrowser(ts.URL)
	page, err := b.SignInPage(context.Background(), webAuthURL(ts), "alice", alicePass, "allow")
	if err != nil {
		t.Fatal(err)
	}
	reachedEnrolment(t, ts, b, page, ts.alice.ID)
	// The account page's sign-in too.
	page, err = b.SignInPage(context.Background(), ts.URL+"/account", "alice", alicePass, "allow")
	if err != nil {
		t.Fatal(err)
	}
	reachedEnrolment(t, ts, b, page, ts.alice.ID)

	if loc, err := providertest.NewBrowser(ts.URL).SignIn(context.Background(), webAuthURL(ts), "bob", alicePass, "allow"); err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("bob (not in admins): %v %v", loc, err)
	}

	alice := enrolTOTP(t, ts, ts.alice)
	b = providertest.NewBrowser(ts.URL)
	page = toSecondFactor(t, b, webAuthURL(ts))
	if loc := finish(t, b, submitCode(t, b, page, url.Values{"code": {alice.code(t, clock.Now())}})); loc.Query().Get("code") == "" {
		t.Fatalf("alice with a factor: %v", loc)
	}
}

// acr_values=mfa steps up a session that proved only a password: the
// second-factor page (no password asked), then an ID token with acr mfa,
// a newer auth_time and the same sid, from a renewed session cookie. An
// essential acr claim of mfa does the same; prompt=none cannot.
func TestStepUpWithACRValues(t *testing.T) {
	t.Parallel()
	ts, clock := mfaServer(t)
	clock.Advance(-3 * time.Minute)
	rp := newRP(t, ts, "web", "web-secret", webRedirect, "openid")
	b := providertest.NewBrowser(ts.URL)
	f, authURL := rp.start()
	loc, err := b.SignIn(context.Background(), authURL, "alice", alicePass, "allow")
	if err != nil {
		t.Fatal(err)
	}
	first := rp.exchange(t, ts, f, loc)
	if !slices.Equal(first.AMR, []string{"pwd"}) || first.SID == "" {
		t.Fatalf("password sign-in: %+v", first)
	}
	oldCookie := sessionCookieOf(b, ts.URL)
	// acr_values listing password too accepts the password session (of
	// a person without a factor: one with a factor their session did not
	// prove steps up whatever the request says).
	f, authURL = rp.start(oauth2.SetAuthURLParam("acr_values", "password mfa"))
	page, err := b.Get(context.Background(), authURL)
	if err != nil {
		t.Fatal(err)
	}
	if c := rp.exchange(t, ts, f, finish(t, b, page)); c.ACR != "password" {
		t.Fatalf("acr_values=password mfa: acr %q", c.ACR)
	}

	alice := enrolTOTP(t, ts, ts.alice)
	clock.Advance(2 * time.Minute)

	essentialMFA := oauth2.SetAuthURLParam("claims", `{"id_token":{"acr":{"essential":true,"values":["mfa"]}}}`)
	for _, asks := range []oauth2.AuthCodeOption{acrMFA, essentialMFA} {
		_, authURL = rp.start(asks, oauth2.SetAuthURLParam("prompt", "none"))
		res, err := b.Get(context.Background(), authURL)
		if err != nil {
			t.Fatal(err)
		}
		if res.Location == nil || res.Location.Query().Get("error") != "login_required" {
			t.Fatalf("prompt=none with unmet mfa: HTTP %d %v, want login_required", res.Status, res.Location)
		}
	}
	f, authURL = rp.start(acrMFA)
	page, err = b.Get(context.Background(), authURL)
	if err != nil {
		t.Fatal(err)
	}
	if !isSecondFactorPage(page) || !strings.Contains(page.Body, "asks for a second factor") {
		t.Fatalf("step-up: HTTP %d %v, want the second-factor page: %.1500s", page.Status, page.Location, page.Body)
	}
	if sessionCookieOf(b, ts.URL) != oldCookie {
		t.Fatal("the session changed before the second factor")
	}
	stepped := rp.exchange(t, ts, f, finish(t, b, submitCode(t, b, page, url.Values{"code": {alice.code(t, clock.Now())}})))
	if stepped.ACR != "mfa" || !slices.Equal(stepped.AMR, []string{"pwd", "otp", "mfa"}) {
		t.Errorf("after the step-up: acr %q amr %v", stepped.ACR, stepped.AMR)
	}
	if stepped.AuthTime <= first.AuthTime {
		t.Errorf("auth_time %d after the step-up, was %d", stepped.AuthTime, first.AuthTime)
	}
	if stepped.SID != first.SID {
		t.Errorf("sid %q after the step-up, was %q", stepped.SID, first.SID)
	}
	newCookie := sessionCookieOf(b, ts.URL)
	if newCookie == "" || newCookie == oldCookie {
		t.Fatal("the session cookie was not renewed")
	}
	if ss := userSessions(t, ts, ts.alice.ID); len(ss) != 1 || !slices.Contains(ss[0].AMR, "mfa") {
		t.Fatalf("sessions after the step-up: %+v", ss)
	}
	// The old cookie is worth nothing now.
	old := providertest.NewBrowser(ts.URL)
	u, _ := url.Parse(ts.URL)
	old.HTTP.Jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: oldCookie, Path: "/"}})
	res, err := old.Get(context.Background(), webAuthURL(ts))
	if err != nil {
		t.Fatal(err)
	}
	if form, err := res.ParseForm(); err != nil || !form.Values.Has("password") {
		t.Fatalf("the pre-step-up cookie: HTTP %d %v, want the login page", res.Status, res.Location)
	}
	// The stepped-up session answers the next mfa request at once.
	f, authURL = rp.start(essentialMFA, oauth2.SetAuthURLParam("prompt", "none"))
	res, err = b.Get(context.Background(), authURL)
	if err != nil {
		t.Fatal(err)
	}
	if c := rp.exchange(t, ts, f, finish(t, b, res)); c.ACR != "mfa" || c.AuthTime != stepped.AuthTime {
		t.Errorf("after the step-up, prompt=none: acr %q auth_time %d", c.ACR, c.AuthTime)
	}
}

// A step-up whose session ended meanwhile (signed out in another tab)
// does not bring it back: the code is not even checked.
func TestStepUpAfterSignOut(t *testing.T) {
	t.Parallel()
	ts, clock := mfaServer(t)
	clock.Advance(-time.Minute)
	b := providertest.NewBrowser(ts.URL)
	if _, err := b.SignIn(context.Background(), webAuthURL(ts), "alice", alicePass, "allow"); err != nil {
		t.Fatal(err)
	}
	alice := enrolTOTP(t, ts, ts.alice)
	page, err := b.Get(context.Background(), webAuthURL(ts, acrMFA))
	if err != nil || !isSecondFactorPage(page) {
		t.Fatalf("step-up: %v %v", page, err)
	}
	for _, s := range userSessions(t, ts, ts.alice.ID) {
		if err := ts.Store.DeleteBrowserSession(context.Background(), s.ID); err != nil {
			t.Fatal(err)
		}
	}
	res := submitCode(t, b, page, url.Values{"code": {alice.code(t, clock.Now())}})
	if res.Status != http.StatusBadRequest || len(userSessions(t, ts, ts.alice.ID)) != 0 {
		t.Fatalf("step-up of an ended session: HTTP %d %v", res.Status, res.Location)
	}
	f, err := ts.Store.GetFactors(context.Background(), ts.alice.ID)
	if err != nil || f.TOTP.LastStep != 0 {
		t.Fatalf("the code was spent: %+v %v", f.TOTP, err)
	}
}

// The password grant cannot ask for a second factor, so it is refused
// (invalid_grant, saying why) to whoever owes one: a person with a factor,
// in a required group, or at a require_mfa client. A wrong password is
// refused as always, telling nothing about factors.
func TestPasswordGrantRefusedWhenMFAIsOwed(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	passwordClient(t, ts)
	if status, body := passwordGrant(t, ts, "alice", alicePass, "openid"); status != http.StatusOK {
		t.Fatalf("before enrolment: HTTP %d %v", status, body)
	}
	enrolTOTP(t, ts, ts.alice)
	status, body := passwordGrant(t, ts, "alice", alicePass, "openid")
	if desc, _ := body["error_description"].(string); status != http.StatusBadRequest || body["error"] != "invalid_grant" || !strings.Contains(desc, "second factor") {
		t.Fatalf("enrolled: HTTP %d %v, want invalid_grant about the second factor", status, body)
	}
	status, body = passwordGrant(t, ts, "alice", "wrong password", "openid")
	if desc, _ := body["error_description"].(string); status != http.StatusBadRequest || strings.Contains(desc, "second factor") {
		t.Fatalf("wrong password: HTTP %d %v", status, body)
	}

	groups := newTestServer(t, func(c *provider.Config) { c.MFA.RequiredForGroups = []string{"staff"} })
	passwordClient(t, groups)
	if status, body := passwordGrant(t, groups, "alice", alicePass, "openid"); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("required group: HTTP %d %v", status, body)
	}

	strict := newTestServer(t)
	strict.addClient(t, clientspec.Spec{ID: "legacy", Secret: "legacy-secret-0123456789",
		ClientSettings: storage.ClientSettings{GrantTypes: []string{"password"}, Scopes: []string{"openid"}, RequireMFA: true}})
	if status, body := passwordGrant(t, strict, "alice", alicePass, "openid"); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("require_mfa client: HTTP %d %v", status, body)
	}
}

// require_mfa is not registration metadata: /register and the RFC 7592
// update ignore it and do not echo it.
func TestRequireMFANeverThroughRegistration(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withRegistration(""))
	c := ts.register(t, webMetadata(map[string]any{"require_mfa": true}), "")
	if _, ok := c.Body["require_mfa"]; ok {
		t.Errorf("the registration response carries require_mfa: %v", c.Body)
	}
	if rec, err := ts.Store.GetClient(context.Background(), c.ID); err != nil || rec.RequireMFA {
		t.Fatalf("registration stored require_mfa %v (%v)", rec.RequireMFA, err)
	}
	status, _, body := sendJSON(t, http.MethodPut, c.URI, webMetadata(map[string]any{"client_id": c.ID, "require_mfa": true}), c.Token)
	if status != http.StatusOK {
		t.Fatalf("PUT: HTTP %d %v", status, body)
	}
	if _, ok := body["require_mfa"]; ok {
		t.Errorf("the update response carries require_mfa: %v", body)
	}
	if rec, err := ts.Store.GetClient(context.Background(), c.ID); err != nil || rec.RequireMFA {
		t.Fatalf("after PUT: require_mfa %v (%v)", rec.RequireMFA, err)
	}
}
