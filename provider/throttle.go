package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/membudgets"
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
// The state is in a storage.Budgets (budgets.go): in memory for a single
// process, where a restart forgives, or in the database, where every
// replica spends the same budgets. Each step (reserve, cancel, succeeded)
// is one atomic update of the records it touches. When the budgets cannot
// be read or written, reserve fails closed: no password is checked and
// the person is asked to try again in a moment (throttleUnavailableError).
type throttle struct {
	now     func() time.Time
	budgets storage.Budgets
}

// The budgets (see throttle).
var (
	pairBudget    = budget{burst: 5, interval: 10 * time.Minute}
	accountBudget = budget{burst: 30, interval: 10 * time.Minute}
	sourceBudget  = budget{burst: 50, interval: 20 * time.Second}
)

const knownSourceFor = 30 * 24 * time.Hour

// newThrottle is a throttle on budgets of its own, in memory.
func newThrottle(now func() time.Time) *throttle {
	return newSharedThrottle(membudgets.New(), now)
}

// newSharedThrottle is a throttle on b, which other throttles (replicas)
// may share.
func newSharedThrottle(b storage.Budgets, now func() time.Time) *throttle {
	return &throttle{now: now, budgets: b}
}

// The names of a throttle's records: a prefix, then the account key (hex,
// so the first "/" after it ends it) and the source.
const (
	throttlePairPrefix    = "tp:"
	throttleAccountPrefix = "ta:"
	throttleSourcePrefix  = "ts:"
	throttleKnownPrefix   = "tk:"
)

// throttleNames are the record names of a check of username's password
// from ip (see attempt), made in one allocation.
func throttleNames(username, ip string) [4]string {
	var acct [32]byte
	appendAccountKey(acct[:0], username)
	var srcBuf [64]byte
	src := appendSourceKey(srcBuf[:0], ip)
	var b strings.Builder
	b.Grow(4*3 + 3*len(acct) + 3*len(src) + 2)
	cut := func(prefix string, withAccount, withSource bool) [2]int {
		from := b.Len()
		b.WriteString(prefix)
		if withAccount {
			b.Write(acct[:])
		}
		if withAccount && withSource {
			b.WriteByte('/')
		}
		if withSource {
			b.Write(src)
		}
		return [2]int{from, b.Len()}
	}
	pair := cut(throttlePairPrefix, true, true)
	source := cut(throttleSourcePrefix, false, true)
	account := cut(throttleAccountPrefix, true, false)
	known := cut(throttleKnownPrefix, true, true)
	all := b.String()
	return [4]string{all[pair[0]:pair[1]], all[source[0]:source[1]], all[account[0]:account[1]], all[known[0]:known[1]]}
}

// attempt is one reserved password check; settle it with failed,
// succeeded or cancel, exactly once.
type attempt struct {
	t *throttle
	// names are the records of the pair, the source, the account and
	// the known source, in that order.
	names [4]string
	known bool // exempt from the account budget
	wait  time.Duration
}

const (
	recPair = iota
	recSource
	recAccount
	recKnown
)

// reserve takes one token from each budget of the check of username's
// password from ip, or none and says how long to wait when a budget is
// empty. An error (a *throttleUnavailableError) means the budgets could
// not be consulted: no check may be made.
func (t *throttle) reserve(ctx context.Context, username, ip string) (*attempt, time.Duration, error) {
	a := &attempt{t: t, names: throttleNames(username, ip)}
	now := t.now()
	err := updateBudgets(ctx, t.budgets, now, a.names[:], func(cur []storage.Bucket) ([]storage.Bucket, error) {
		// An expired known source reads as missing, and is removed
		// by writing it back so.
		a.known = !cur[recKnown].Missing()
		a.wait = max(pairBudget.wait(cur[recPair], now), sourceBudget.wait(cur[recSource], now))
		if !a.known {
			a.wait = max(a.wait, accountBudget.wait(cur[recAccount], now))
		}
		if a.wait > 0 {
			return nil, nil
		}
		cur[recPair] = pairBudget.take(cur[recPair], now)
		cur[recSource] = sourceBudget.take(cur[recSource], now)
		if !a.known {
			cur[recAccount] = accountBudget.take(cur[recAccount], now)
		}
		return cur, nil
	})
	switch {
	case err != nil:
		return nil, 0, &throttleUnavailableError{err}
	case a.wait > 0:
		return nil, a.wait, nil
	}
	return a, 0, nil
}

// failed keeps the attempt's tokens spent.
func (a *attempt) failed() {}

// cancel gives the tokens back: no password was checked. On an error
// they stay spent.
func (a *attempt) cancel(ctx context.Context) error {
	now := a.t.now()
	return updateBudgets(ctx, a.t.budgets, now, a.names[:recKnown], func(cur []storage.Bucket) ([]storage.Bucket, error) {
		a.refund(cur, now)
		return cur, nil
	})
}

// succeeded gives the tokens back, forgives the account's failures from
// this source and remembers the source as the account's. The source's
// other failures stay, so one good password does not reset a spray across
// many accounts; so do the account's from elsewhere. On an error the
// tokens stay spent and the source is not remembered.
func (a *attempt) succeeded(ctx context.Context) error {
	now := a.t.now()
	return updateBudgets(ctx, a.t.budgets, now, a.names[:], func(cur []storage.Bucket) ([]storage.Bucket, error) {
		a.refund(cur, now)
		cur[recPair] = storage.Bucket{} // forgiven: full
		cur[recKnown] = storage.Bucket{ExpiresAt: now.Add(knownSourceFor)}
		return cur, nil
	})
}

func (a *attempt) refund(cur []storage.Bucket, now time.Time) {
	cur[recPair] = pairBudget.give(cur[recPair], now)
	cur[recSource] = sourceBudget.give(cur[recSource], now)
	if !a.known {
		cur[recAccount] = accountBudget.give(cur[recAccount], now)
	}
}

// accountKey is the budget key of a username: a digest of its folded
// form, so a guess with a 64 KiB username costs the maps what any other
// costs.
func accountKey(username string) string {
	return string(appendAccountKey(nil, username))
}

func appendAccountKey(dst []byte, username string) []byte {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(username))))
	return hex.AppendEncode(dst, sum[:16])
}

// forgetKnownSources ends the exemption of every source username signed
// in from: after a password change, a place that knew the old password is
// not the owner's any more.
func (t *throttle) forgetKnownSources(ctx context.Context, username string) error {
	return t.budgets.DeleteBuckets(ctx, throttleKnownPrefix+accountKey(username)+"/")
}

// sourceKey is the budget key of a client address: the address, or its
// /64 for IPv6. Anything unparsable counts as itself (or, when it could
// not be a record's name, as its digest).
func sourceKey(ip string) string { return string(appendSourceKey(nil, ip)) }

func appendSourceKey(dst []byte, ip string) []byte {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		if len(ip) > 64 || !utf8.ValidString(ip) || strings.ContainsRune(ip, 0) {
			sum := sha256.Sum256([]byte(ip))
			return hex.AppendEncode(append(dst, '#'), sum[:16])
		}
		return append(dst, ip...)
	}
	if a = a.Unmap(); a.Is4() {
		return a.AppendTo(dst)
	}
	return netip.PrefixFrom(a.WithZone(""), 64).Masked().AppendTo(dst)
}

// budget is a token bucket's shape: burst tokens when full, one more
// every interval.
type budget struct {
	burst    int
	interval time.Duration
}

// tokens is how many tokens b holds at now; a missing record is a full
// bucket.
func (bg budget) tokens(b storage.Bucket, now time.Time) float64 {
	if b.Missing() {
		return float64(bg.burst)
	}
	refilled := float64(max(now.Sub(b.At), 0)) / float64(bg.interval)
	return min(float64(bg.burst), b.Tokens+refilled)
}

// wait is how long until b has a token; zero when it has one.
func (bg budget) wait(b storage.Bucket, now time.Time) time.Duration {
	tokens := bg.tokens(b, now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) * float64(bg.interval))
}

// take spends one of b's tokens (the caller checked wait).
func (bg budget) take(b storage.Bucket, now time.Time) storage.Bucket {
	return bg.set(b, bg.tokens(b, now)-1, now)
}

// give returns one token to b.
func (bg budget) give(b storage.Bucket, now time.Time) storage.Bucket {
	if b.Missing() {
		return b // full already
	}
	return bg.set(b, bg.tokens(b, now)+1, now)
}

// set is b holding tokens at now. It expires when it will have refilled:
// a full bucket is a missing record.
func (bg budget) set(b storage.Bucket, tokens float64, now time.Time) storage.Bucket {
	if tokens >= float64(bg.burst) {
		return storage.Bucket{}
	}
	at := now
	if b.At.After(at) {
		at = b.At // a clock that went back does not refill
	}
	refill := time.Duration((float64(bg.burst) - tokens) * float64(bg.interval))
	return storage.Bucket{Tokens: tokens, At: at, ExpiresAt: at.Add(refill + time.Second)}
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
