package provider

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// throttle limits failed password checks per account and per client IP,
// shared by the login page and the password grant, so neither is a side
// door for guessing. Each key has a token bucket: a failure spends a
// token, tokens come back at a steady rate, and an empty bucket refuses
// attempts (without hashing) until one has come back.
//
// The state is in memory: a restart forgives, and replicas each count
// their own. That is the usual trade for small deployments; the argon2id
// cost still bounds a distributed attacker.
type throttle struct {
	now func() time.Time

	mu       sync.Mutex
	accounts map[string]*rate.Limiter
	ips      map[string]*rate.Limiter
}

// Budgets: 5 failures in a row per account, then one more every 3 minutes;
// an office behind one NAT address gets 50, then one every 20 seconds.
const (
	accountBurst    = 5
	accountInterval = 3 * time.Minute
	ipBurst         = 50
	ipInterval      = 20 * time.Second
	throttleMaxKeys = 100_000
)

func newThrottle(now func() time.Time) *throttle {
	return &throttle{now: now, accounts: map[string]*rate.Limiter{}, ips: map[string]*rate.Limiter{}}
}

// wait is how long the account or the IP must wait before the next
// attempt; zero means go ahead.
func (t *throttle) wait(username, ip string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	return max(waitFor(t.accounts[accountKey(username)], accountInterval, now), waitFor(t.ips[ip], ipInterval, now))
}

// failed records a failed attempt against both keys.
func (t *throttle) failed(username, ip string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	spend(t.accounts, accountKey(username), accountInterval, accountBurst, now)
	spend(t.ips, ip, ipInterval, ipBurst, now)
}

// succeeded forgives the account's failures; the IP's stay, so one good
// password does not reset a spray across many accounts.
func (t *throttle) succeeded(username string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.accounts, accountKey(username))
}

func accountKey(username string) string { return strings.ToLower(strings.TrimSpace(username)) }

func waitFor(l *rate.Limiter, interval time.Duration, now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	tokens := l.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) * float64(interval))
}

func spend(m map[string]*rate.Limiter, key string, interval time.Duration, burst int, now time.Time) {
	bucket(m, key, interval, burst, now).AllowN(now, 1)
}

// bucket is key's token bucket in m, created full when missing; the map
// is pruned before it grows past throttleMaxKeys.
func bucket(m map[string]*rate.Limiter, key string, interval time.Duration, burst int, now time.Time) *rate.Limiter {
	l := m[key]
	if l == nil {
		if len(m) >= throttleMaxKeys {
			prune(m, burst, now)
		}
		l = rate.NewLimiter(rate.Every(interval), burst)
		m[key] = l
	}
	return l
}

// prune drops the keys whose bucket has refilled: they carry no state.
func prune(m map[string]*rate.Limiter, burst int, now time.Time) {
	for k, l := range m {
		if l.TokensAt(now) >= float64(burst) {
			delete(m, k)
		}
	}
}

// clientIP is the address the request came from. X-Forwarded-For is not
// trusted: anyone can send it, and a throttle keyed on it is no throttle.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// minutesToWait rounds a wait up to whole minutes for the message.
func minutesToWait(d time.Duration) int {
	return int((d + time.Minute - 1) / time.Minute)
}
