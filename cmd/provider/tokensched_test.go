package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/smallsso/provider/keys"
	"github.com/smallsso/provider/provider/audit"
	"github.com/smallsso/provider/provider/clientspec"
)

// tokens.refresh_reuse_grace and keys.rotate_every are bounded, and say so
// with their key path.
func TestScheduleConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := "issuer: http://127.0.0.1:8080\nstorage:\n  bolt: " + dir + "/provider.db\n"
	for _, tt := range []struct {
		name, yaml string
		want       []string
	}{
		{"grace too long", "keys:\n  dir: " + dir + "/keys\ntokens:\n  refresh_reuse_grace: 10m\n", []string{"tokens.refresh_reuse_grace", "10m0s", "5m0s"}},
		{"rotation too often", "keys:\n  dir: " + dir + "/keys\n  rotate_every: 30m\n", []string{"keys.rotate_every", "30m0s", "1h0m0s"}},
		{"not a duration", "keys:\n  dir: " + dir + "/keys\n  rotate_every: weekly\n", []string{"weekly"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := dir + "/" + strings.ReplaceAll(tt.name, " ", "-") + ".yaml"
			writeFile(t, path, base+tt.yaml)
			msg := runCLI(t, "", "users", "list", "--config", path).fails(t, 1)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q does not contain %q", msg, w)
				}
			}
		})
	}
}

// A server configured with both: a refresh retried within the grace gets
// the same tokens, and the key schedule starts with the keys it has.
func TestServeRefreshGraceAndSchedule(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), strings.Replace(appConfig, "clients:", "tokens:\n  refresh_reuse_grace: 1m\nclients:", 1))
	raw, err := os.ReadFile(c.path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, c.path, strings.Replace(string(raw), "keys:\n", "keys:\n  rotate_every: 720h\n", 1))
	startServer(t, c)
	kids := jwksKIDs(t, c.issuer)

	rp := newRelyingParty(t, c.issuer, "app", appSecret, appCallback, oidc.ScopeOpenID, oidc.ScopeOfflineAccess)
	tok := rp.signIn(t, "alice", "alice-password-for-tests")
	first := rp.refresh(t, tok.RefreshToken)
	again := rp.refresh(t, tok.RefreshToken)
	if again.AccessToken != first.AccessToken || again.RefreshToken != first.RefreshToken || idToken(t, again) != idToken(t, first) {
		t.Errorf("a refresh retried within the grace got other tokens")
	}
	if next := rp.refresh(t, again.RefreshToken); next.RefreshToken == again.RefreshToken {
		t.Errorf("the replayed refresh token did not rotate")
	}
	if got := jwksKIDs(t, c.issuer); len(got) != len(kids) {
		t.Errorf("JWKS %v on a fresh schedule, want the keys it started with %v", got, kids)
	}
	out := runCLI(t, "", "keys", "list", "--config", c.path).ok(t)
	if strings.Contains(out, "next") {
		t.Errorf("keys list shows a next key a month before it is due:\n%s", out)
	}
}

// clients[].rate_limit is checked with its key path.
func TestRateLimitConfigError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := dir + "/config.yaml"
	writeFile(t, path, "issuer: http://127.0.0.1:8080\nstorage:\n  bolt: "+dir+"/provider.db\nkeys:\n  dir: "+dir+"/keys\n"+
		"clients:\n  - id: ok\n    secret: ok-secret\n    grant_types: [client_credentials]\n    rate_limit: 100/m\n"+
		"  - id: bad\n    secret: bad-secret\n    grant_types: [client_credentials]\n    rate_limit: lots\n")
	msg := runCLI(t, "", "users", "list", "--config", path).fails(t, 1)
	if !strings.Contains(msg, `clients[1].rate_limit: "lots" must look like 100/m`) || strings.Contains(msg, "clients[0]") {
		t.Errorf("config error %q, want one for clients[1].rate_limit", msg)
	}
}

// A config client's rate_limit reaches the running server: over it, 429
// with Retry-After.
func TestServeRateLimit(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), `clients:
  - id: ci
    secret: ci-secret-for-tests
    grant_types: [client_credentials]
    scopes: [deploy]
    rate_limit: 2/h
`)
	startServer(t, c)
	ask := func() *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, c.issuer+"/token", strings.NewReader("grant_type=client_credentials&scope=deploy"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("ci", "ci-secret-for-tests")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for i := range 2 {
		if resp := ask(); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: HTTP %d", i, resp.StatusCode)
		}
	}
	if resp := ask(); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third request: HTTP %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// keys list names the next keys of scheduled rotation and when they sign.
func TestKeysListShowsNextKeys(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, 18081, "")
	past := func() time.Time { return time.Now().Add(-6 * time.Hour) }
	if _, err := keys.Open(c.keys, keys.Options{Algorithms: clientspec.SigningAlgorithms, Now: past}); err != nil {
		t.Fatal(err)
	}
	m, err := keys.Open(c.keys, keys.Options{Algorithms: clientspec.SigningAlgorithms})
	if err != nil {
		t.Fatal(err)
	}
	next, err := m.RotateDue(10 * time.Hour) // due in 4h, published 5h ahead: now
	if err != nil || len(next) != len(clientspec.SigningAlgorithms) {
		t.Fatalf("RotateDue: %v, %v", next, err)
	}
	out := runCLI(t, "", "keys", "list", "--config", c.path).ok(t)
	for _, k := range next {
		if l := line(t, out, k.ID); l[2] != "next" {
			t.Errorf("next key's line %v", l)
		}
		if !strings.Contains(out, "next "+k.Alg+" key "+k.ID+" signs from ") {
			t.Errorf("keys list does not say when %s signs:\n%s", k.ID, out)
		}
	}
}

// eventSink keeps audit events.
type eventSink struct {
	mu     sync.Mutex
	events []audit.Event
}

func (s *eventSink) Record(_ context.Context, e audit.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
}

// A next key published by the schedule is an audit event naming it.
func TestScheduledRotationAudited(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64
	start := time.Now()
	now := func() time.Time { return start.Add(time.Duration(offset.Load())) }
	km, err := keys.Open(t.TempDir(), keys.Options{Algorithms: []string{"ES256"}, Now: now, ReloadInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	offset.Store(int64(31 * time.Minute)) // past the half-hour lead of a 1h schedule
	events := &eventSink{}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // one check, then return
	rotateKeysOnSchedule(ctx, km, time.Hour, slog.New(slog.DiscardHandler), events)
	if len(events.events) != 1 {
		t.Fatalf("events %+v, want one key_published", events.events)
	}
	e := events.events[0]
	info := km.List()
	if e.Name != audit.KeyPublished || e.Outcome != audit.Success || e.Reason != "ES256" || len(info) != 2 || e.Object == "" ||
		!slices.ContainsFunc(info, func(k keys.KeyInfo) bool { return k.ID == e.Object && k.State == keys.StateNext }) {
		t.Errorf("event %+v, keys %+v: want key_published naming the next ES256 key", e, info)
	}
}
