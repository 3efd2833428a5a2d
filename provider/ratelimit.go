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
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/ory/fosite"
	"golang.org/x/time/rate"

	"github.com/smallsso/provider/provider/audit"
	"github.com/smallsso/provider/provider/clientspec"
)

// clientLimits holds the buckets of the clients that have a rate limit.
type clientLimits struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*clientBucket
}

type clientBucket struct {
	spec string // the rate_limit it was made for
	lim  *rate.Limiter
}

func newClientLimits(now func() time.Time) *clientLimits {
	return &clientLimits{now: now, m: make(map[string]*clientBucket)}
}

// over says whether clientID, as a request claims it, has an empty
// bucket, and how long until it holds a request again.
func (c *clientLimits) over(clientID string) (time.Duration, bool) {
	if clientID == "" {
		return 0, false
	}
	c.mu.Lock()
	b := c.m[clientID]
	c.mu.Unlock()
	if b == nil {
		return 0, false
	}
	now := c.now()
	if b.lim.TokensAt(now) >= 1 {
		return 0, false
	}
	return untilOne(b.lim, now), true
}

// take counts one request of an authenticated client whose rate_limit is
// spec, and says whether it is within the limit; if not, how long until
// it would be.
func (c *clientLimits) take(clientID, spec string) (time.Duration, bool) {
	c.mu.Lock()
	b := c.m[clientID]
	if spec == "" {
		if b != nil {
			delete(c.m, clientID) // the limit was lifted
		}
		c.mu.Unlock()
		return 0, true
	}
	if b == nil || b.spec != spec {
		rl, err := clientspec.ParseRateLimit(spec)
		if err != nil || rl.Requests == 0 {
			c.mu.Unlock()
			return 0, true // validated when stored; nothing to enforce
		}
		b = &clientBucket{spec: spec, lim: rate.NewLimiter(rate.Limit(float64(rl.Requests)/rl.Per.Seconds()), rl.Requests)}
		c.m[clientID] = b
	}
	c.mu.Unlock()
	now := c.now()
	if b.lim.AllowN(now, 1) {
		return 0, true
	}
	return untilOne(b.lim, now), false
}

// reset forgets every bucket: after a reload a changed (raised, lowered
// or lifted) limit applies at once, instead of a client waiting out a
// bucket emptied under the old one. Every client starts full, as after a
// restart.
func (c *clientLimits) reset() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

// untilOne is how long until lim holds one request again.
func untilOne(lim *rate.Limiter, now time.Time) time.Duration {
	missing := 1 - lim.TokensAt(now)
	if missing <= 0 {
		return 0
	}
	return time.Duration(missing / float64(lim.Limit()) * float64(time.Second))
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
