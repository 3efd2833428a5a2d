package provider

// Per-client rate limits at the token endpoint (clients[].rate_limit): a
// token bucket per client that holds the limit's number of requests and
// refills at that number per period. A request over it is answered 429
// Too Many Requests, with Retry-After (whole seconds until the bucket
// holds a request again) and an RFC 6749 §5.2 style body whose error is
// temporarily_unavailable: RFC 6749 defines no token endpoint error for
// this, and of the registered codes it is the one that says "try again
// later, unchanged" (invalid_request would say the request is wrong;
// slow_down belongs to device-flow polling, RFC 8628 §3.5).
//
// What counts: only requests whose client authenticated. Anyone can send
// a client's ID with a wrong secret; if those counted, anyone could spend
// a client's budget and shut it out. A client over its limit is still
// refused before its credentials are checked (its bucket is looked up by
// the ID the request claims), so a flood of its requests costs no secret
// hashing; a bucket exists only for a client that authenticated with a
// limit set, so claimed IDs cost no memory. A public client has no
// credentials: its ID is all anyone needs, so its budget can be spent by
// anyone who knows it.

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ory/fosite"

	"github.com/smallsso/provider/provider/audit"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/membudgets"
)

// clientLimits are the clients' buckets, in the budgets (budgets.go).
// A bucket is named by the client's ID and its rate_limit, so a changed
// limit is a new, full bucket on every replica at once, with nothing to
// reset between them; the old one expires. limits is this process's
// memory of which clients have a limit (learnt when one authenticates),
// so a request of a client without one never touches the budgets.
//
// The check before authentication (over) reads no budget either: it is
// answered from what this process's last count for the client saw, the
// time until which its bucket holds less than a request. With one
// process that is exact. With replicas, a bucket another replica emptied
// is found by the count after authentication (take), which refuses the
// request just the same; from then on this replica refuses the client's
// requests before authentication too.
type clientLimits struct {
	now     func() time.Time
	budgets storage.Budgets
	log     *slog.Logger
	mu      sync.RWMutex
	limits  map[string]*clientLimit
}

// clientLimit is a client's rate_limit and what is known of its bucket.
type clientLimit struct {
	spec   string
	budget budget
	names  []string // the bucket's record, alone
	// emptyUntil is when the bucket holds a request again, in Unix
	// nanoseconds, as the last count saw it.
	emptyUntil atomic.Int64
}

func newClientLimits(now func() time.Time) *clientLimits {
	return newSharedClientLimits(membudgets.New(), now, nil)
}

func newSharedClientLimits(b storage.Budgets, now func() time.Time, log *slog.Logger) *clientLimits {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &clientLimits{now: now, budgets: b, log: log, limits: make(map[string]*clientLimit)}
}

// over says whether clientID, as a request claims it, has an empty
// bucket, and how long until it holds a request again.
func (c *clientLimits) over(clientID string) (time.Duration, bool) {
	if clientID == "" {
		return 0, false
	}
	c.mu.RLock()
	l := c.limits[clientID]
	c.mu.RUnlock()
	if l == nil {
		return 0, false
	}
	wait := time.Duration(l.emptyUntil.Load() - c.now().UnixNano())
	return max(wait, 0), wait > 0
}

// take counts one request of an authenticated client whose rate_limit is
// spec, and says whether it is within the limit; if not, how long until
// it would be. It fails open.
func (c *clientLimits) take(ctx context.Context, clientID, spec string) (time.Duration, bool) {
	c.mu.RLock()
	l := c.limits[clientID]
	c.mu.RUnlock()
	if spec == "" {
		if l != nil {
			c.mu.Lock()
			delete(c.limits, clientID) // the limit was lifted
			c.mu.Unlock()
		}
		return 0, true
	}
	if l == nil || l.spec != spec {
		rl, err := clientspec.ParseRateLimit(spec)
		if err != nil || rl.Requests == 0 {
			return 0, true // validated when stored; nothing to enforce
		}
		l = &clientLimit{
			spec:   spec,
			budget: budget{burst: rl.Requests, interval: rl.Per / time.Duration(rl.Requests)},
			names:  []string{"ratelimit/" + strconv.Itoa(len(clientID)) + "/" + clientID + "/" + spec},
		}
		c.mu.Lock()
		c.limits[clientID] = l
		c.mu.Unlock()
	}
	now := c.now()
	var wait, next time.Duration
	err := updateBudgets(ctx, c.budgets, now, l.names, func(cur []storage.Bucket) ([]storage.Bucket, error) {
		if wait = l.budget.wait(cur[0], now); wait > 0 {
			next = wait
			return nil, nil
		}
		cur[0] = l.budget.take(cur[0], now)
		next = l.budget.wait(cur[0], now)
		return cur, nil
	})
	if err != nil {
		c.log.WarnContext(ctx, "rate limit not counted: the budgets are unavailable", "client_id", clientID, "err", err)
		return 0, true
	}
	l.emptyUntil.Store(now.Add(next).UnixNano())
	return wait, wait == 0
}

// reset forgets which clients have a limit, after a reload: each is
// learnt again from its next authenticated request, with the rate_limit
// it has now. The buckets themselves stay (in the budgets, shared): a
// changed limit has a bucket of its own.
func (c *clientLimits) reset() {
	c.mu.Lock()
	clear(c.limits)
	c.mu.Unlock()
}

// claimedClientID is the client ID a token request names, before anything
// is checked: the Basic user name (form-encoded, RFC 6749 §2.3.1) or the
// client_id parameter.
func claimedClientID(r *http.Request) string {
	if user, _, ok := r.BasicAuth(); ok {
		if id, err := url.QueryUnescape(user); err == nil {
			return id
		}
		return user
	}
	return r.PostForm.Get("client_id")
}

// rateLimitSpec is the rate_limit of an authenticated request's client.
func rateLimitSpec(c fosite.Client) string {
	if cl, ok := c.(*client); ok {
		return cl.rec.RateLimit
	}
	return ""
}

// writeRateLimited answers a request over its client's limit.
func (p *Provider) writeRateLimited(w http.ResponseWriter, r *http.Request, clientID string, wait time.Duration) {
	secs := max(int64(math.Ceil(wait.Seconds())), 1)
	p.emit(r, audit.RateLimitedClient(clientID, "token"))
	p.log.Info("token request over the client's rate limit", "client_id", clientID, "retry_after", secs, "request_id", requestID(r.Context()))
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	p.oauth2.WriteAccessError(r.Context(), w, nil, &fosite.RFC6749Error{
		ErrorField:       "temporarily_unavailable",
		DescriptionField: "The client has made too many token requests. Try again in " + strconv.FormatInt(secs, 10) + " seconds.",
		CodeField:        http.StatusTooManyRequests,
	})
}
