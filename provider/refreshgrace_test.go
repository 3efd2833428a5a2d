package provider_test

import (
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/oidcctest"
	"github.com/smallsso/provider/provider/providertest"
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
