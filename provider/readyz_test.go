package provider_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/smallsso/provider/keys"
	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/storage"
)

// errDiskFull is what unwritableStore's writes fail with: what bolt says
// when a commit fails, with a path the answers must not show.
var errDiskFull = fmt.Errorf("%w: database write failed: write /srv/secret-place/provider.db: no space left on device", storage.ErrUnavailable)

// unwritableStore fails every write, and the readiness probe, while full
// is set, the way the bolt store does on a full disk: nothing of a failed
// write is kept.
type unwritableStore struct {
	storage.Store
	full atomic.Bool
}

func (s *unwritableStore) fail() error {
	if s.full.Load() {
		return errDiskFull
	}
	return nil
}

func (s *unwritableStore) CheckWritable(ctx context.Context) error {
	if err := s.fail(); err != nil {
		return err
	}
	return s.Store.CheckWritable(ctx)
}

func (s *unwritableStore) CreateToken(ctx context.Context, r storage.TokenRequest) error {
	if err := s.fail(); err != nil {
		return err
	}
	return s.Store.CreateToken(ctx, r)
}

func (s *unwritableStore) DeactivateToken(ctx context.Context, kind storage.TokenKind, sig string) error {
	if err := s.fail(); err != nil {
		return err
	}
	return s.Store.DeactivateToken(ctx, kind, sig)
}

func (s *unwritableStore) DeleteToken(ctx context.Context, kind storage.TokenKind, sig string) error {
	if err := s.fail(); err != nil {
		return err
	}
	return s.Store.DeleteToken(ctx, kind, sig)
}

func (s *unwritableStore) RevokeByRequestID(ctx context.Context, kind storage.TokenKind, reqID string) error {
	if err := s.fail(); err != nil {
		return err
	}
	return s.Store.RevokeByRequestID(ctx, kind, reqID)
}

func (s *unwritableStore) CommitTx(ctx context.Context) error {
	if err := s.fail(); err != nil {
		_ = s.Store.RollbackTx(ctx)
		return err
	}
	return s.Store.CommitTx(ctx)
}

// missingKey is a key source without an active key for one algorithm.
type missingKey struct {
	provider.KeySource
	alg string
}

func (k missingKey) Active(alg string) (keys.Key, error) {
	if alg == k.alg {
		return keys.Key{}, fmt.Errorf("%w for %s", keys.ErrNoActiveKey, alg)
	}
	return k.KeySource.Active(alg)
}

type readyzAnswer struct {
	status int
	header http.Header
	raw    string
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func getReadyz(t *testing.T, base string) readyzAnswer {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	a := readyzAnswer{status: resp.StatusCode, header: resp.Header, raw: string(body)}
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("/readyz: HTTP %d, body %q is not JSON: %v", resp.StatusCode, body, err)
	}
	return a
}

// While the database takes no writes, /readyz answers 503 naming the
// database and nothing of the cause; token requests and revocations get
// temporarily_unavailable with Retry-After instead of a 500 (or, for a
// revocation, a 200 for a token that was not revoked); nothing of the
// failed requests is kept; and everything works again, with the tokens
// issued before, once writes succeed. The log says once that the server
// is not ready, with the cause, and once that it is again.
func TestReadyzAndAFullDisk(t *testing.T) {
	t.Parallel()
	var store *unwritableStore
	var logs logBuffer
	ts := newTestServerDeps(t, func(d *provider.Deps) {
		store = &unwritableStore{Store: d.Store}
		d.Store = store
		d.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	ts.addClient(t, clientspec.Spec{ID: "legacy", Secret: "legacy-secret-0123456789", ClientSettings: storage.ClientSettings{
		GrantTypes: []string{"password", "refresh_token"}, Scopes: []string{"openid", "offline_access"},
	}})
	password := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePass}, "scope": {"openid offline_access"}}
	token := func(form url.Values) (int, http.Header, map[string]any) {
		return postForm(t, ts.URL+"/token", form, "legacy", "legacy-secret-0123456789")
	}

	if a := getReadyz(t, ts.URL); a.status != http.StatusOK || a.Status != "ok" || a.Checks["database"] != "ok" || a.Checks["signing_keys"] != "ok" {
		t.Fatalf("/readyz of a healthy server: HTTP %d %s", a.status, a.raw)
	} else if cc := a.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("/readyz Cache-Control %q, want no-store", cc)
	}
	status, _, before := token(password)
	if status != http.StatusOK {
		t.Fatalf("password grant: HTTP %d %v", status, before)
	}
	access, refresh := before["access_token"].(string), before["refresh_token"].(string)

	store.full.Store(true)
	for range 3 {
		a := getReadyz(t, ts.URL)
		if a.status != http.StatusServiceUnavailable || a.Status != "unavailable" || a.Checks["database"] != "not writable" || a.Checks["signing_keys"] != "ok" {
			t.Errorf("/readyz with a full disk: HTTP %d %s", a.status, a.raw)
		}
		if a.header.Get("Retry-After") == "" {
			t.Error("/readyz 503 without Retry-After")
		}
		if strings.Contains(a.raw, "secret-place") || strings.Contains(a.raw, "no space") {
			t.Errorf("/readyz shows the cause: %s", a.raw)
		}
	}
	unavailable := func(what string, status int, h http.Header, body map[string]any) {
		t.Helper()
		if status != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" {
			t.Errorf("%s with a full disk: HTTP %d %v, want 503 temporarily_unavailable", what, status, body)
		}
		if h.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", what)
		}
		if s := fmt.Sprint(body); strings.Contains(s, "secret-place") || strings.Contains(s, "no space") || strings.Contains(s, "storage") {
			t.Errorf("%s: the answer shows the cause: %s", what, s)
		}
	}
	status, h, body := token(password)
	unavailable("password grant", status, h, body)
	status, h, body = token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	unavailable("refresh", status, h, body)
	status, h, body = postForm(t, ts.URL+"/revoke", url.Values{"token": {refresh}}, "legacy", "legacy-secret-0123456789")
	unavailable("revocation", status, h, body)

	store.full.Store(false)
	if a := getReadyz(t, ts.URL); a.status != http.StatusOK {
		t.Errorf("/readyz once writes work again: HTTP %d %s", a.status, a.raw)
	}
	if got := ts.introspect(t, access); got["active"] != true {
		t.Errorf("access token issued before the disk filled: %v", got)
	}
	status, _, body = token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	if status != http.StatusOK {
		t.Errorf("refresh token whose rotation failed, used again: HTTP %d %v", status, body)
	}

	log := logs.String()
	if n := strings.Count(log, `msg="not ready"`); n != 1 {
		t.Errorf("%d \"not ready\" lines for one outage, want 1:\n%s", n, log)
	}
	if !strings.Contains(log, "no space left on device") {
		t.Errorf("the log does not give the cause:\n%s", log)
	}
	if n := strings.Count(log, `msg="ready again"`); n != 1 {
		t.Errorf("%d \"ready again\" lines, want 1:\n%s", n, log)
	}
}

// A signing algorithm without an active key makes /readyz fail, naming
// the keys, not the database.
func TestReadyzMissingKey(t *testing.T) {
	t.Parallel()
	ts := newTestServerDeps(t, func(d *provider.Deps) { d.Keys = missingKey{KeySource: d.Keys, alg: "ES256"} })
	a := getReadyz(t, ts.URL)
	if a.status != http.StatusServiceUnavailable || a.Checks["signing_keys"] != "missing" || a.Checks["database"] != "ok" {
		t.Errorf("/readyz without an ES256 key: HTTP %d %s", a.status, a.raw)
	}
}

// A prober that hangs up does not make the database look unwritable: the
// probe runs on without its request's context, and nothing is logged.
func TestReadyzProberHangsUp(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	ts := newTestServerDeps(t, func(d *provider.Deps) { d.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/readyz", nil)
	rec := httptest.NewRecorder()
	ts.Provider.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || strings.Contains(logs.String(), "not ready") {
		t.Errorf("/readyz for a prober gone: HTTP %d %s, log:\n%s", rec.Code, rec.Body, logs.String())
	}
}
