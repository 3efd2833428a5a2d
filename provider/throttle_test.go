package provider_test

// The sign-in throttle over HTTP: guesses sent in parallel get no more
// checks than guesses sent one by one, each (account, source) pair has
// its own budget so an attacker cannot lock the owner out from elsewhere,
// and trusted_proxies decides when forwarded headers name the source.
// Sources are real loopback addresses (127.0.0.2, 127.0.0.3, …) the test
// dials from.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/providertest"
)

// The (account, source) budget: 5 checks in a row.
const pairBudget = 5

// clientFrom is an HTTP client whose connections come from the loopback
// address src.
func clientFrom(t *testing.T, src string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	tr := &http.Transport{DialContext: d.DialContext, MaxConnsPerHost: 0}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// browserFrom is a browser whose connections come from src.
func browserFrom(t *testing.T, ts *testServer, src string) *providertest.Browser {
	b := providertest.NewBrowser(ts.URL)
	b.HTTP.Transport = clientFrom(t, src).Transport
	return b
}

// grantAnswer is the token endpoint's answer to a password grant.
type grantAnswer struct {
	status int
	body   map[string]any
}

func (a grantAnswer) throttled() bool {
	desc, _ := a.body["error_description"].(string)
	return a.status == http.StatusBadRequest && a.body["error"] == "invalid_grant" && strings.Contains(desc, "Try again in")
}

func (a grantAnswer) refused() bool {
	return a.status == http.StatusBadRequest && a.body["error"] == "invalid_grant" && !a.throttled()
}

func (a grantAnswer) ok() bool { return a.status == http.StatusOK && a.body["access_token"] != nil }

func (a grantAnswer) String() string { return fmt.Sprintf("HTTP %d %v", a.status, a.body) }

// grantVia sends a password grant for alice-or-whoever through c, with
// extra request headers (forwarded ones, say).
func grantVia(t *testing.T, ts *testServer, c *http.Client, hdr http.Header, username, password string) grantAnswer {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}, "scope": {"openid"}}
	req, err := http.NewRequest(http.MethodPost, ts.URL+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Error(err)
		return grantAnswer{}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("legacy", "legacy-secret-0123456789")
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Error(err)
		return grantAnswer{}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := grantAnswer{status: resp.StatusCode}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Errorf("HTTP %d, body is not JSON: %q", resp.StatusCode, raw)
	}
	return a
}

// guesses is n passwords, all wrong but one at a random place.
func guesses(n int) []string {
	pw := make([]string, n)
	for i := range pw {
		pw[i] = fmt.Sprintf("guess %d", i)
	}
	pw[rand.IntN(n)] = alicePass
	return pw
}

// Forty guesses sent at once through the password grant: at most the
// budget's worth is checked; the rest are throttled before any hash, the
// right password among them included.
func TestThrottleParallelPasswordGrant(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	passwordClient(t, ts)
	c := clientFrom(t, "127.0.0.2")

	pw := guesses(40)
	answers := make([]grantAnswer, len(pw))
	var wg sync.WaitGroup
	for i, p := range pw {
		wg.Go(func() { answers[i] = grantVia(t, ts, c, nil, "alice", p) })
	}
	wg.Wait()
	checked := 0
	for i, a := range answers {
		switch {
		case a.throttled():
		case a.refused() && pw[i] != alicePass, a.ok() && pw[i] == alicePass:
			checked++
		default:
			t.Errorf("guess %q: unexpected answer %v", pw[i], a)
		}
	}
	if checked > pairBudget {
		t.Errorf("%d of %d parallel guesses were checked, want at most %d", checked, len(pw), pairBudget)
	}
	if checked == 0 {
		t.Error("no guess was checked at all")
	}
}

// Forty guesses posted at once to the login form: the same budget, the
// same answer (the page, 429, "try again in N minutes").
func TestThrottleParallelLoginForm(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	b := browserFrom(t, ts, "127.0.0.2")
	page, err := b.Get(ctx, webAuthURL(ts))
	if err != nil {
		t.Fatal(err)
	}
	form, err := page.ParseForm()
	if err != nil {
		t.Fatal(err)
	}

	pw := guesses(40)
	pages := make([]*providertest.Page, len(pw))
	var wg sync.WaitGroup
	for i, p := range pw {
		wg.Go(func() {
			res, err := b.Submit(ctx, page, form, url.Values{"username": {"alice"}, "password": {p}})
			if err != nil {
				t.Error(err)
				return
			}
			pages[i] = res
		})
	}
	wg.Wait()
	checked := 0
	for i, res := range pages {
		if res == nil {
			continue
		}
		switch {
		case res.Status == http.StatusTooManyRequests && strings.Contains(res.Body, "Too many failed sign-ins. Try again in 10 minutes."):
		case res.Status == http.StatusUnauthorized && pw[i] != alicePass:
			checked++
		case res.Status != http.StatusUnauthorized && res.Status != http.StatusTooManyRequests && pw[i] == alicePass:
			checked++ // signed in: on to the consent page
		default:
			t.Errorf("guess %q: HTTP %d: %.300s", pw[i], res.Status, res.Body)
		}
	}
	if checked > pairBudget {
		t.Errorf("%d of %d parallel sign-ins were checked, want at most %d", checked, len(pw), pairBudget)
	}
	if checked == 0 {
		t.Error("no sign-in was checked at all")
	}
}

// An attacker who knows the username and guesses from one address locks
// that address out, not the owner, who signs in from another.
func TestThrottleAttackerCannotLockOutOwner(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	passwordClient(t, ts)
	attacker := clientFrom(t, "127.0.0.2")
	for i := range pairBudget + 5 {
		a := grantVia(t, ts, attacker, nil, "alice", fmt.Sprintf("guess %d", i))
		if want := i >= pairBudget; a.throttled() != want || !(a.refused() || a.throttled()) {
			t.Fatalf("attacker's guess %d: %v (throttled: want %v)", i+1, a, want)
		}
	}
	if a := grantVia(t, ts, attacker, nil, "alice", alicePass); !a.throttled() {
		t.Fatalf("the attacker's address is not throttled: %v", a)
	}

	owner := clientFrom(t, "127.0.0.3")
	if a := grantVia(t, ts, owner, nil, "alice", alicePass); !a.ok() {
		t.Fatalf("owner from another address, password grant: %v", a)
	}
	r := newRP(t, ts, "web", "web-secret", webRedirect, "openid")
	page, err := browserFrom(t, ts, "127.0.0.4").SignInPage(context.Background(), r.oauth2.AuthCodeURL("s"), "alice", alicePass, "allow")
	if err != nil {
		t.Fatal(err)
	}
	if page.Location == nil || page.Location.Query().Get("code") == "" {
		t.Fatalf("owner from another address, login page: HTTP %d: %.300s", page.Status, page.Body)
	}
}

// Guesses spread over many addresses empty the account's own budget:
// then a new address waits, but an address the owner signed in from
// still works.
func TestThrottleAccountBudgetSparesKnownSources(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	passwordClient(t, ts)
	home := clientFrom(t, "127.0.0.3")
	if a := grantVia(t, ts, home, nil, "alice", alicePass); !a.ok() {
		t.Fatalf("owner at home: %v", a)
	}
	// 7 addresses × 5 guesses spend more than the account's 30.
	refused := 0
	for n := range 7 {
		c := clientFrom(t, fmt.Sprintf("127.0.1.%d", n+1))
		for i := range pairBudget {
			switch a := grantVia(t, ts, c, nil, "alice", fmt.Sprintf("guess %d.%d", n, i)); {
			case a.refused():
				refused++
			case !a.throttled():
				t.Fatalf("guess %d from 127.0.1.%d: %v", i, n+1, a)
			}
		}
	}
	if refused != 30 {
		t.Errorf("%d guesses were checked, want the account budget's 30", refused)
	}
	a := grantVia(t, ts, clientFrom(t, "127.0.2.1"), nil, "alice", alicePass)
	desc, _ := a.body["error_description"].(string)
	if !a.throttled() || !strings.Contains(desc, "Try again in 10 minutes.") {
		t.Errorf("new address after the account budget is spent: %v", a)
	}
	if a := grantVia(t, ts, home, nil, "alice", alicePass); !a.ok() {
		t.Errorf("owner at home after the attack: %v", a)
	}
}

// "Try again in 1 minute" is singular, on the page in English and German
// and at the token endpoint.
func TestThrottleMessageSingular(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	ts := newTestServerDeps(t, func(d *provider.Deps) { d.Now = clock.Now })
	passwordClient(t, ts)
	// The guesses were nine and a half minutes ago, so half a minute is
	// left to wait. (The clock goes back, not forward: fosite checks
	// authentication times against its own.)
	clock.Advance(-9*time.Minute - 30*time.Second)
	for i := range pairBudget {
		if a := grantVia(t, ts, http.DefaultClient, nil, "alice", fmt.Sprintf("guess %d", i)); !a.refused() {
			t.Fatalf("guess %d: %v", i, a)
		}
	}
	clock.Advance(9*time.Minute + 30*time.Second)
	a := grantVia(t, ts, http.DefaultClient, nil, "alice", alicePass)
	if desc, _ := a.body["error_description"].(string); !a.throttled() || !strings.Contains(desc, "Try again in 1 minute.") {
		t.Errorf("token endpoint: %v", a)
	}
	for lang, want := range map[string]string{
		"en": "Too many failed sign-ins. Try again in 1 minute.",
		"de": "Zu viele fehlgeschlagene Anmeldungen. Versuchen Sie es in 1 Minute erneut.",
	} {
		b := providertest.NewBrowser(ts.URL)
		page, err := b.Get(context.Background(), webAuthURL(ts)+"&ui_locales="+lang)
		if err != nil {
			t.Fatal(err)
		}
		form, err := page.ParseForm()
		if err != nil {
			t.Fatalf("%v: HTTP %d %v %.2000s", err, page.Status, page.Location, page.Body)
		}
		res, err := b.Submit(context.Background(), page, form, url.Values{"username": {"alice"}, "password": {alicePass}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != http.StatusTooManyRequests || !strings.Contains(res.Body, want) {
			t.Errorf("%s page: HTTP %d, want 429 with %q:\n%.600s", lang, res.Status, want, res.Body)
		}
	}
}

// Without trusted_proxies a forwarded header is the client's say-so and
// changes nothing: five spoofed addresses are still one source.
func TestTrustedProxiesDefaultIgnoresForwardedHeaders(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	passwordClient(t, ts)
	for i := range pairBudget {
		hdr := http.Header{"X-Forwarded-For": {fmt.Sprintf("192.0.2.%d", i+1)}, "Forwarded": {fmt.Sprintf("for=198.51.100.%d", i+1)}}
		if a := grantVia(t, ts, http.DefaultClient, hdr, "alice", "guess"); !a.refused() {
			t.Fatalf("guess %d: %v", i+1, a)
		}
	}
	if a := grantVia(t, ts, http.DefaultClient, http.Header{"X-Forwarded-For": {"203.0.113.9"}}, "alice", alicePass); !a.throttled() {
		t.Errorf("a new X-Forwarded-For escaped the throttle: %v", a)
	}
}

// Behind a trusted proxy each forwarded client has its own budget, named
// by X-Forwarded-For or Forwarded (quoted IPv6 with a port included);
// an address the header cannot tell falls back to the proxy's.
func TestTrustedProxiesSeparateBudgets(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *provider.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	passwordClient(t, ts)
	proxy := http.DefaultClient // the test is the proxy, at 127.0.0.1
	xff := func(v string) http.Header { return http.Header{"X-Forwarded-For": {v}} }
	fwd := func(v string) http.Header { return http.Header{"Forwarded": {v}} }
	exhaust := func(hdr http.Header) {
		t.Helper()
		for i := range pairBudget {
			if a := grantVia(t, ts, proxy, hdr, "alice", "guess"); !a.refused() {
				t.Fatalf("%v, guess %d: %v", hdr, i+1, a)
			}
		}
	}
	wantThrottled := func(hdr http.Header, want bool) {
		t.Helper()
		if a := grantVia(t, ts, proxy, hdr, "alice", alicePass); a.throttled() != want || (!want && !a.ok()) {
			t.Errorf("%v: %v, want throttled %v", hdr, a, want)
		}
	}

	// X-Forwarded-For, read from the right past trusted hops.
	exhaust(xff("192.0.2.1"))
	wantThrottled(xff("192.0.2.1"), true)
	wantThrottled(xff("198.51.100.7, 192.0.2.1"), true)                                 // what the client claims to the left is no matter
	wantThrottled(xff("192.0.2.1, 127.0.0.9"), true)                                    // a second trusted proxy is skipped
	wantThrottled(http.Header{"X-Forwarded-For": {"10.9.9.9", "192.0.2.1:4711"}}, true) // two header lines, a port
	wantThrottled(xff("192.0.2.2"), false)

	// Forwarded, quoted IPv6 with a port; IPv6 counts by /64.
	exhaust(fwd(`for="[2001:db8:cafe::17]:4711";proto=https`))
	wantThrottled(fwd(`For="[2001:db8:cafe::99]"`), true)
	wantThrottled(fwd(`for=192.0.2.200, for="[2001:db8:cafe::17]";by=127.0.0.1`), true)
	wantThrottled(fwd(`for="[2001:db8:beef::1]:80"`), false)
	wantThrottled(fwd(`for=192.0.2.1`), true) // one client, either header

	// Malformed or both headers: the proxy's own address, one shared
	// budget (never one the client picks).
	exhaust(xff("not an address"))
	wantThrottled(xff("also, garbage"), true)
	wantThrottled(fwd(`for=unknown`), true)
	wantThrottled(fwd(`for="_hidden"`), true)
	wantThrottled(fwd(`proto=https`), true)
	wantThrottled(http.Header{"X-Forwarded-For": {"192.0.2.77"}, "Forwarded": {"for=192.0.2.78"}}, true)
	wantThrottled(nil, true)
	wantThrottled(xff("192.0.2.3"), false)
}

// A peer that is not a trusted proxy is itself the client, whatever it
// forwards.
func TestTrustedProxiesOnlyFromTrustedPeers(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *provider.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	passwordClient(t, ts)
	untrusted := clientFrom(t, "127.0.0.5")
	for i := range pairBudget {
		hdr := http.Header{"X-Forwarded-For": {fmt.Sprintf("192.0.2.%d", i+1)}}
		if a := grantVia(t, ts, untrusted, hdr, "alice", "guess"); !a.refused() {
			t.Fatalf("guess %d: %v", i+1, a)
		}
	}
	if a := grantVia(t, ts, untrusted, http.Header{"X-Forwarded-For": {"203.0.113.9"}}, "alice", alicePass); !a.throttled() {
		t.Errorf("an untrusted peer's X-Forwarded-For escaped the throttle: %v", a)
	}
}
