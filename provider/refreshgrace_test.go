package provider_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/audit"
	"github.com/smallsso/provider/provider/metrics"
	"github.com/smallsso/provider/provider/oidcctest"
	"github.com/smallsso/provider/provider/providertest"
	"github.com/smallsso/provider/storage"
)

// The refresh grace (tokens.refresh_reuse_grace): a rotated refresh token
// presented again by its client within the grace gets the answer its
// rotation gave; anything else is reuse and revokes the family.

func newGraceOP(t *testing.T, grace time.Duration) *oidccOP {
	return newOIDCCOP(t, withSuiteConfig(func(c *provider.Config) { c.RefreshReuseGrace = grace }))
}

// rotate runs a code flow and one refresh, and returns the first refresh
// token (now retired) and the refresh's answer.
func rotate(t *testing.T, op *oidccOP) (string, *oidcctest.TokenResponse) {
	t.Helper()
	f := op.run(t, op.NewRequest(op.Basic, "openid offline_access"))
	old := f.Token.Str("refresh_token")
	tr := op.Refresh(t, op.Basic, old, "")
	op.CheckTokenSuccess(t, tr)
	if tr.Str("id_token") == "" || tr.Str("refresh_token") == "" {
		t.Fatalf("refresh answer without id_token or refresh_token: %v", tr.Body)
	}
	return old, tr
}

func sameTokens(t *testing.T, got, want *oidcctest.TokenResponse) {
	t.Helper()
	for _, k := range []string{"access_token", "refresh_token", "id_token", "token_type", "scope"} {
		if got.Str(k) != want.Str(k) {
			t.Errorf("%s differs from the first answer's", k)
		}
	}
}

// expectRevoked checks the family is gone: its latest refresh token is
// refused and its access token is inactive.
func expectRevoked(t *testing.T, op *oidccOP, tr *oidcctest.TokenResponse) {
	t.Helper()
	op.CheckTokenError(t, op.Refresh(t, op.Basic, tr.Str("refresh_token"), ""), "invalid_grant")
	if ur := op.Userinfo(t, tr.Str("access_token"), "get"); ur.Status != 401 {
		t.Errorf("userinfo with the family's access token: HTTP %d, want 401", ur.Status)
	}
}

func TestRefreshGraceWithoutGraceReuseRevokes(t *testing.T) {
	t.Parallel()
	op := newGraceOP(t, 0)
	old, tr := rotate(t, op)
	op.CheckTokenError(t, op.Refresh(t, op.Basic, old, ""), "invalid_grant")
	expectRevoked(t, op, tr)
}

func TestRefreshGraceReplayGivesTheSameAnswer(t *testing.T) {
	t.Parallel()
	op := newGraceOP(t, 30*time.Second)
	old, first := rotate(t, op)
	op.clock.Advance(5 * time.Second)
	again := op.Refresh(t, op.Basic, old, "")
	op.CheckTokenSuccess(t, again)
	sameTokens(t, again, first)
	if got, want := again.Body["expires_in"], first.Body["expires_in"].(float64)-5; got != want {
		t.Errorf("expires_in %v on the replay, want %v (5s after the first)", got, want)
	}
	// The pair works: its access token at userinfo, its refresh token for
	// the next rotation.
	if ur := op.Userinfo(t, again.Str("access_token"), "get"); ur.Status != 200 {
		t.Fatalf("userinfo with the replayed access token: HTTP %d", ur.Status)
	}
	next := op.Refresh(t, op.Basic, again.Str("refresh_token"), "")
	op.CheckTokenSuccess(t, next)

	// Now that the new token was used, the old one is reuse: the family
	// goes, the newest pair with it.
	op.CheckTokenError(t, op.Refresh(t, op.Basic, old, ""), "invalid_grant")
	expectRevoked(t, op, next)
}

func TestRefreshGraceOverRevokes(t *testing.T) {
	t.Parallel()
	op := newGraceOP(t, 30*time.Second)
	old, tr := rotate(t, op)
	op.clock.Advance(31 * time.Second)
	op.CheckTokenError(t, op.Refresh(t, op.Basic, old, ""), "invalid_grant")
	expectRevoked(t, op, tr)
}

// Another client holding the retired token is not forgiven; as without a
// grace, a retired token presented at all revokes its family.
func TestRefreshGraceOtherClient(t *testing.T) {
	t.Parallel()
	op := newGraceOP(t, 30*time.Second)
	old, tr := rotate(t, op)
	op.CheckTokenError(t, op.Refresh(t, op.Client2, old, ""), "invalid_grant")
	op.CheckTokenError(t, op.Refresh(t, op.Basic, old, ""), "invalid_grant")
	expectRevoked(t, op, tr)
}

func TestRefreshGraceAfterUserDeleted(t *testing.T) {
	t.Parallel()
	op := newGraceOP(t, 30*time.Second)
	old, _ := rotate(t, op)
	if err := op.ts.Store.DeleteUser(t.Context(), op.UserID); err != nil {
		t.Fatal(err)
	}
	op.CheckTokenError(t, op.Refresh(t, op.Basic, old, ""), "invalid_grant")
}

// Many presentations of one refresh token at once, within the grace: all
// get the same pair, so there is one family, and it works.
func TestRefreshGraceConcurrent(t *testing.T) {
	t.Parallel()
	op := newGraceOP(t, 30*time.Second)
	f := op.run(t, op.NewRequest(op.Basic, "openid offline_access"))
	rt := f.Token.Str("refresh_token")
	const n = 8
	answers := make([]*oidcctest.TokenResponse, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			answers[i] = op.Refresh(t, op.Basic, rt, "")
		}()
	}
	close(start)
	wg.Wait()
	for i, a := range answers {
		if a.Status != 200 {
			t.Fatalf("request %d: HTTP %d %v", i, a.Status, a.Body)
		}
		sameTokens(t, a, answers[0])
	}
	op.CheckTokenSuccess(t, op.Refresh(t, op.Basic, answers[0].Str("refresh_token"), ""))
}

// With a grace a refresh is still one commit (the kept answer is written
// in the rotation's transaction), and a replay writes nothing.
func TestRefreshGraceOneCommit(t *testing.T) {
	t.Parallel()
	var cs *countingStore
	ts := newTestServerDeps(t, func(d *provider.Deps) {
		cs = &countingStore{Store: d.Store}
		d.Store = cs
	}, func(c *provider.Config) { c.RefreshReuseGrace = 30 * time.Second })
	web := newRP(t, ts, "web", "web-secret", webRedirect, "openid", "profile")
	f := web.authorize(t, providertest.NewBrowser(ts.URL), alicePass, "allow")
	_, _, body := postForm(t, ts.URL+"/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {f.code(t, ts.URL)}, "redirect_uri": {webRedirect}, "code_verifier": {f.verifier},
	}, "web", "web-secret")
	rt, _ := body["refresh_token"].(string)
	cs.snapshot()
	status, first := ts.refresh(t, rt)
	if n, w := cs.snapshot(); status != 200 || n != 1 {
		t.Errorf("refresh: HTTP %d %v, %d commits [%s]; want 200 and 1", status, first, n, strings.Join(w, ", "))
	}
	status, again := ts.refresh(t, rt)
	if n, w := cs.snapshot(); status != 200 || n != 0 {
		t.Errorf("replay: HTTP %d %v, %d commits [%s]; want 200 and none", status, again, n, strings.Join(w, ", "))
	}
	if again["refresh_token"] != first["refresh_token"] || again["id_token"] != first["id_token"] {
		t.Errorf("replay answered other tokens")
	}
}

// The kept answer does not outlive the grace: once it is over, the
// janitor strips it from the retired token's record, which stays, so the
// retired token is still reuse and revokes its family.
func TestRefreshGraceAnswerDroppedAfterGrace(t *testing.T) {
	t.Parallel()
	op := newGraceOP(t, 30*time.Second)
	old, tr := rotate(t, op)
	ctx, sig := t.Context(), tokenSignature(old)
	rec, err := op.ts.Store.GetToken(ctx, storage.KindRefreshToken, sig)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Replay) == 0 || rec.ReplayUntil.IsZero() || rec.Active {
		t.Fatalf("retired record within the grace: active %v, %d replay bytes until %v", rec.Active, len(rec.Replay), rec.ReplayUntil)
	}
	for _, k := range []string{"access_token", "refresh_token", "id_token"} {
		if strings.Contains(string(rec.Replay), tr.Str(k)) {
			t.Errorf("the kept answer carries the %s in the clear", k)
		}
	}
	gc := op.ts.Store.(interface {
		GarbageCollect(context.Context, time.Time) (int, error)
	})
	// Within the grace the janitor leaves it.
	if _, err := gc.GarbageCollect(ctx, op.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if rec, err := op.ts.Store.GetToken(ctx, storage.KindRefreshToken, sig); err != nil || len(rec.Replay) == 0 {
		t.Fatalf("within the grace, after the janitor: %d replay bytes, %v", len(rec.Replay), err)
	}

	op.clock.Advance(31 * time.Second)
	if _, err := gc.GarbageCollect(ctx, op.clock.Now()); err != nil {
		t.Fatal(err)
	}
	rec, err = op.ts.Store.GetToken(ctx, storage.KindRefreshToken, sig)
	if err != nil {
		t.Fatalf("the retired record after the grace and the janitor: %v", err)
	}
	if rec.Replay != nil || !rec.ReplayUntil.IsZero() || rec.Active {
		t.Fatalf("retired record after the grace: active %v, %d replay bytes until %v; want inactive, none", rec.Active, len(rec.Replay), rec.ReplayUntil)
	}
	op.CheckTokenError(t, op.Refresh(t, op.Basic, old, ""), "invalid_grant")
	expectRevoked(t, op, tr)
}

// A replay is a grant like any other in the audit log (token_issued,
// reason "replay") and in provider_tokens_issued_total.
func TestRefreshGraceReplayAudited(t *testing.T) {
	t.Parallel()
	log, m := &eventLog{}, metrics.New()
	ts := newTestServerDeps(t, func(d *provider.Deps) { d.Events = audit.Fanout(log, m) },
		func(c *provider.Config) { c.RefreshReuseGrace = 30 * time.Second })
	web := newRP(t, ts, "web", "web-secret", webRedirect, "openid", "profile", "offline_access")
	f := web.authorize(t, providertest.NewBrowser(ts.URL), alicePass, "allow")
	_, _, body := postForm(t, ts.URL+"/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {f.code(t, ts.URL)}, "redirect_uri": {webRedirect}, "code_verifier": {f.verifier},
	}, "web", "web-secret")
	rt, _ := body["refresh_token"].(string)
	status, first := ts.refresh(t, rt)
	if status != 200 {
		t.Fatalf("refresh: HTTP %d %v", status, first)
	}
	status, again := ts.refresh(t, rt)
	if status != 200 || again["refresh_token"] != first["refresh_token"] {
		t.Fatalf("replay: HTTP %d, same refresh token %v", status, again["refresh_token"] == first["refresh_token"])
	}

	refreshes := 0
	log.mu.Lock()
	for _, e := range log.events {
		if e.Name == audit.TokenIssued && e.GrantType == "refresh_token" {
			refreshes++
		}
	}
	log.mu.Unlock()
	if refreshes != 2 {
		t.Errorf("%d token_issued events for refresh_token, want 2 (the rotation and the replay)", refreshes)
	}
	e := log.find(t, "replay", func(e audit.Event) bool { return e.Name == audit.TokenIssued && e.Reason == "replay" })
	if e.Outcome != audit.Success || e.ClientID != "web" || e.Subject != ts.alice.ID || e.GrantType != "refresh_token" || e.Scope != first["scope"] {
		t.Errorf("replay event %+v; want success for web, alice, refresh_token, scope %q", e, first["scope"])
	}
	raw := log.json(t)
	for _, tok := range []any{rt, first["refresh_token"], first["access_token"], first["id_token"]} {
		if s, _ := tok.(string); s == "" || strings.Contains(raw, s) {
			t.Errorf("the audit log carries a token (or the answer has none)")
		}
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if want := `provider_tokens_issued_total{grant_type="refresh_token"} 2`; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("metrics have no %q", want)
	}
}

// A client revoking (RFC 7009) the refresh token it holds, within the
// grace after that token was rotated, is answered 200, not told to retry
// (only the refresh handler treats a kept answer as a race in progress),
// and the grant ends: the successor it may never have received dies too.
// Another client presenting it changes nothing.
func TestRefreshGraceRevokeRetired(t *testing.T) {
	t.Parallel()
	for _, grace := range []time.Duration{30 * time.Second, 0} {
		op := newGraceOP(t, grace)
		old, tr := rotate(t, op)
		status, _, body := postForm(t, op.Issuer+"/revoke", url.Values{"token": {old}, "token_type_hint": {"refresh_token"}}, op.Client2.ID, op.Client2.Secret)
		if status != http.StatusOK {
			t.Fatalf("grace %v: another client revoking the retired token: HTTP %d %v, want 200", grace, status, body)
		}
		if ur := op.Userinfo(t, tr.Str("access_token"), "get"); ur.Status != 200 {
			t.Fatalf("grace %v: another client's revocation ended the grant: userinfo HTTP %d", grace, ur.Status)
		}
		status, _, body = postForm(t, op.Issuer+"/revoke", url.Values{"token": {old}, "token_type_hint": {"refresh_token"}}, op.Basic.ID, op.Basic.Secret)
		if status != http.StatusOK {
			t.Fatalf("grace %v: revoking a retired refresh token: HTTP %d %v, want 200", grace, status, body)
		}
		expectRevoked(t, op, tr)
	}
}
