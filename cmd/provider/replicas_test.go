//go:build linux

package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider/providertest"
	"github.com/smallsso/provider/storage/postgres/pgtest"
)

// Replicas: two `provider serve` on one PostgreSQL database, behind a
// round-robin load balancer on loopback with no sticky sessions, sharing
// one issuer and differing only in listen. A test client pins a request
// to one replica with the replicaHeader, which the balancer strips.

const (
	replicaHeader = "X-Test-Replica"
	machineSecret = "machine-secret-for-tests-only"
)

// replicaClients is what both replicas' configs declare.
const replicaClients = `clients:
  - id: app
    secret: ` + appSecret + `
    name: Test App
    redirect_uris: [` + appCallback + `]
    grant_types: [authorization_code, refresh_token]
    scopes: [openid, profile, email, offline_access]
    token_endpoint_auth_method: client_secret_basic
  - id: legacy
    secret: ` + legacySecret + `
    grant_types: [password, refresh_token]
    scopes: [openid, offline_access]
  - id: machine
    secret: ` + machineSecret + `
    grant_types: [client_credentials]
    scopes: [api]
users:
  - username: alice
    password: alice-password-for-tests
    email: alice@example.org
    email_verified: true
    name: Alice Example
  - username: bob
    password: bob-password-for-tests
    email: bob@example.org
tokens:
  refresh_reuse_grace: 30s
`

// loadBalancer spreads requests over the replicas in turn.
type loadBalancer struct {
	issuer  string
	proxies []*httputil.ReverseProxy
	next    atomic.Uint64
}

func newLoadBalancer(t *testing.T, n int) (*loadBalancer, []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lb := &loadBalancer{issuer: "http://" + ln.Addr().String()}
	var backends []string
	for range n {
		backend := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
		target, _ := url.Parse(backend)
		backends = append(backends, backend)
		lb.proxies = append(lb.proxies, &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Host = pr.In.Host // the issuer's host, as a real proxy keeps it
			},
			Transport: &http.Transport{},
			ErrorLog:  log.New(io.Discard, "", 0),
		})
	}
	srv := &http.Server{Handler: lb, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return lb, backends
}

func (lb *loadBalancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := int(lb.next.Add(1) % uint64(len(lb.proxies)))
	if h := r.Header.Get(replicaHeader); h != "" {
		n, err := strconv.Atoi(h)
		if err != nil || n < 0 || n >= len(lb.proxies) {
			http.Error(w, "bad replica", http.StatusBadRequest)
			return
		}
		i = n
	}
	r.Header.Del(replicaHeader)
	lb.proxies[i].ServeHTTP(w, r)
}

// pinned sends every request to one replica through the balancer.
type pinned struct {
	replica int
	base    http.RoundTripper
}

func (p pinned) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(replicaHeader, strconv.Itoa(p.replica))
	return p.base.RoundTrip(r)
}

// replicaSet is the configs of n replicas on one fresh database of
// cluster, behind one balancer.
type replicaSet struct {
	lb      *loadBalancer
	issuer  string
	configs []*testConfig
	dsn     string
	key     string
}

func newReplicaSet(t *testing.T, cluster *pgtest.Cluster, n int, extra string) *replicaSet {
	t.Helper()
	lb, backends := newLoadBalancer(t, n)
	secret := make([]byte, 32)
	rand.Read(secret)
	rs := &replicaSet{lb: lb, issuer: lb.issuer, dsn: cluster.NewDatabase(t), key: base64.StdEncoding.EncodeToString(secret)}
	for _, backend := range backends {
		dir := t.TempDir()
		c := &testConfig{dir: dir, path: dir + "/config.yaml", issuer: rs.issuer}
		listen := strings.TrimPrefix(backend, "http://")
		writeFile(t, c.path, fmt.Sprintf(`issuer: %s
listen: %s
storage:
  postgres:
    dsn: %q
keys:
  encryption_key: %s
log:
  level: info
`, rs.issuer, listen, rs.dsn, rs.key)+extra)
		rs.configs = append(rs.configs, c)
	}
	return rs
}

// client is an HTTP client whose requests all go to replica i.
func (rs *replicaSet) client(t *testing.T, i int) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: pinned{i, tr}, Timeout: 20 * time.Second}
}

// serveAll starts every replica as a process of its own (the test binary
// as `provider serve`), all at once, as an orchestrator starting a
// deployment does, and waits until each listens. Separate processes share
// nothing but the database, as replicas on separate machines.
func (rs *replicaSet) serveAll(t *testing.T) []*child {
	t.Helper()
	binary := testBinary(t, false)
	children := make([]*child, len(rs.configs))
	for i, c := range rs.configs {
		children[i] = startChild(t, binary, c, nil)
	}
	for _, ch := range children {
		ch.waitListening(t)
	}
	return children
}

// noSecretsIn fails t if text shows the DSN's password or the encryption
// key.
func (rs *replicaSet) noSecretsIn(t *testing.T, what, text string) {
	t.Helper()
	u, err := url.Parse(rs.dsn)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	for name, secret := range map[string]string{"the database password": pw, "the encryption key": rs.key} {
		if secret != "" && strings.Contains(text, secret) {
			t.Errorf("%s shows %s", what, name)
		}
	}
}

// TestReplicasShareOneDatabase walks one person's grant over two replicas:
// authorize on A, token on B, refresh on A, userinfo and introspection on
// both, revocation on B; a login session made on A is honoured by B; a key
// rotated from A's config is in B's JWKS; a client the CLI adds works on
// both at once.
func TestReplicasShareOneDatabase(t *testing.T) {
	t.Parallel()
	rs := newReplicaSet(t, pgtest.Shared(t), 2, replicaClients)
	servers := rs.serveAll(t)
	const A, B = 0, 1
	ctx := t.Context()

	rp := newRelyingParty(t, rs.issuer, "app", appSecret, appCallback, oidc.ScopeOpenID, "profile", oidc.ScopeOfflineAccess)
	on := func(i int) *http.Client { return rs.client(t, i) }
	ctxOn := func(i int) context.Context { return oidc.ClientContext(ctx, on(i)) }

	// Authorize (login and consent pages) on A.
	verifier := oauth2.GenerateVerifier()
	browser := providertest.NewBrowser(rs.issuer)
	browser.HTTP.Transport = pinned{A, &http.Transport{}}
	loc, err := browser.SignIn(ctx, rp.oauth.AuthCodeURL("state-1", oauth2.S256ChallengeOption(verifier)), "alice", "alice-password-for-tests", "allow")
	if err != nil {
		t.Fatalf("sign in on A: %v", err)
	}
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("A redirected to %s, want a code", loc)
	}
	// The code is redeemed on B.
	tok, err := rp.oauth.Exchange(ctxOn(B), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("token on B for a code from A: %v", err)
	}
	sub := verify(t, rs.issuer, "app", idToken(t, tok)).Subject

	// Refresh on A.
	refreshed, err := rp.oauth.TokenSource(ctxOn(A), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh on A of a token issued by B: %v", err)
	}
	if refreshed.RefreshToken == tok.RefreshToken {
		t.Fatal("refresh did not rotate the refresh token")
	}

	// Userinfo and introspection on both.
	for _, i := range []int{A, B} {
		status, got := userinfoSub(t, on(i), rs.issuer, refreshed.AccessToken)
		if status != http.StatusOK || got != sub {
			t.Fatalf("userinfo on replica %d: HTTP %d sub %q, want 200 %q", i, status, got, sub)
		}
		if in := introspectOn(t, on(i), rs.issuer, "app", appSecret, refreshed.AccessToken); !in.Active || in.Sub != sub {
			t.Fatalf("introspection on replica %d: %+v", i, in)
		}
	}

	// Revocation on B ends the grant everywhere.
	if a := call(t, on(B), http.MethodPost, rs.issuer+"/revoke", url.Values{"token": {refreshed.RefreshToken}}, "app", appSecret); a.status != http.StatusOK {
		t.Fatalf("revoke on B: HTTP %d %s", a.status, a.raw)
	}
	for _, i := range []int{A, B} {
		if in := introspectOn(t, on(i), rs.issuer, "app", appSecret, refreshed.RefreshToken); in.Active {
			t.Fatalf("replica %d: the refresh token revoked on B is still active", i)
		}
	}
	if _, err := rp.oauth.TokenSource(ctxOn(A), &oauth2.Token{RefreshToken: refreshed.RefreshToken}).Token(); err == nil {
		t.Fatal("A accepted a refresh token revoked on B")
	}

	// The login session made on A is honoured by B: no login form.
	browser.HTTP.Transport = pinned{B, &http.Transport{}}
	page, err := browser.Get(ctx, rp.oauth.AuthCodeURL("state-2", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	if form, err := page.ParseForm(); err == nil && form.Values.Has("password") {
		t.Fatal("B asked to sign in again although A has a login session for this browser")
	}
	if page.Location == nil && page.Status != http.StatusOK {
		t.Fatalf("authorize on B with A's session: HTTP %d", page.Status)
	}
	loc, err = browser.SignIn(ctx, rp.oauth.AuthCodeURL("state-3", oauth2.S256ChallengeOption(verifier)), "", "", "allow")
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorize on B with A's session: %v %v", loc, err)
	}
	// A code is single use across replicas: redeemed on A, then again on
	// B, it fails, and the tokens it gave are revoked on both.
	code = loc.Query().Get("code")
	second, err := rp.oauth.Exchange(ctxOn(A), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("token on A for a code from B: %v", err)
	}
	if _, err := rp.oauth.Exchange(ctxOn(B), code, oauth2.VerifierOption(verifier)); err == nil {
		t.Fatal("the code was redeemed twice, on A then on B")
	}
	for _, i := range []int{A, B} {
		if in := introspectOn(t, on(i), rs.issuer, "app", appSecret, second.AccessToken); in.Active {
			t.Fatalf("replica %d: a token from a code redeemed twice is still active", i)
		}
	}

	// A key rotated with A's config shows in B's JWKS, and tokens signed
	// with it verify against either replica's keys.
	before := jwksOn(t, on(B), rs.issuer)
	runCLI(t, "", "keys", "rotate", "--config", rs.configs[A].path).ok(t)
	var after []string
	for deadline := time.Now().Add(10 * time.Second); ; {
		after = jwksOn(t, on(B), rs.issuer)
		if len(newKIDs(before, after)) > 0 || time.Now().After(deadline) {
			break
		}
		pollPause()
	}
	fresh := newKIDs(before, after)
	if len(fresh) == 0 {
		t.Fatalf("B's JWKS %v has no new key after a rotation from A's config (before: %v)", after, before)
	}
	// A serves the same set once its next poll (within a second) ran.
	waitFor(t, 10*time.Second, "A and B to publish the same JWKS", func() bool {
		return slices.Equal(jwksOn(t, on(A), rs.issuer), after)
	})

	// A client added with the CLI (database mode: no socket) works on
	// both at once.
	out := runCLI(t, "", "clients", "add", "--config", rs.configs[B].path, "--id", "cli-added",
		"--grant-type", "client_credentials", "--scope", "api").ok(t)
	secret := secretFrom(t, out)
	for _, i := range []int{A, B} {
		a := call(t, on(i), http.MethodPost, rs.issuer+"/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}}, "cli-added", secret)
		if a.status != http.StatusOK {
			t.Fatalf("replica %d: client_credentials for a client the CLI just added: HTTP %d %s", i, a.status, a.raw)
		}
	}

	for i, s := range servers {
		rs.noSecretsIn(t, fmt.Sprintf("replica %d's log", i), s.stderr.String())
		s.noPanic(t)
	}
}

// TestReplicasShareSignInThrottle spreads password guesses for one account
// over two replicas: they count together, so the account's budget is the
// org's, not each replica's.
func TestReplicasShareSignInThrottle(t *testing.T) {
	t.Parallel()
	rs := newReplicaSet(t, pgtest.Shared(t), 2, replicaClients)
	rs.serveAll(t)
	guess := func(i int, password string) answer {
		return call(t, rs.client(t, i), http.MethodPost, rs.issuer+"/token",
			url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {password}, "scope": {"openid"}}, "legacy", legacySecret)
	}
	// Five wrong guesses from one address, alternating replicas: each
	// replica saw fewer than five.
	for n := range 5 {
		if a := guess(n%2, "wrong-"+strconv.Itoa(n)); a.status != http.StatusBadRequest {
			t.Fatalf("guess %d: HTTP %d %s, want 400 invalid_grant", n, a.status, a.raw)
		}
	}
	// The right password is refused now on either replica: the budget of
	// five in a row is spent, whichever replica counted which guess.
	for _, i := range []int{1, 0} {
		if a := guess(i, "bob-password-for-tests"); a.status == http.StatusOK {
			t.Fatalf("replica %d let a sixth password check through after five failures spread over both replicas", i)
		}
	}
	// Another account is not affected.
	a := call(t, rs.client(t, 1), http.MethodPost, rs.issuer+"/token",
		url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password-for-tests"}, "scope": {"openid"}}, "legacy", legacySecret)
	if a.status != http.StatusOK {
		t.Fatalf("alice's sign-in after bob's lockout: HTTP %d %s", a.status, a.raw)
	}
}

// TestReplicasRefreshRace presents one refresh token to both replicas at
// once, many times: exactly one rotation happens each time (the loser is
// given the winner's answer, the refresh grace), and presenting the old
// token after its successor was used is reuse, which revokes the family on
// every replica.
func TestReplicasRefreshRace(t *testing.T) {
	t.Parallel()
	rs := newReplicaSet(t, pgtest.Shared(t), 2, replicaClients)
	rs.serveAll(t)
	hcs := []*http.Client{rs.client(t, 0), rs.client(t, 1)}
	refresh := func(i int, token string) answer {
		return call(t, hcs[i], http.MethodPost, rs.issuer+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}}, "legacy", legacySecret)
	}
	first := call(t, hcs[0], http.MethodPost, rs.issuer+"/token",
		url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password-for-tests"}, "scope": {"openid offline_access"}}, "legacy", legacySecret)
	if first.status != http.StatusOK {
		t.Fatalf("password grant: HTTP %d %s", first.status, first.raw)
	}
	token := first.body["refresh_token"].(string)
	for round := range 15 {
		answers := make([]answer, 2)
		start := make(chan struct{})
		done := make(chan struct{}, 2)
		for i := range 2 {
			go func() {
				defer func() { done <- struct{}{} }()
				<-start
				answers[i] = refresh(i, token)
			}()
		}
		close(start)
		<-done
		<-done
		issued := map[string]bool{}
		for i, a := range answers {
			switch a.status {
			case http.StatusOK:
				issued[a.body["refresh_token"].(string)] = true
			case http.StatusBadRequest:
				// Without the winner's answer to give: told to retry.
			default:
				t.Fatalf("round %d, replica %d: HTTP %d %s", round, i, a.status, a.raw)
			}
		}
		if len(issued) != 1 {
			t.Fatalf("round %d: %d different refresh tokens issued for one token presented twice at once, want exactly 1: A %d %s; B %d %s", round, len(issued), answers[0].status, answers[0].raw, answers[1].status, answers[1].raw)
		}
		for next := range issued {
			token = next
		}
	}
	// The successor is used on A; the retired one then shows up on B:
	// that is reuse, and the whole family is revoked everywhere.
	old := token
	a := refresh(0, old)
	if a.status != http.StatusOK {
		t.Fatalf("refresh on A: HTTP %d %s", a.status, a.raw)
	}
	newest := a.body["refresh_token"].(string)
	if a := refresh(0, newest); a.status != http.StatusOK {
		t.Fatalf("refresh with the newest token: HTTP %d %s", a.status, a.raw)
	} else {
		newest = a.body["refresh_token"].(string)
	}
	if a := refresh(1, old); a.status != http.StatusBadRequest || a.body["error"] != "invalid_grant" {
		t.Fatalf("reuse of a retired token on B: HTTP %d %s, want 400 invalid_grant", a.status, a.raw)
	}
	for i := range 2 {
		if a := refresh(i, newest); a.status != http.StatusBadRequest {
			t.Fatalf("replica %d: the family's newest token still works after reuse was detected: HTTP %d", i, a.status)
		}
	}
}

// TestReplicaKilledUnderLoad kills replica A with SIGKILL while clients
// rotate refresh tokens through the balancer. Clients whose request to A
// was cut off retry on B with the same token and get an answer (a fresh
// rotation, or the one A committed and could not deliver, by the refresh
// grace); afterwards every token a client was given is valid on B:
// nothing acknowledged was lost.
func TestReplicaKilledUnderLoad(t *testing.T) {
	t.Parallel()
	rs := newReplicaSet(t, pgtest.Shared(t), 2, replicaClients)
	replicas := rs.serveAll(t)
	a, b := replicas[0], replicas[1]
	balanced := &http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}
	defer balanced.CloseIdleConnections()
	onB := rs.client(t, 1)

	const workers, killAfter, after = 4, 40, 40
	type chain struct{ access, refresh string }
	chains := make([]chain, workers)
	for w := range chains {
		g := call(t, onB, http.MethodPost, rs.issuer+"/token",
			url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password-for-tests"}, "scope": {"openid offline_access"}}, "legacy", legacySecret)
		if g.status != http.StatusOK {
			t.Fatalf("password grant: HTTP %d %s", g.status, g.raw)
		}
		chains[w] = chain{g.body["access_token"].(string), g.body["refresh_token"].(string)}
	}
	var rotations atomic.Int64
	killed := make(chan struct{})
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			errs <- func() error {
				for rotations.Load() < killAfter+after {
					form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {chains[w].refresh}}
					got, err := tryCall(balanced, rs.issuer+"/token", form, "legacy", legacySecret)
					if err != nil || got.status == http.StatusBadGateway {
						// Cut off by the kill (or A already gone): the
						// same token again, on B.
						if got, err = tryCall(onB, rs.issuer+"/token", form, "legacy", legacySecret); err != nil {
							return err
						}
					}
					if got.status != http.StatusOK {
						return fmt.Errorf("worker %d: HTTP %d %s", w, got.status, got.raw)
					}
					chains[w] = chain{got.body["access_token"].(string), got.body["refresh_token"].(string)}
					if rotations.Add(1) == killAfter {
						close(killed)
					}
				}
				return nil
			}()
		}()
	}
	<-killed
	a.cmd.Process.Kill()
	<-a.exited
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for w, c := range chains {
		if in := introspectOn(t, onB, rs.issuer, "legacy", legacySecret, c.access); !in.Active {
			t.Fatalf("worker %d: its last access token is not active on B", w)
		}
		if g := call(t, onB, http.MethodPost, rs.issuer+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.refresh}}, "legacy", legacySecret); g.status != http.StatusOK {
			t.Fatalf("worker %d: its last refresh token fails on B: HTTP %d %s", w, g.status, g.raw)
		}
	}
	for _, r := range replicas {
		rs.noSecretsIn(t, "a replica's log", r.stderr.String())
	}
	b.noPanic(t)
}

// TestPostgresRestartUnderLoad stops the database under a running replica
// and starts it again: meanwhile /readyz fails and token requests are
// answered 503 temporarily_unavailable (never a 500, never a panic); after
// the restart the replica reconnects by itself and tokens issued before
// are still valid.
func TestPostgresRestartUnderLoad(t *testing.T) {
	t.Parallel()
	cluster := pgtest.Start(t)
	rs := newReplicaSet(t, cluster, 1, replicaClients)
	s := rs.serveAll(t)[0]
	hc := rs.client(t, 0)
	issue := func() answer {
		return call(t, hc, http.MethodPost, rs.issuer+"/token",
			url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password-for-tests"}, "scope": {"openid offline_access"}}, "legacy", legacySecret)
	}
	before := issue()
	if before.status != http.StatusOK {
		t.Fatalf("before the restart: HTTP %d %s", before.status, before.raw)
	}
	ready := func() int {
		resp, err := hc.Get(rs.issuer + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	// Load throughout: machine clients asking for tokens without pause.
	// Every answer is 200 or, while the database is down, 503
	// temporarily_unavailable; never a 500, never a dropped connection.
	stopLoad := make(chan struct{})
	loadErrs := make(chan error, 4)
	var served, refused atomic.Int64
	for range 4 {
		go func() {
			loadErrs <- func() error {
				lc := rs.client(t, 0)
				for {
					select {
					case <-stopLoad:
						return nil
					default:
					}
					a, err := tryCall(lc, rs.issuer+"/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}}, "machine", machineSecret)
					switch {
					case err != nil:
						return err
					case a.status == http.StatusOK:
						served.Add(1)
					case a.status == http.StatusServiceUnavailable && a.body["error"] == "temporarily_unavailable" && a.header.Get("Retry-After") != "":
						refused.Add(1)
					default:
						return fmt.Errorf("under load: HTTP %d %s", a.status, a.raw)
					}
				}
			}()
		}()
	}
	waitFor(t, 15*time.Second, "load to be served", func() bool { return served.Load() >= 20 })

	cluster.Stop()
	// /readyz turns 503 (it may answer from a result a second old).
	waitFor(t, 15*time.Second, "readyz to fail while the database is down", func() bool { return ready() == http.StatusServiceUnavailable })
	for range 3 {
		a := issue()
		if a.status != http.StatusServiceUnavailable || a.body["error"] != "temporarily_unavailable" {
			t.Fatalf("token request while the database is down: HTTP %d %s, want 503 temporarily_unavailable", a.status, a.raw)
		}
	}
	waitFor(t, 15*time.Second, "the load to be refused", func() bool { return refused.Load() > 0 })
	if err := cluster.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "readyz to recover after the database restarted", func() bool { return ready() == http.StatusOK })
	servedBefore := served.Load()
	waitFor(t, 15*time.Second, "the load to be served again", func() bool { return served.Load() >= servedBefore+20 })
	close(stopLoad)
	for range 4 {
		if err := <-loadErrs; err != nil {
			t.Fatal(err)
		}
	}
	after := issue()
	if after.status != http.StatusOK {
		t.Fatalf("after the restart: HTTP %d %s", after.status, after.raw)
	}
	if in := introspectOn(t, hc, rs.issuer, "legacy", legacySecret, before.body["access_token"].(string)); !in.Active {
		t.Fatal("a token issued before the restart is no longer active")
	}
	rs.noSecretsIn(t, "the log", s.stderr.String())
	s.noPanic(t)
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); pollPause() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// pollPause is the pause between two polls of another process's state.
func pollPause() { <-time.After(20 * time.Millisecond) }

// userinfoSub asks /userinfo with a bearer token and returns the status
// and the sub claim.
func userinfoSub(t *testing.T, hc *http.Client, issuer, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, issuer+"/userinfo", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a, err := decodeAnswer(resp)
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := a.body["sub"].(string)
	return a.status, sub
}

func introspectOn(t *testing.T, hc *http.Client, issuer, clientID, secret, token string) introspection {
	t.Helper()
	a := call(t, hc, http.MethodPost, issuer+"/introspect", url.Values{"token": {token}}, clientID, secret)
	if a.status != http.StatusOK {
		t.Fatalf("introspect: HTTP %d %s", a.status, a.raw)
	}
	var in introspection
	in.Active, _ = a.body["active"].(bool)
	in.Sub, _ = a.body["sub"].(string)
	in.ClientID, _ = a.body["client_id"].(string)
	return in
}

func jwksOn(t *testing.T, hc *http.Client, issuer string) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	getJSON(t, hc, issuer+"/jwks", &set)
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KeyID)
	}
	slices.Sort(kids)
	return kids
}

func newKIDs(before, after []string) []string {
	var out []string
	for _, k := range after {
		if !slices.Contains(before, k) {
			out = append(out, k)
		}
	}
	return out
}

// secretFrom reads the generated secret from `clients add` output.
func secretFrom(t *testing.T, out string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if s, ok := strings.CutPrefix(line, "client secret: "); ok {
			return strings.TrimSpace(s)
		}
	}
	t.Fatalf("no client secret in %q", out)
	return ""
}
