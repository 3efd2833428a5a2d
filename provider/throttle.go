package provider

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// throttle limits password checks, shared by the login page, the account
// page's password change and the password grant, so none is a side door
// for guessing. Three budgets apply to every check:
//
//   - per account and source address: 5 in a row, then one more every 10
//     minutes. This is the budget a person mistyping meets.
//   - per account, from every source together: 30, then one every 10
//     minutes. It bounds an attacker who spreads guesses over many
//     addresses. It refills as fast as the first and holds more, so no
//     single address can empty it: that takes several. A source the
//     account signed in from in the last 30 days is exempt, so an
//     attacker who empties it locks out new places, not the owner at home
//     or in the office. A password change forgets those sources.
//   - per source address: 50, then one every 20 seconds (an office behind
//     one NAT address), so one address cannot spray many accounts.
//
// A source address is the client's IP address (see Provider.clientIP);
// IPv6 addresses count by /64, the block one host usually has to itself.
//
// An attempt is reserved before the password hash is verified, atomically
// against all three budgets: a check in flight has already spent its
// tokens, so guesses sent in parallel get no more checks than guesses sent
// one by one. When the check fails the tokens stay spent; when it succeeds
// they come back and the (account, source) budget is forgiven; when it
// could not be made (a storage error) they come back.
//
// The state is in memory: a restart forgives, and replicas each count
// their own. That is the usual trade for small deployments; the argon2id
// cost still bounds a distributed attacker.
type throttle struct {
	now func() time.Time

	mu       sync.Mutex
	pairs    *buckets // account + "\x00" + source
	accounts *buckets
	sources  *buckets
	// known are the (account, source) pairs that signed in, with the
	// time until which they are exempt from the account budget.
	known map[string]time.Time
}

// The budgets (see throttle).
var (
	pairBudget    = budget{burst: 5, interval: 10 * time.Minute}
	accountBudget = budget{burst: 30, interval: 10 * time.Minute}
	sourceBudget  = budget{burst: 50, interval: 20 * time.Second}
)

const (
	knownSourceFor  = 30 * 24 * time.Hour
	throttleMaxKeys = 100_000
)

func newThrottle(now func() time.Time) *throttle {
	return &throttle{
		now:      now,
		pairs:    newBuckets(pairBudget),
		accounts: newBuckets(accountBudget),
		sources:  newBuckets(sourceBudget),
		known:    map[string]time.Time{},
	}
}

// attempt is one reserved password check; settle it with failed,
// succeeded or cancel, exactly once.
type attempt struct {
	t                     *throttle
	pair, account, source string
	known                 bool // exempt from the account budget
}

// reserve takes one token from each budget of the check of username's
// password from ip, or none and says how long to wait when a budget is
// empty.
func (t *throttle) reserve(username, ip string) (*attempt, time.Duration) {
	account, source := accountKey(username), sourceKey(ip)
	a := &attempt{t: t, pair: account + "\x00" + source, account: account, source: source}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if until, ok := t.known[a.pair]; ok {
		if now.Before(until) {
			a.known = true
		} else {
			delete(t.known, a.pair)
		}
	}
	wait := max(t.pairs.wait(a.pair, now), t.sources.wait(a.source, now))
	if !a.known {
		wait = max(wait, t.accounts.wait(a.account, now))
	}
	if wait > 0 {
		return nil, wait
	}
	t.pairs.take(a.pair, now)
	t.sources.take(a.source, now)
	if !a.known {
		t.accounts.take(a.account, now)
	}
	return a, 0
}

// failed keeps the attempt's tokens spent.
func (a *attempt) failed() {}

// cancel gives the tokens back: no password was checked.
func (a *attempt) cancel() {
	a.t.mu.Lock()
	defer a.t.mu.Unlock()
	a.refund(a.t.now())
}

// succeeded gives the tokens back, forgives the account's failures from
// this source and remembers the source as the account's. The source's
// other failures stay, so one good password does not reset a spray across
// many accounts; so do the account's from elsewhere.
func (a *attempt) succeeded() {
	t := a.t
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	a.refund(now)
	t.pairs.forgive(a.pair)
	if len(t.known) >= throttleMaxKeys {
		for k, until := range t.known {
			if !now.Before(until) {
				delete(t.known, k)
			}
		}
	}
	if len(t.known) < throttleMaxKeys {
		t.known[a.pair] = now.Add(knownSourceFor)
	}
}

func (a *attempt) refund(now time.Time) {
	a.t.pairs.give(a.pair, now)
	a.t.sources.give(a.source, now)
	if !a.known {
		a.t.accounts.give(a.account, now)
	}
}

// accountKey is the budget key of a username: a digest of its folded
// form, so a guess with a 64 KiB username costs the maps what any other
// costs.
func accountKey(username string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(username))))
	return hex.EncodeToString(sum[:16])
}

// forgetKnownSources ends the exemption of every source username signed
// in from: after a password change, a place that knew the old password is
// not the owner's any more.
func (t *throttle) forgetKnownSources(username string) {
	prefix := accountKey(username) + "\x00"
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.known {
		if strings.HasPrefix(k, prefix) {
			delete(t.known, k)
		}
	}
}

// sourceKey is the budget key of a client address: the address, or its
// /64 for IPv6. Anything unparsable counts as itself.
func sourceKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if a = a.Unmap(); a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a.WithZone(""), 64).Masked().String()
}

// budget is a token bucket's shape: burst tokens when full, one more
// every interval.
type budget struct {
	burst    int
	interval time.Duration
}

// tokenBucket is one key's state: tokens at time at.
type tokenBucket struct {
	tokens float64
	at     time.Time
}

// buckets are the token buckets of one budget by key. A missing key is a
// full bucket. Not safe for concurrent use: the owner locks.
type buckets struct {
	budget
	m map[string]*tokenBucket
}

func newBuckets(b budget) *buckets { return &buckets{budget: b, m: map[string]*tokenBucket{}} }

func (bs *buckets) tokens(key string, now time.Time) float64 {
	b := bs.m[key]
	if b == nil {
		return float64(bs.burst)
	}
	refilled := float64(max(now.Sub(b.at), 0)) / float64(bs.interval)
	return min(float64(bs.burst), b.tokens+refilled)
}

// wait is how long until key has a token; zero when it has one.
func (bs *buckets) wait(key string, now time.Time) time.Duration {
	tokens := bs.tokens(key, now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) * float64(bs.interval))
}

// take spends one of key's tokens (the caller checked wait). Before the
// map grows past throttleMaxKeys, the keys whose bucket has refilled are
// dropped: they carry no state.
func (bs *buckets) take(key string, now time.Time) {
	bs.set(key, bs.tokens(key, now)-1, now)
}

// give returns one token to key.
func (bs *buckets) give(key string, now time.Time) {
	if _, ok := bs.m[key]; !ok {
		return // full already
	}
	bs.set(key, bs.tokens(key, now)+1, now)
}

// forgive fills key's bucket.
func (bs *buckets) forgive(key string) { delete(bs.m, key) }

func (bs *buckets) set(key string, tokens float64, now time.Time) {
	b := bs.m[key]
	if b == nil {
		if len(bs.m) >= throttleMaxKeys {
			bs.prune(now)
		}
		b = &tokenBucket{}
		bs.m[key] = b
	}
	if tokens >= float64(bs.burst) {
		delete(bs.m, key)
		return
	}
	b.tokens = tokens
	if now.After(b.at) {
		b.at = now
	}
}

func (bs *buckets) prune(now time.Time) {
	for k := range bs.m {
		if bs.tokens(k, now) >= float64(bs.burst) {
			delete(bs.m, k)
		}
	}
}

// minutesToWait rounds a wait up to whole minutes for the message.
func minutesToWait(d time.Duration) int {
	return int((d + time.Minute - 1) / time.Minute)
}

// inMinutes is an English "1 minute" or "N minutes" for protocol error
// descriptions and logs (pages translate msgThrottled instead).
func inMinutes(d time.Duration) string {
	if n := minutesToWait(d); n != 1 {
		return fmt.Sprintf("%d minutes", n)
	}
	return "1 minute"
}
