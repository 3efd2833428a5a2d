package provider_test

// How many write transactions (each one commit, one fsync in bbolt) the
// authorization endpoint makes per flow (issue 13): the consent is
// written with the code, a returning flow writes only the code's records,
// and nothing is written that changes nothing.

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/providertest"
	"github.com/smallsso/provider/storage"
)

// countingStore is a storage.Store that counts the write transactions
// made through it: every committed BeginTx … CommitTx, and every write
// made outside one (the backend commits it on its own). It also lists the
// writes themselves, so a test can say which one it did not expect.
type countingStore struct {
	storage.Store
	mu      sync.Mutex
	commits int
	writes  []string
}

type countingTxKey struct{}

// snapshot returns the commits and writes since the last call and resets
// both.
func (s *countingStore) snapshot() (int, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, w := s.commits, s.writes
	s.commits, s.writes = 0, nil
	return n, w
}

// wrote records one write; outside a transaction it is a commit of its
// own, when it succeeded (a failed one is rolled back).
func (s *countingStore) wrote(ctx context.Context, name string, err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes = append(s.writes, name)
	if ctx.Value(countingTxKey{}) == nil && err == nil {
		s.commits++
	}
	return err
}

func (s *countingStore) BeginTx(ctx context.Context) (context.Context, error) {
	txCtx, err := s.Store.BeginTx(ctx)
	if err != nil {
		return txCtx, err
	}
	return context.WithValue(txCtx, countingTxKey{}, true), nil
}

func (s *countingStore) CommitTx(ctx context.Context) error {
	err := s.Store.CommitTx(ctx)
	if err == nil {
		s.mu.Lock()
		s.commits++
		s.mu.Unlock()
	}
	return err
}

func (s *countingStore) CreateUser(ctx context.Context, u storage.User) error {
	return s.wrote(ctx, "CreateUser", s.Store.CreateUser(ctx, u))
}

func (s *countingStore) UpdateUser(ctx context.Context, id string, fn func(storage.User) (storage.User, error)) error {
	return s.wrote(ctx, "UpdateUser", s.Store.UpdateUser(ctx, id, fn))
}

func (s *countingStore) DeleteUser(ctx context.Context, id string) error {
	return s.wrote(ctx, "DeleteUser", s.Store.DeleteUser(ctx, id))
}

func (s *countingStore) CreateClient(ctx context.Context, c storage.Client) error {
	return s.wrote(ctx, "CreateClient", s.Store.CreateClient(ctx, c))
}

func (s *countingStore) UpdateClient(ctx context.Context, id string, fn func(storage.Client) (storage.Client, error)) error {
	return s.wrote(ctx, "UpdateClient", s.Store.UpdateClient(ctx, id, fn))
}

func (s *countingStore) DeleteClient(ctx context.Context, id string) error {
	return s.wrote(ctx, "DeleteClient", s.Store.DeleteClient(ctx, id))
}

func (s *countingStore) CreateTrustedIssuer(ctx context.Context, ti storage.TrustedIssuer) error {
	return s.wrote(ctx, "CreateTrustedIssuer", s.Store.CreateTrustedIssuer(ctx, ti))
}

func (s *countingStore) DeleteTrustedIssuer(ctx context.Context, id string) error {
	return s.wrote(ctx, "DeleteTrustedIssuer", s.Store.DeleteTrustedIssuer(ctx, id))
}

func (s *countingStore) CreateToken(ctx context.Context, r storage.TokenRequest) error {
	return s.wrote(ctx, "CreateToken "+string(r.Kind), s.Store.CreateToken(ctx, r))
}

func (s *countingStore) DeleteToken(ctx context.Context, kind storage.TokenKind, signature string) error {
	return s.wrote(ctx, "DeleteToken "+string(kind), s.Store.DeleteToken(ctx, kind, signature))
}

func (s *countingStore) DeactivateToken(ctx context.Context, kind storage.TokenKind, signature string) error {
	return s.wrote(ctx, "DeactivateToken "+string(kind), s.Store.DeactivateToken(ctx, kind, signature))
}

func (s *countingStore) SetTokenReplay(ctx context.Context, kind storage.TokenKind, signature string, replay []byte, until time.Time) error {
	return s.wrote(ctx, "SetTokenReplay "+string(kind), s.Store.SetTokenReplay(ctx, kind, signature, replay, until))
}

func (s *countingStore) RevokeByRequestID(ctx context.Context, kind storage.TokenKind, reqID string) error {
	return s.wrote(ctx, "RevokeByRequestID "+string(kind), s.Store.RevokeByRequestID(ctx, kind, reqID))
}

func (s *countingStore) RevokeSubjectClient(ctx context.Context, subject, clientID string) error {
	return s.wrote(ctx, "RevokeSubjectClient", s.Store.RevokeSubjectClient(ctx, subject, clientID))
}

func (s *countingStore) CreateBrowserSession(ctx context.Context, bs storage.BrowserSession) error {
	return s.wrote(ctx, "CreateBrowserSession", s.Store.CreateBrowserSession(ctx, bs))
}

func (s *countingStore) UpdateBrowserSession(ctx context.Context, id string, fn func(storage.BrowserSession) (storage.BrowserSession, error)) error {
	return s.wrote(ctx, "UpdateBrowserSession", s.Store.UpdateBrowserSession(ctx, id, fn))
}

func (s *countingStore) DeleteBrowserSession(ctx context.Context, id string) error {
	return s.wrote(ctx, "DeleteBrowserSession", s.Store.DeleteBrowserSession(ctx, id))
}

func (s *countingStore) SaveConsent(ctx context.Context, c storage.Consent) error {
	return s.wrote(ctx, "SaveConsent", s.Store.SaveConsent(ctx, c))
}

func (s *countingStore) DeleteConsent(ctx context.Context, userID, clientID string) error {
	return s.wrote(ctx, "DeleteConsent", s.Store.DeleteConsent(ctx, userID, clientID))
}

func (s *countingStore) CreateJTI(ctx context.Context, j storage.JTI, now time.Time) error {
	return s.wrote(ctx, "CreateJTI", s.Store.CreateJTI(ctx, j, now))
}

func (s *countingStore) GarbageCollect(ctx context.Context, now time.Time) (int, error) {
	n, err := s.Store.GarbageCollect(ctx, now)
	return n, s.wrote(ctx, "GarbageCollect", err)
}

// newCountingServer is a test server whose provider writes through a
// countingStore, with one more client, "first", that skips consent.
func newCountingServer(t *testing.T) (*testServer, *countingStore) {
	t.Helper()
	var cs *countingStore
	ts := newTestServerDeps(t, func(d *provider.Deps) {
		cs = &countingStore{Store: d.Store}
		d.Store = cs
	})
	ts.addClient(t, clientspec.Spec{ID: "first", Secret: "first-secret-0123456789abcdef", ClientSettings: storage.ClientSettings{
		Name: "First Party", RedirectURIs: []string{webRedirect}, Scopes: []string{"openid", "profile"}, SkipConsent: true,
	}})
	cs.snapshot()
	return ts, cs
}

// step is one page or redirect of a flow and what it wrote.
type step struct {
	page    *providertest.Page
	commits int
	writes  []string
}

func (s step) String() string {
	return strings.Join(s.writes, ", ")
}

// countedSubmit posts the page's one form with set, and counts what it wrote.
func countedSubmit(t *testing.T, cs *countingStore, b *providertest.Browser, page *providertest.Page, set url.Values) step {
	t.Helper()
	form, err := page.ParseForm()
	if err != nil {
		t.Fatalf("%v (HTTP %d)", err, page.Status)
	}
	next, err := b.Submit(context.Background(), page, form, set)
	if err != nil {
		t.Fatal(err)
	}
	n, w := cs.snapshot()
	return step{next, n, w}
}

func countedVisit(t *testing.T, cs *countingStore, b *providertest.Browser, u string) step {
	t.Helper()
	page := get(t, b, u)
	n, w := cs.snapshot()
	return step{page, n, w}
}

func isConsentPage(p *providertest.Page) bool {
	f, err := p.ParseForm()
	return err == nil && len(f.Buttons["decision"]) > 0
}

func isLoginPage(p *providertest.Page) bool {
	f, err := p.ParseForm()
	return err == nil && f.Values.Has("password")
}

func redirectCode(t *testing.T, s step) string {
	t.Helper()
	if s.page.Location == nil || s.page.Location.Query().Get("code") == "" {
		t.Fatalf("want a redirect with a code, got HTTP %d Location %v", s.page.Status, s.page.Location)
	}
	return s.page.Location.Query().Get("code")
}

// onlyCodeWrites fails unless every write of s is one of the records
// fosite stores for an authorization response (the code, its PKCE and
// OIDC sessions): no consent, no browser session.
func onlyCodeWrites(t *testing.T, name string, s step) {
	t.Helper()
	if len(s.writes) == 0 || slices.ContainsFunc(s.writes, func(w string) bool { return !strings.HasPrefix(w, "CreateToken ") }) {
		t.Errorf("%s wrote [%s], want only the code's records", name, s)
	}
}

// The write transactions of the authorization endpoint, per flow: the
// login is one (the browser session), the consent page's Allow one (the
// remembered consent, the browser session's client list and the code
// together), a returning flow one with nothing but the code's records,
// and a client that skips consent the same without a consent page.
func TestAuthorizeCommitsPerFlow(t *testing.T) {
	t.Parallel()
	ts, cs := newCountingServer(t)
	ctx := context.Background()
	web := newRP(t, ts, "web", "web-secret", webRedirect, "openid", "profile")
	authURL := func(r *rp, opts ...oauth2.AuthCodeOption) string {
		opts = append(opts, oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
		return r.oauth2.AuthCodeURL(randomString(), opts...)
	}

	// (a) A first flow: login page, consent page, code.
	b := providertest.NewBrowser(ts.URL)
	s := countedVisit(t, cs, b, authURL(web))
	if !isLoginPage(s.page) || s.commits != 0 {
		t.Fatalf("first visit: login page %v, %d commits [%s]; want the login page and none", isLoginPage(s.page), s.commits, s)
	}
	s = countedSubmit(t, cs, b, s.page, url.Values{"username": {"alice"}, "password": {alicePass}})
	if !isConsentPage(s.page) {
		t.Fatalf("after login: HTTP %d, want the consent page", s.page.Status)
	}
	t.Logf("login: %d commits [%s]", s.commits, s)
	if s.commits != 1 {
		t.Errorf("login: %d commits [%s], want 1", s.commits, s)
	}
	s = countedSubmit(t, cs, b, s.page, url.Values{"decision": {"allow"}, "remember": {"yes"}})
	redirectCode(t, s)
	t.Logf("consent allowed: %d commits [%s]", s.commits, s)
	if s.commits != 1 {
		t.Errorf("consent allowed: %d commits [%s], want 1", s.commits, s)
	}
	if !slices.Contains(s.writes, "SaveConsent") {
		t.Errorf("consent allowed: [%s], want the consent saved", s)
	}
	if _, err := ts.Store.GetConsent(ctx, ts.alice.ID, "web"); err != nil {
		t.Errorf("remembered consent: %v", err)
	}

	// (b) Returning: signed in, consent remembered.
	s = countedVisit(t, cs, b, authURL(web))
	redirectCode(t, s)
	t.Logf("returning: %d commits [%s]", s.commits, s)
	if s.commits != 1 {
		t.Errorf("returning: %d commits [%s], want 1", s.commits, s)
	}
	onlyCodeWrites(t, "returning", s)

	// Asked again (prompt=consent) and remembered again with the same
	// scopes: the stored consent does not change, so it is not written.
	s = countedVisit(t, cs, b, authURL(web, oauth2.SetAuthURLParam("prompt", "consent")))
	s = countedSubmit(t, cs, b, s.page, url.Values{"decision": {"allow"}, "remember": {"yes"}})
	redirectCode(t, s)
	if s.commits != 1 {
		t.Errorf("consent allowed again: %d commits [%s], want 1", s.commits, s)
	}
	onlyCodeWrites(t, "consent allowed again", s)
	// Asked for more: the consent is written with the code again.
	s = countedVisit(t, cs, b, authURL(web, oauth2.SetAuthURLParam("scope", "openid profile email")))
	s = countedSubmit(t, cs, b, s.page, url.Values{"decision": {"allow"}, "remember": {"yes"}})
	redirectCode(t, s)
	if s.commits != 1 || !slices.Contains(s.writes, "SaveConsent") {
		t.Errorf("consent to more scopes: %d commits [%s], want 1 with the consent", s.commits, s)
	}

	// (c) A client that skips consent, in the same browser session: one
	// commit, which also adds the client to the session (logout tells it).
	first := newRP(t, ts, "first", "first-secret-0123456789abcdef", webRedirect, "openid", "profile")
	s = countedVisit(t, cs, b, authURL(first))
	redirectCode(t, s)
	if s.commits != 1 || !slices.Contains(s.writes, "UpdateBrowserSession") || slices.Contains(s.writes, "SaveConsent") {
		t.Errorf("skip_consent, new to the session: %d commits [%s], want 1 with the session's client list and no consent", s.commits, s)
	}
	s = countedVisit(t, cs, b, authURL(first))
	redirectCode(t, s)
	t.Logf("skip_consent returning: %d commits [%s]", s.commits, s)
	if s.commits != 1 {
		t.Errorf("skip_consent returning: %d commits [%s], want 1", s.commits, s)
	}
	onlyCodeWrites(t, "skip_consent returning", s)

	// A fresh browser: the login, then straight back with the code.
	b2 := providertest.NewBrowser(ts.URL)
	s = countedVisit(t, cs, b2, authURL(first))
	if !isLoginPage(s.page) {
		t.Fatalf("skip_consent, signed out: HTTP %d, want the login page", s.page.Status)
	}
	s = countedSubmit(t, cs, b2, s.page, url.Values{"username": {"alice"}, "password": {alicePass}})
	redirectCode(t, s)
	t.Logf("skip_consent login: %d commits [%s]", s.commits, s)
	if s.commits > 2 {
		t.Errorf("skip_consent login: %d commits [%s], want at most 2", s.commits, s)
	}

	// Signing in again (prompt=login) replaces the browser session: the
	// old one goes and the new one comes in one commit, then the code
	// (consent remembered) in another.
	s = countedVisit(t, cs, b, authURL(web, oauth2.SetAuthURLParam("prompt", "login")))
	s = countedSubmit(t, cs, b, s.page, url.Values{"username": {"alice"}, "password": {alicePass}})
	redirectCode(t, s)
	t.Logf("login again: %d commits [%s]", s.commits, s)
	if s.commits != 2 || !slices.Contains(s.writes, "DeleteBrowserSession") {
		t.Errorf("login again: %d commits [%s], want 2 (the session replaced, then the code)", s.commits, s)
	}

	// Allow without remembering: nothing remembered, still one commit.
	post := newRP(t, ts, "post", "post-secret", webRedirect, "openid")
	s = countedVisit(t, cs, b, authURL(post))
	if !isConsentPage(s.page) {
		t.Fatalf("post: HTTP %d, want the consent page", s.page.Status)
	}
	s = countedSubmit(t, cs, b, s.page, url.Values{"decision": {"allow"}, "remember": nil})
	redirectCode(t, s)
	if s.commits != 1 || slices.Contains(s.writes, "SaveConsent") {
		t.Errorf("allowed once: %d commits [%s], want 1 and no consent saved", s.commits, s)
	}
	if _, err := ts.Store.GetConsent(ctx, ts.alice.ID, "post"); err == nil {
		t.Error("a consent not to be remembered was saved")
	}
	// Denied: nothing written at all.
	s = countedVisit(t, cs, b, authURL(post))
	s = countedSubmit(t, cs, b, s.page, url.Values{"decision": {"deny"}})
	if s.page.Location == nil || s.page.Location.Query().Get("error") != "access_denied" || s.commits != 0 {
		t.Errorf("denied: HTTP %d Location %v, %d commits [%s]; want access_denied and none", s.page.Status, s.page.Location, s.commits, s)
	}
}

// The token endpoint makes one write transaction per grant: the code
// exchange claims the code and stores the tokens together, a refresh
// rotates and stores together; a client-credentials grant writes nothing,
// its token is sealed. Nothing is deleted that is about to expire anyway.
func TestTokenCommitsPerGrant(t *testing.T) {
	t.Parallel()
	ts, cs := newCountingServer(t)
	web := newRP(t, ts, "web", "web-secret", webRedirect, "openid", "profile")
	f := web.authorize(t, providertest.NewBrowser(ts.URL), alicePass, "allow")
	code := f.code(t, ts.URL)
	cs.snapshot()

	status, _, body := postForm(t, ts.URL+"/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect}, "code_verifier": {f.verifier},
	}, "web", "web-secret")
	n, w := cs.snapshot()
	if status != 200 || n != 1 {
		t.Errorf("code exchange: HTTP %d, %d commits [%s]; want 200 and 1", status, n, strings.Join(w, ", "))
	}
	rt, _ := body["refresh_token"].(string)
	if rt == "" {
		t.Fatalf("code exchange: no refresh token in %v", body)
	}
	status, body = ts.refresh(t, rt)
	if n, w := cs.snapshot(); status != 200 || n != 1 {
		t.Errorf("refresh: HTTP %d %v, %d commits [%s]; want 200 and 1", status, body, n, strings.Join(w, ", "))
	}
	// A client-credentials token is sealed, not stored (cctoken.go).
	status, _, _ = postForm(t, ts.URL+"/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"api:read"}}, "svc", "svc-secret")
	if n, w := cs.snapshot(); status != 200 || n != 0 {
		t.Errorf("client_credentials: HTTP %d, %d commits [%s]; want 200 and none", status, n, strings.Join(w, ", "))
	}
}
