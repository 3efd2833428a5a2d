package provider_test

// The limiters' budgets shared by replicas (budgets.go): two providers on
// one PostgreSQL database spend one budget between them; when the budgets
// fail, sign-in and registration answer "try again" and rate limits let
// requests through; a client without a rate_limit never touches them.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/membudgets"
	"github.com/smallsso/provider/storage/postgres"
	"github.com/smallsso/provider/storage/postgres/pgtest"
)

// replicas are n test servers whose budgets are one PostgreSQL database,
// each through a store (a connection pool) of its own, as replicas have.
func replicas(t *testing.T, c *pgtest.Cluster, n int, mutate ...func(*provider.Config)) []*testServer {
	t.Helper()
	dsn := c.NewDatabase(t)
	var out []*testServer
	for i := range n {
		s, err := postgres.Open(t.Context(), postgres.Options{DSN: dsn, Migrate: i == 0})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out = append(out, newTestServerDeps(t, func(d *provider.Deps) { d.Budgets = s }, mutate...))
	}
	return out
}

// Guesses for one account from one address, forty at once, spread over
// two replicas: exactly the (account, source) budget's five passwords are
// checked in all, the rest throttled before any hash.
func TestBudgetsSharedByReplicas(t *testing.T) {
	t.Parallel()
	c := pgtest.Start(t)

	t.Run("SignIn", func(t *testing.T) {
		t.Parallel()
		rs := replicas(t, c, 2)
		for _, ts := range rs {
			passwordClient(t, ts)
		}
		src := clientFrom(t, "127.0.0.2")
		const n = 40
		answers := make([]grantAnswer, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				answers[i] = grantVia(t, rs[i%2], src, nil, "alice", fmt.Sprintf("guess %d", i))
			})
		}
		close(start)
		wg.Wait()
		checked := [2]int{}
		for i, a := range answers {
			switch {
			case a.refused():
				checked[i%2]++
			case !a.throttled():
				t.Errorf("guess %d: %v", i, a)
			}
		}
		if checked[0]+checked[1] != pairBudget {
			t.Fatalf("%d + %d guesses checked on the two replicas, want %d in all", checked[0], checked[1], pairBudget)
		}
		// The right password is refused on either replica now.
		for i, ts := range rs {
			if a := grantVia(t, ts, src, nil, "alice", alicePass); !a.throttled() {
				t.Errorf("replica %d after the budget was spent: %v", i, a)
			}
		}
	})

	t.Run("Registration", func(t *testing.T) {
		t.Parallel()
		rs := replicas(t, c, 2, withRegistration(""))
		const n = 70
		status := make([]int, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				status[i] = registerRaw(rs[i%2].URL)
			})
		}
		close(start)
		wg.Wait()
		created := 0
		for i, s := range status {
			switch s {
			case http.StatusCreated:
				created++
			case http.StatusTooManyRequests:
			default:
				t.Errorf("registration %d: HTTP %d", i, s)
			}
		}
		if created != 50 {
			t.Fatalf("%d registrations created over two replicas, want the address's 50", created)
		}
	})

	// A rate limit is one bucket for both replicas, and a changed limit
	// applies on each without the buckets being reset.
	t.Run("RateLimit", func(t *testing.T) {
		t.Parallel()
		rs := replicas(t, c, 2)
		for _, ts := range rs {
			ts.addClient(t, clientspec.Spec{ID: "limited", SecretHash: testHash("limited-secret"), ClientSettings: storage.ClientSettings{
				GrantTypes: []string{"client_credentials"}, Scopes: []string{"api:read"}, RateLimit: "5/h",
			}})
		}
		const n = 12
		answers := make([]tokenAnswer, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { answers[i] = askToken(rs[i%2].URL+"/token", "limited", "limited-secret") })
		}
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
			t.Fatalf("%d of %d requests over two replicas got a token, want 5", ok, n)
		}
		for _, ts := range rs {
			raise := func(c storage.Client) (storage.Client, error) { c.RateLimit = "1000/h"; return c, nil }
			if err := ts.Store.UpdateClient(context.Background(), "limited", raise); err != nil {
				t.Fatal(err)
			}
			ts.Provider.ClientsChanged()
			if a := askToken(ts.URL+"/token", "limited", "limited-secret"); a.status != http.StatusOK {
				t.Fatalf("after the limit was raised: HTTP %d %v", a.status, a.body)
			}
		}
	})
}

// registerRaw posts an open registration and returns the status, from any
// goroutine.
func registerRaw(base string) int {
	raw, _ := json.Marshal(map[string]any{"redirect_uris": []string{webRedirect}, "token_endpoint_auth_method": "none"})
	req, _ := http.NewRequest(http.MethodPost, base+"/register", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// brokenBudgets fail every call, as a database that cannot be reached.
type brokenBudgets struct{}

var errBudgetsDown = fmt.Errorf("%w: connection refused", storage.ErrUnavailable)

func (brokenBudgets) UpdateBuckets(context.Context, time.Time, []string, func([]storage.Bucket) ([]storage.Bucket, error)) error {
	return errBudgetsDown
}

func (brokenBudgets) ReadBuckets(context.Context, time.Time, []string) ([]storage.Bucket, error) {
	return nil, errBudgetsDown
}

func (brokenBudgets) DeleteBuckets(context.Context, string) error { return errBudgetsDown }

// Without its budgets the provider checks no password and registers no
// client, and says to try again (never a 500); rate limits let requests
// through. Once the budgets are back nobody is locked out.
func TestBudgetsUnavailable(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	down.Store(true)
	ts := newTestServerDeps(t, func(d *provider.Deps) { d.Budgets = &switchBudgets{down: &down, up: membudgets.New()} }, withRegistration(""))
	passwordClient(t, ts)
	ts.addClient(t, clientspec.Spec{ID: "limited", SecretHash: testHash("limited-secret"), ClientSettings: storage.ClientSettings{
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"api:read"}, RateLimit: "1/h",
	}})

	// The password grant: 503 temporarily_unavailable, Retry-After.
	form := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePass}, "scope": {"openid"}}
	status, h, body := postForm(t, ts.URL+"/token", form, "legacy", "legacy-secret-0123456789")
	if status != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" || h.Get("Retry-After") == "" {
		t.Errorf("password grant: HTTP %d %v (Retry-After %q), want 503 temporarily_unavailable", status, body, h.Get("Retry-After"))
	}
	// The login page: 503, try again.
	b := browserFrom(t, ts, "127.0.0.2")
	page, err := b.Get(context.Background(), webAuthURL(ts))
	if err != nil {
		t.Fatal(err)
	}
	f, err := page.ParseForm()
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.Submit(context.Background(), page, f, url.Values{"username": {"alice"}, "password": {alicePass}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusServiceUnavailable || !strings.Contains(res.Body, "try again") {
		t.Errorf("login page: HTTP %d, want 503 saying to try again: %.500s", res.Status, res.Body)
	}
	// Registration: 503 temporarily_unavailable.
	if s := registerRaw(ts.URL); s != http.StatusServiceUnavailable {
		t.Errorf("registration: HTTP %d, want 503", s)
	}
	// A rate-limited client is served (twice, over its 1/h).
	for i := range 2 {
		if a := askToken(ts.URL+"/token", "limited", "limited-secret"); a.status != http.StatusOK {
			t.Errorf("rate-limited client, request %d: HTTP %d %v", i, a.status, a.body)
		}
	}

	// Back: the sign-in works at once.
	down.Store(false)
	if status, _, body := postForm(t, ts.URL+"/token", form, "legacy", "legacy-secret-0123456789"); status != http.StatusOK {
		t.Errorf("password grant once the budgets are back: HTTP %d %v", status, body)
	}
}

// switchBudgets are up's, or broken while down is set.
type switchBudgets struct {
	down *atomic.Bool
	up   storage.Budgets
}

func (s *switchBudgets) b() storage.Budgets {
	if s.down.Load() {
		return brokenBudgets{}
	}
	return s.up
}

func (s *switchBudgets) UpdateBuckets(ctx context.Context, now time.Time, names []string, fn func([]storage.Bucket) ([]storage.Bucket, error)) error {
	return s.b().UpdateBuckets(ctx, now, names, fn)
}

func (s *switchBudgets) ReadBuckets(ctx context.Context, now time.Time, names []string) ([]storage.Bucket, error) {
	return s.b().ReadBuckets(ctx, now, names)
}

func (s *switchBudgets) DeleteBuckets(ctx context.Context, prefix string) error {
	return s.b().DeleteBuckets(ctx, prefix)
}

// countingBudgets count the calls made to them.
type countingBudgets struct {
	storage.Budgets
	calls atomic.Int64
}

func (c *countingBudgets) UpdateBuckets(ctx context.Context, now time.Time, names []string, fn func([]storage.Bucket) ([]storage.Bucket, error)) error {
	c.calls.Add(1)
	return c.Budgets.UpdateBuckets(ctx, now, names, fn)
}

func (c *countingBudgets) ReadBuckets(ctx context.Context, now time.Time, names []string) ([]storage.Bucket, error) {
	c.calls.Add(1)
	return c.Budgets.ReadBuckets(ctx, now, names)
}

// The token endpoint of a client without a rate_limit does not touch the
// budgets (nor does a refused client authentication).
func TestBudgetsUntouchedWithoutRateLimit(t *testing.T) {
	t.Parallel()
	var counted *countingBudgets
	ts := newTestServerDeps(t, func(d *provider.Deps) {
		counted = &countingBudgets{Budgets: brokenBudgets{}}
		d.Budgets = counted
	})
	for range 3 {
		if a := askToken(ts.URL+"/token", "svc", "svc-secret"); a.status != http.StatusOK {
			t.Fatalf("svc: HTTP %d %v", a.status, a.body)
		}
		if a := askToken(ts.URL+"/token", "svc", "wrong"); a.status != http.StatusUnauthorized {
			t.Fatalf("svc, wrong secret: HTTP %d %v", a.status, a.body)
		}
	}
	if n := counted.calls.Load(); n != 0 {
		t.Errorf("%d calls to the budgets for a client without a rate limit", n)
	}
	if !errors.Is(errBudgetsDown, storage.ErrUnavailable) {
		t.Fatal("the test's error does not match ErrUnavailable")
	}
}

// The database stops: the password grant says to try again (503, never a
// 500, no password checked); once it is back, the same request works,
// nobody locked out.
func TestBudgetsDatabaseDown(t *testing.T) {
	t.Parallel()
	c := pgtest.Start(t)
	ts := replicas(t, c, 1)[0]
	passwordClient(t, ts)
	form := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePass}, "scope": {"openid"}}
	if status, _, body := postForm(t, ts.URL+"/token", form, "legacy", "legacy-secret-0123456789"); status != http.StatusOK {
		t.Fatalf("before: HTTP %d %v", status, body)
	}
	c.Stop()
	for i := range 3 {
		status, h, body := postForm(t, ts.URL+"/token", form, "legacy", "legacy-secret-0123456789")
		if status != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" || h.Get("Retry-After") == "" {
			t.Fatalf("database down, request %d: HTTP %d %v (Retry-After %q), want 503 temporarily_unavailable", i, status, body, h.Get("Retry-After"))
		}
	}
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	// The pool finds its connections broken and makes new ones; a
	// request or two may still meet a dead one.
	for i := 0; ; i++ {
		status, _, body := postForm(t, ts.URL+"/token", form, "legacy", "legacy-secret-0123456789")
		if status == http.StatusOK {
			break
		}
		if status != http.StatusServiceUnavailable || i == 20 {
			t.Fatalf("database back, request %d: HTTP %d %v", i, status, body)
		}
	}
}
