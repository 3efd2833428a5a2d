package provider_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/audit"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/storage"
)

// tokenAnswer is one token endpoint answer, fetched without t (from any
// goroutine).
type tokenAnswer struct {
	status     int
	retryAfter string
	body       map[string]any
	err        error
}

func askToken(endpoint, user, pass string) tokenAnswer {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"api:read"}}
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return tokenAnswer{err: err}
	}
	defer resp.Body.Close()
	a := tokenAnswer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	a.err = json.NewDecoder(resp.Body).Decode(&a.body)
	return a
}

// newLimitedServer is a test server on a stopped clock with a
// client-credentials client limited to 5 token requests an hour; events
// keeps what it audits.
func newLimitedServer(t *testing.T) (ts *testServer, clock *testClock, events *eventLog) {
	t.Helper()
	clock, events = &testClock{}, &eventLog{}
	ts = newTestServerDeps(t, func(d *provider.Deps) {
		start := time.Now()
		d.Now = func() time.Time { return start.Add(time.Duration(clock.offset.Load())) }
		d.Events = events
	})
	ts.addClient(t, clientspec.Spec{ID: "limited", SecretHash: testHash("limited-secret"), ClientSettings: storage.ClientSettings{
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"api:read"}, RateLimit: "5/h",
	}})
	return ts, clock, events
}

func checkLimited(t *testing.T, a tokenAnswer) {
	t.Helper()
	if a.err != nil {
		t.Fatal(a.err)
	}
	secs, err := strconv.Atoi(a.retryAfter)
	if a.status != http.StatusTooManyRequests || err != nil || secs < 1 || a.body["error"] != "temporarily_unavailable" {
		t.Fatalf("over the limit: HTTP %d, Retry-After %q, %v; want 429, whole seconds, temporarily_unavailable", a.status, a.retryAfter, a.body)
	}
}

// Many requests at once against a limit of 5: exactly 5 get a token, the
// rest 429 with Retry-After; the bucket refills at 5 an hour.
func TestRateLimitConcurrent(t *testing.T) {
	t.Parallel()
	ts, clock, _ := newLimitedServer(t)
	const n = 12
	answers := make([]tokenAnswer, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			answers[i] = askToken(ts.URL+"/token", "limited", "limited-secret")
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, a := range answers {
		if a.status == http.StatusOK {
			ok++
			continue
		}
		checkLimited(t, a)
	}
	if ok != 5 {
		t.Fatalf("%d of %d requests got a token, want exactly 5", ok, n)
	}
	a := askToken(ts.URL+"/token", "limited", "limited-secret")
	checkLimited(t, a)
	if a.retryAfter != "720" {
		t.Errorf("Retry-After %s with an empty bucket of 5 an hour, want 720", a.retryAfter)
	}
	// Another client is not limited by this one's bucket.
	if a := askToken(ts.URL+"/token", "svc", "svc-secret"); a.status != http.StatusOK {
		t.Errorf("svc: HTTP %d %v", a.status, a.body)
	}
	clock.Advance(12 * time.Minute) // one request's worth
	if a := askToken(ts.URL+"/token", "limited", "limited-secret"); a.status != http.StatusOK {
		t.Fatalf("after 12 minutes: HTTP %d %v, want a token", a.status, a.body)
	}
	checkLimited(t, askToken(ts.URL+"/token", "limited", "limited-secret"))
}

// Requests that fail client authentication do not count: whoever knows a
// client's ID cannot spend its budget.
func TestRateLimitCountsOnlyAuthenticated(t *testing.T) {
	t.Parallel()
	ts, _, _ := newLimitedServer(t)
	for range 8 {
		if a := askToken(ts.URL+"/token", "limited", "wrong-secret"); a.status != http.StatusUnauthorized {
			t.Fatalf("wrong secret: HTTP %d %v, want 401", a.status, a.body)
		}
	}
	for i := range 5 {
		if a := askToken(ts.URL+"/token", "limited", "limited-secret"); a.status != http.StatusOK {
			t.Fatalf("request %d after failed ones: HTTP %d %v", i, a.status, a.body)
		}
	}
	// Over the limit, even a wrong secret is refused before it is checked.
	checkLimited(t, askToken(ts.URL+"/token", "limited", "wrong-secret"))
}

// A reload that raises a client's limit applies at once: the client does
// not wait out the bucket it emptied under the old one.
func TestRateLimitChangedByReload(t *testing.T) {
	t.Parallel()
	ts, _, events := newLimitedServer(t)
	for range 5 {
		if a := askToken(ts.URL+"/token", "limited", "limited-secret"); a.status != http.StatusOK {
			t.Fatalf("within the limit: HTTP %d %v", a.status, a.body)
		}
	}
	checkLimited(t, askToken(ts.URL+"/token", "limited", "limited-secret"))
	events.find(t, "rate_limited", func(e audit.Event) bool {
		return e.Name == audit.RateLimited && e.Outcome == audit.Denied && e.ClientID == "limited"
	})
	raise := func(c storage.Client) (storage.Client, error) { c.RateLimit = "1000/h"; return c, nil }
	if err := ts.Store.UpdateClient(context.Background(), "limited", raise); err != nil {
		t.Fatal(err)
	}
	ts.Provider.ClientsChanged() // what a config reload calls after its sync
	if a := askToken(ts.URL+"/token", "limited", "limited-secret"); a.status != http.StatusOK {
		t.Fatalf("after the limit was raised: HTTP %d %v, want 200", a.status, a.body)
	}
}
