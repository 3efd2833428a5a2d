package provider_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/smallsso/provider/keys"
	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/admin"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/providertest"
	"github.com/smallsso/provider/provider/secret"
	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/bolt"
	"github.com/smallsso/provider/templates"
)

const (
	webRedirect = "http://127.0.0.1:5555/callback"
	spaRedirect = "http://127.0.0.1:5556/spa"
	alicePass   = "correct horse battery staple"
)

// testServer is the real provider on a random loopback port, over a bolt
// database and key directory in a temp dir.
type testServer struct {
	URL    string
	Store  storage.Store
	Keys   *keys.Manager
	srv    *httptest.Server
	alice  storage.User
	sealer *secret.Sealer
	// DBPath is the bolt file.
	DBPath string
	// Provider is the server's provider, for what a reload would call.
	Provider *provider.Provider
}

func newTestServer(t testing.TB, mutate ...func(*provider.Config)) *testServer {
	t.Helper()
	return newTestServerDeps(t, nil, mutate...)
}

// newTestServerDeps is newTestServer with a chance to change the provider's
// collaborators (a clock, say) before it is built.
func newTestServerDeps(t testing.TB, deps func(*provider.Deps), mutate ...func(*provider.Config)) *testServer {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "provider.db")
	store, err := bolt.Open(dbPath, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := copyKeyTemplate(filepath.Join(dir, "keys")); err != nil {
		t.Fatal(err)
	}
	km, err := keys.Open(filepath.Join(dir, "keys"), keys.Options{Algorithms: clientspec.SigningAlgorithms})
	if err != nil {
		t.Fatal(err)
	}
	providerSecret, err := km.Secret("provider")
	if err != nil {
		t.Fatal(err)
	}
	pages, err := templates.New(templates.Embedded())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	cfg := provider.Config{Issuer: issuer, OrgName: "Test Org"}
	for _, m := range mutate {
		m(&cfg)
	}
	sealer := secret.NewSealer(providerSecret)
	err = admin.SyncClients(ctx, store, sealer, []clientspec.Spec{
		{ID: "web", SecretHash: testHash("web-secret"), ClientSettings: storage.ClientSettings{
			Name:         "Web App",
			RedirectURIs: []string{webRedirect},
			GrantTypes:   []string{"authorization_code", "refresh_token"},
			Scopes:       []string{"openid", "profile", "email", "groups", "offline_access"},
			// ts.introspect asks as web about every client's tokens.
			Introspect: clientspec.IntrospectAny,
		}},
		{ID: "post", SecretHash: testHash("post-secret"), ClientSettings: storage.ClientSettings{
			RedirectURIs:            []string{webRedirect},
			TokenEndpointAuthMethod: "client_secret_post",
			Scopes:                  []string{"openid"},
		}},
		{ID: "spa", ClientSettings: storage.ClientSettings{
			Public:       true,
			RedirectURIs: []string{spaRedirect},
			GrantTypes:   []string{"authorization_code", "refresh_token"},
			Scopes:       []string{"openid", "profile", "offline_access"},
		}},
		{ID: "svc", SecretHash: testHash("svc-secret"), ClientSettings: storage.ClientSettings{GrantTypes: []string{"client_credentials"}, Scopes: []string{"api:read", "api:write"}}},
	}, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	alice := storage.User{
		ID: rand.Text(), Username: "alice", Profile: storage.Profile{
			Email:         "alice@example.org",
			EmailVerified: true,
			Name:          "Alice Liddell",
			GivenName:     "Alice",
			FamilyName:    "Liddell",
			Groups:        []string{"admins", "staff"},
		}, PasswordHash: testHash(alicePass),
		CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC(),
	}
	if err := store.CreateUser(ctx, alice); err != nil {
		t.Fatal(err)
	}
	// Whatever a test registers, and even with the outbound guard broken,
	// the provider never looks a name up in DNS nor connects anywhere but
	// loopback; tests of the guard replace these with a netRecorder.
	d := provider.Deps{Store: store, Keys: km, Templates: pages, Secret: providerSecret,
		OutboundResolver: loopbackResolver{}, OutboundDial: loopbackOnlyDial}
	if deps != nil {
		deps(&d)
	}
	p, err := provider.New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = p.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	return &testServer{URL: issuer, Store: store, Keys: km, srv: srv, alice: alice, sealer: sealer, DBPath: dbPath, Provider: p}
}

// rp is a relying party: go-oidc for discovery and verification, x/oauth2
// for the protocol.
type rp struct {
	provider *oidc.Provider
	oauth2   oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func newRP(t testing.TB, ts *testServer, clientID, secret, redirect string, scopes ...string) *rp {
	t.Helper()
	p, err := oidc.NewProvider(context.Background(), ts.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &rp{
		provider: p,
		oauth2:   oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: p.Endpoint(), RedirectURL: redirect, Scopes: scopes},
		verifier: p.Verifier(&oidc.Config{ClientID: clientID}),
	}
}

// flow is one finished authorization request.
type flow struct {
	state, nonce, verifier string
	redirect               *url.URL
}

// authorize signs alice in through the browser and returns the redirect.
func (r *rp) authorize(t testing.TB, b *providertest.Browser, password, decision string, opts ...oauth2.AuthCodeOption) flow {
	t.Helper()
	f := flow{state: randomString(), nonce: randomString(), verifier: oauth2.GenerateVerifier()}
	opts = append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.verifier), oidc.Nonce(f.nonce)}, opts...)
	loc, err := b.SignIn(context.Background(), r.oauth2.AuthCodeURL(f.state, opts...), "alice", password, decision)
	if err != nil {
		t.Fatalf("sign-in: %v", err)
	}
	f.redirect = loc
	return f
}

// code checks the redirect is a successful one for f and returns the code.
func (f flow) code(t testing.TB, issuer string) string {
	t.Helper()
	q := f.redirect.Query()
	if e := q.Get("error"); e != "" {
		t.Fatalf("authorization error %s: %s", e, q.Get("error_description"))
	}
	if q.Get("state") != f.state {
		t.Fatalf("state = %q, want %q", q.Get("state"), f.state)
	}
	if q.Get("iss") != issuer {
		t.Fatalf("iss = %q, want %q (RFC 9207)", q.Get("iss"), issuer)
	}
	if q.Get("code") == "" {
		t.Fatal("no code in redirect")
	}
	return q.Get("code")
}

func randomString() string { return rand.Text() }

// postForm sends a form, optionally with HTTP Basic client credentials, and
// decodes the JSON answer.
func postForm(t *testing.T, endpoint string, form url.Values, user, pass string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	return doJSON(t, req)
}

func doJSON(t *testing.T, req *http.Request) (int, http.Header, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("%s %s: HTTP %d, body is not JSON: %q", req.Method, req.URL, resp.StatusCode, body)
		}
	}
	return resp.StatusCode, resp.Header, out
}

// introspect asks whether a token is active, as client web.
func (ts *testServer) introspect(t *testing.T, token string) map[string]any {
	t.Helper()
	status, _, body := postForm(t, ts.URL+"/introspect", url.Values{"token": {token}}, "web", "web-secret")
	if status != http.StatusOK {
		t.Fatalf("introspect: HTTP %d %v", status, body)
	}
	return body
}

func (ts *testServer) refresh(t *testing.T, refreshToken string) (int, map[string]any) {
	t.Helper()
	status, _, body := postForm(t, ts.URL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}, "web", "web-secret")
	return status, body
}

func asRetrieveError(err error, target **oauth2.RetrieveError) bool {
	return errors.As(err, target)
}

// addClient registers one more client on a running test server, as the
// CLI would, and returns the secret it was given (or generated).
func (ts *testServer) addClient(t testing.TB, spec clientspec.Spec) string {
	t.Helper()
	adm := &admin.Local{Store: ts.Store, Sealer: ts.sealer}
	_, generated, err := adm.AddClient(context.Background(), spec)
	if err != nil {
		t.Fatalf("add client %q: %v", spec.ID, err)
	}
	if generated != "" {
		return generated
	}
	return spec.Secret
}

// The fixture's fixed secrets are hashed once per test binary: argon2id
// is deliberately slow, and every test server needs the same hashes.
var testHashes sync.Map

func testHash(clear string) string {
	if h, ok := testHashes.Load(clear); ok {
		return h.(string)
	}
	h, err := secret.Hash(clear)
	if err != nil {
		panic(err)
	}
	h2, _ := testHashes.LoadOrStore(clear, h)
	return h2.(string)
}

// keyTemplate is a key directory generated once per test binary; every
// test server starts from a copy, which spares an RSA key generation per
// test. The servers share keys, which no test depends on either way.
var keyTemplate = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "provider-test-keys-")
	if err != nil {
		return "", err
	}
	km, err := keys.Open(dir, keys.Options{Algorithms: clientspec.SigningAlgorithms})
	if err != nil {
		return "", err
	}
	_, err = km.Secret("provider")
	return dir, err
})

func copyKeyTemplate(dst string) error {
	src, err := keyTemplate()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	stopChromium()
	if dir, err := keyTemplate(); err == nil && dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// loopbackOnlyDial connects to loopback addresses only and refuses any
// other, so no test sends a packet off the machine.
func loopbackOnlyDial(ctx context.Context, network, address string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.Unmap().IsLoopback() {
		return nil, fmt.Errorf("test dialer refuses %s", address)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}

// loopbackResolver answers localhost and address literals, and nothing
// else: tests make no DNS queries.
type loopbackResolver struct{}

func (loopbackResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}, nil
	}
	return nil, &net.DNSError{Err: "no such host (tests resolve no names)", Name: host, IsNotFound: true}
}
