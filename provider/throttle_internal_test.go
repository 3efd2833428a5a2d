package provider

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fixedClock is a clock the test moves by hand.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fixedClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Many goroutines reserve at once: exactly the budget's worth get an
// attempt, and settling them races with new reservations.
func TestThrottleReserveRace(t *testing.T) {
	t.Parallel()
	clock := &fixedClock{t: time.Unix(1_800_000_000, 0)}
	th := newThrottle(clock.now)
	var granted atomic.Int32
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			if a, wait := th.reserveT(t, "Alice", "192.0.2.1"); a != nil {
				granted.Add(1)
				a.failed()
			} else if wait <= 0 {
				t.Error("refused without a wait")
			}
		})
	}
	wg.Wait()
	if n := granted.Load(); n != int32(pairBudget.burst) {
		t.Fatalf("%d attempts granted, want %d", n, pairBudget.burst)
	}
	// Successes and cancels from other sources settle concurrently with
	// more reservations; each source still gets at most its budget.
	granted.Store(0)
	for i := range 8 {
		wg.Go(func() {
			ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}).String()
			for j := range 10 {
				a, _ := th.reserveT(t, "alice", ip)
				if a == nil {
					continue
				}
				granted.Add(1)
				switch j % 3 {
				case 0:
					a.failed()
				case 1:
					a.cancel(t.Context())
				default:
					a.succeeded(t.Context())
				}
			}
		})
	}
	wg.Wait()
	if granted.Load() == 0 {
		t.Fatal("no attempt granted")
	}
}

func TestThrottleSettling(t *testing.T) {
	t.Parallel()
	clock := &fixedClock{t: time.Unix(1_800_000_000, 0)}
	th := newThrottle(clock.now)
	spend := func(user, ip string, n int) {
		t.Helper()
		for i := range n {
			a, wait := th.reserveT(t, user, ip)
			if a == nil {
				t.Fatalf("%s from %s, attempt %d: throttled for %v", user, ip, i+1, wait)
			}
			a.failed()
		}
	}
	wantWait := func(user, ip string, want time.Duration) {
		t.Helper()
		a, wait := th.reserveT(t, user, ip)
		if a != nil {
			a.cancel(t.Context())
		}
		if wait != want {
			t.Errorf("%s from %s: wait %v, want %v", user, ip, wait, want)
		}
	}

	// In-flight attempts hold their tokens; a cancel gives them back.
	var inFlight []*attempt
	for range 5 {
		a, _ := th.reserveT(t, "alice", "192.0.2.1")
		inFlight = append(inFlight, a)
	}
	wantWait("alice", "192.0.2.1", 10*time.Minute)
	for _, a := range inFlight {
		a.cancel(t.Context())
	}
	wantWait("alice", "192.0.2.1", 0)

	// Failures stay spent and refill one per interval; the username is
	// case- and space-insensitive.
	spend("alice", "192.0.2.1", 5)
	wantWait(" ALICE", "192.0.2.1", 10*time.Minute)
	clock.advance(time.Minute)
	wantWait("alice", "192.0.2.1", 9*time.Minute)
	clock.advance(9 * time.Minute)
	wantWait("alice", "192.0.2.1", 0)

	// A success forgives this source's failures and gives back the
	// account's token.
	spend("bob", "192.0.2.1", 4)
	a, _ := th.reserveT(t, "bob", "192.0.2.1")
	a.succeeded(t.Context())
	spend("bob", "192.0.2.1", 5)

	// IPv6 counts by /64.
	spend("carol", "2001:db8:1:2::1", 5)
	wantWait("carol", "2001:db8:1:2:ffff::9", 10*time.Minute)
	wantWait("carol", "2001:db8:1:3::1", 0)

	// The account budget: 30 from everywhere, then 10 minutes, except
	// from a source that signed in.
	a, _ = th.reserveT(t, "dave", "203.0.113.1")
	a.succeeded(t.Context())
	for i := range 6 {
		spend("dave", netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}).String(), 5)
	}
	wantWait("dave", "198.51.100.200", 10*time.Minute)
	wantWait("dave", "203.0.113.1", 0)
	clock.advance(knownSourceFor)
	wantWait("dave", "203.0.113.1", 0) // refilled by now anyway
	if got, _ := th.budgets.ReadBuckets(t.Context(), clock.now(), []string{throttleKnownPrefix + accountKey("dave") + "/203.0.113.1"}); !got[0].Missing() {
		t.Error("an expired known source was kept")
	}

	// The source budget: 50 across accounts.
	for i := range 10 {
		spend(string(rune('k'+i)), "192.0.2.99", 5)
	}
	wantWait("zed", "192.0.2.99", 20*time.Second)
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	trusted := &Provider{cfg: Config{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"),
	}}}
	none := &Provider{}
	for _, tc := range []struct {
		name   string
		p      *Provider
		remote string
		hdr    map[string][]string
		want   string
	}{
		{"no trusted proxies", none, "192.0.2.1:5000", map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, "192.0.2.1"},
		{"untrusted peer", trusted, "192.0.2.1:5000", map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, "192.0.2.1"},
		{"4in6 peer", none, "[::ffff:192.0.2.1]:5000", nil, "192.0.2.1"},
		{"no header", trusted, "10.0.0.1:5000", nil, "10.0.0.1"},
		{"xff", trusted, "10.0.0.1:5000", map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1"},
		{"xff from the right", trusted, "10.0.0.1:5000", map[string][]string{"X-Forwarded-For": {"203.0.113.5, 198.51.100.1, 10.1.1.1"}}, "198.51.100.1"},
		{"xff all trusted", trusted, "10.0.0.1:5000", map[string][]string{"X-Forwarded-For": {"10.2.2.2, 10.1.1.1"}}, "10.2.2.2"},
		{"xff lines", trusted, "10.0.0.1:5000", map[string][]string{"X-Forwarded-For": {"203.0.113.5", "198.51.100.1"}}, "198.51.100.1"},
		{"xff port", trusted, "10.0.0.1:5000", map[string][]string{"X-Forwarded-For": {"198.51.100.1:443"}}, "198.51.100.1"},
		{"xff ipv6", trusted, "[fd00::1]:5000", map[string][]string{"X-Forwarded-For": {"2001:db8::7"}}, "2001:db8::7"},
		{"xff bracketed ipv6 port", trusted, "10.0.0.1:5000", map[string][]string{"X-Forwarded-For": {"[2001:db8::7]:8080"}}, "2001:db8::7"},
		{"xff garbage", trusted, "10.0.0.1:5000", map[string][]string{"X-Forwarded-For": {"nonsense"}}, "10.0.0.1"},
		{"xff garbage behind a trusted hop", trusted, "10.0.0.1:5000", map[string][]string{"X-Forwarded-For": {"nonsense, 10.3.3.3"}}, "10.3.3.3"},
		{"xff empty", trusted, "10.0.0.1:5000", map[string][]string{"X-Forwarded-For": {""}}, "10.0.0.1"},
		{"xff zone", trusted, "10.0.0.1:5000", map[string][]string{"X-Forwarded-For": {"fe80::1%eth0"}}, "10.0.0.1"},
		{"forwarded", trusted, "10.0.0.1:5000", map[string][]string{"Forwarded": {"for=198.51.100.1;proto=https"}}, "198.51.100.1"},
		{"forwarded quoted ipv6 port", trusted, "10.0.0.1:5000", map[string][]string{"Forwarded": {`for="[2001:db8:cafe::17]:4711"`}}, "2001:db8:cafe::17"},
		{"forwarded case and spaces", trusted, "10.0.0.1:5000", map[string][]string{"Forwarded": {`proto=https; For = "198.51.100.1:80"`}}, "198.51.100.1"},
		{"forwarded list", trusted, "10.0.0.1:5000", map[string][]string{"Forwarded": {`for=203.0.113.5, for=198.51.100.1;by="[fd00::2]", for=10.9.9.9`}}, "198.51.100.1"},
		{"forwarded quoted comma", trusted, "10.0.0.1:5000", map[string][]string{"Forwarded": {`for=198.51.100.1;x="a,b", for=10.9.9.9`}}, "198.51.100.1"},
		{"forwarded unknown", trusted, "10.0.0.1:5000", map[string][]string{"Forwarded": {"for=unknown"}}, "10.0.0.1"},
		{"forwarded obfuscated", trusted, "10.0.0.1:5000", map[string][]string{"Forwarded": {`for="_gazonk"`}}, "10.0.0.1"},
		{"forwarded without for", trusted, "10.0.0.1:5000", map[string][]string{"Forwarded": {"proto=https"}}, "10.0.0.1"},
		{"forwarded unterminated quote", trusted, "10.0.0.1:5000", map[string][]string{"Forwarded": {`for="198.51.100.1`}}, "10.0.0.1"},
		{"both headers", trusted, "10.0.0.1:5000", map[string][]string{"X-Forwarded-For": {"198.51.100.1"}, "Forwarded": {"for=198.51.100.2"}}, "10.0.0.1"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		for k, v := range tc.hdr {
			r.Header[k] = v
		}
		if got := tc.p.clientIP(r); got != tc.want {
			t.Errorf("%s: clientIP = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func FuzzClientIP(f *testing.F) {
	f.Add("198.51.100.1, 10.0.0.2", `for="[2001:db8::1]:80";proto=https, for=10.0.0.3`)
	f.Add("", `for="\"`)
	p := &Provider{cfg: Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}
	f.Fuzz(func(t *testing.T, xff, fwd string) {
		for _, hdr := range []map[string][]string{{"X-Forwarded-For": {xff}}, {"Forwarded": {fwd}}} {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = "10.0.0.1:1234"
			for k, v := range hdr {
				r.Header[k] = v
			}
			got := p.clientIP(r)
			if _, err := netip.ParseAddr(got); err != nil {
				t.Fatalf("clientIP = %q, not an address", got)
			}
		}
	})
}

// One patient address guessing as fast as its own budget allows never
// empties the account's: the owner can still sign in from a new place
// (not only from the places that are exempt).
func TestThrottleOneSourceCannotDrainAccount(t *testing.T) {
	t.Parallel()
	clock := &fixedClock{t: time.Unix(1_800_000_000, 0)}
	th := newThrottle(clock.now)
	for range 24 * 6 { // a day, at the pair's refill rate
		for {
			a, _ := th.reserveT(t, "erin", "198.51.100.7")
			if a == nil {
				break
			}
			a.failed()
		}
		if a, wait := th.reserveT(t, "erin", "203.0.113.50"); a == nil {
			t.Fatalf("owner at a new address refused after %v: wait %v", clock.t.Sub(time.Unix(1_800_000_000, 0)), wait)
		} else {
			a.cancel(t.Context())
		}
		clock.advance(pairBudget.interval)
	}
}

// A password change forgets the places the account signed in from: they
// are subject to the account budget again.
func TestThrottleForgetKnownSources(t *testing.T) {
	t.Parallel()
	clock := &fixedClock{t: time.Unix(1_800_000_000, 0)}
	th := newThrottle(clock.now)
	a, _ := th.reserveT(t, "Frank", "203.0.113.1")
	a.succeeded(t.Context())
	for i := range 6 {
		src := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}).String()
		for range 5 {
			if a, _ := th.reserveT(t, "frank", src); a != nil {
				a.failed()
			}
		}
	}
	if a, _ := th.reserveT(t, "frank", "203.0.113.1"); a == nil {
		t.Fatal("known source refused before the password change")
	} else {
		a.cancel(t.Context())
	}
	th.forgetKnownSources(t.Context(), " FRANK")
	if a, _ := th.reserveT(t, "frank", "203.0.113.1"); a != nil {
		t.Error("a forgotten source is still exempt from the spent account budget")
	}
}

// A long username costs the budgets no more than a short one.
func TestThrottleKeysAreBounded(t *testing.T) {
	t.Parallel()
	th := newThrottle(time.Now)
	a, _ := th.reserveT(t, strings.Repeat("u", 64<<10), "192.0.2.1")
	a.failed()
	for _, name := range a.names {
		if len(name) > 128 {
			t.Errorf("record name of %d bytes", len(name))
		}
	}
	// So does an address that is not one.
	a, _ = th.reserveT(t, "u", strings.Repeat("\x00", 64<<10))
	for _, name := range a.names {
		if len(name) > 128 || strings.ContainsRune(name, 0) {
			t.Errorf("record name %.40q of %d bytes", name, len(name))
		}
	}
}

// reserveT is reserve where the budgets are in memory and cannot fail.
func (th *throttle) reserveT(t testing.TB, username, ip string) (*attempt, time.Duration) {
	a, wait, err := th.reserve(t.Context(), username, ip)
	if err != nil {
		t.Error(err)
	}
	return a, wait
}

// ForgetKnownSources is what a password change does to the throttle,
// for a CLI that changes a password without a provider.
func TestForgetKnownSourcesExported(t *testing.T) {
	t.Parallel()
	clock := &fixedClock{t: time.Unix(1_800_000_000, 0)}
	th := newThrottle(clock.now)
	a, _ := th.reserveT(t, "gina", "203.0.113.1")
	a.succeeded(t.Context())
	known := []string{throttleKnownPrefix + accountKey("gina") + "/203.0.113.1"}
	if got, _ := th.budgets.ReadBuckets(t.Context(), clock.now(), known); got[0].Missing() {
		t.Fatal("the source was not remembered")
	}
	if err := ForgetKnownSources(t.Context(), th.budgets, "Gina "); err != nil {
		t.Fatal(err)
	}
	if got, _ := th.budgets.ReadBuckets(t.Context(), clock.now(), known); !got[0].Missing() {
		t.Error("the source is still known")
	}
}
