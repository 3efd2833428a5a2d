package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// startReloadable is startServer with a reload channel: a value sent on
// it is what SIGHUP is to a real server.
func startReloadable(t *testing.T, c *testConfig) (*server, chan<- os.Signal) {
	t.Helper()
	hup := make(chan os.Signal, 1)
	s := launchServer(t, c, withReloadSignals(context.Background(), hup))
	return s, hup
}

// reloadAndWait sends SIGHUP and waits for the reload's outcome, the
// count-th line containing want.
func reloadAndWait(t *testing.T, s *server, hup chan<- os.Signal, want string, count int) {
	t.Helper()
	hup <- syscall.SIGHUP
	waitForCount(t, s, want, count)
}

// waitForCount waits until the log holds want count times.
func waitForCount(t *testing.T, s *server, want string, count int) {
	t.Helper()
	b := s.stderr
	expired := time.After(20 * time.Second)
	for {
		b.mu.Lock()
		n := strings.Count(b.buf.String(), want)
		if b.written == nil {
			b.written = make(chan struct{})
		}
		written := b.written
		b.mu.Unlock()
		if n >= count {
			return
		}
		select {
		case <-written:
		case <-s.exited:
			t.Fatalf("server exited; log has %q %d times, want %d", want, n, count)
		case <-expired:
			t.Fatalf("log has %q %d times, want %d", want, n, count)
		}
	}
}

// tokenFor asks for a client_credentials token as id and returns the HTTP
// status and the OAuth error, if any.
func tokenFor(t *testing.T, issuer, id, secret string) (int, string) {
	t.Helper()
	return postTokenForm(t, issuer, id, secret, url.Values{"grant_type": {"client_credentials"}})
}

func postTokenForm(t *testing.T, issuer, id, secret string, form url.Values) (int, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, issuer+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode == http.StatusOK && body["access_token"] == nil {
		t.Fatalf("token for %s: 200 without an access token: %v", id, body)
	}
	e, _ := body["error"].(string)
	return resp.StatusCode, e
}

// heldRequest is a token request whose handler is running, reading a body
// the test has not sent yet: the server answered 100 Continue, so the
// request is in flight on the server's side.
type heldRequest struct {
	conn net.Conn
	br   *bufio.Reader
	body string
}

func holdTokenRequest(t *testing.T, issuer, id, secret string) *heldRequest {
	t.Helper()
	u, _ := url.Parse(issuer)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	body := url.Values{"grant_type": {"client_credentials"}}.Encode()
	req, _ := http.NewRequest(http.MethodPost, issuer+"/token", nil)
	req.SetBasicAuth(id, secret)
	fmt.Fprintf(conn, "POST /token HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
		u.Host, req.Header.Get("Authorization"), len(body))
	h := &heldRequest{conn: conn, br: bufio.NewReader(conn), body: body}
	resp, err := http.ReadResponse(h.br, nil)
	if err != nil {
		t.Fatalf("held request: %v", err)
	}
	if resp.StatusCode != http.StatusContinue {
		t.Fatalf("held request: %s before the body, want 100 Continue", resp.Status)
	}
	return h
}

// finish sends the body and returns the final answer's status and body.
func (h *heldRequest) finish(t *testing.T) (int, map[string]any) {
	t.Helper()
	if _, err := io.WriteString(h.conn, h.body); err != nil {
		t.Fatalf("held request: send body: %v", err)
	}
	resp, err := http.ReadResponse(h.br, nil)
	if err != nil {
		t.Fatalf("held request: %v", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

const (
	keepSecret = "keep-secret-for-tests-only"
	goneSecret = "gone-secret-for-tests-only"
	newSecret  = "new-secret-for-tests-only"
)

func ccClient(id, secret string) string {
	return fmt.Sprintf("  - id: %s\n    secret: %s\n    grant_types: [client_credentials]\n", id, secret)
}

// rewriteConfig replaces the config file as editors do: a new file
// renamed over the old one.
func rewriteConfig(t *testing.T, c *testConfig, content string) {
	t.Helper()
	tmp := c.path + ".tmp"
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, c.path); err != nil {
		t.Fatal(err)
	}
}

func configWith(t *testing.T, c *testConfig, extra string) string {
	t.Helper()
	raw, err := os.ReadFile(c.path)
	if err != nil {
		t.Fatal(err)
	}
	// writeConfig's part ends with the log block; extra replaces the rest.
	base, _, ok := strings.Cut(string(raw), "  level: info\n")
	if !ok {
		t.Fatalf("unexpected config:\n%s", raw)
	}
	return base + "  level: info\n" + extra
}

// rsClient may introspect every token.
const rsClient = "  - id: rs\n    secret: rs-secret-for-tests-only\n    grant_types: [client_credentials]\n    introspect: any\n"

// accessToken is a client_credentials access token for id.
func accessToken(t *testing.T, issuer, id, secret string) string {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, issuer+"/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	if body.AccessToken == "" {
		t.Fatalf("token for %s: HTTP %d", id, resp.StatusCode)
	}
	return body.AccessToken
}

func TestReloadClientsOnSignal(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), "clients:\n"+rsClient+ccClient("keep", keepSecret)+ccClient("gone", goneSecret))
	s, hup := startReloadable(t, c)
	for _, cl := range [][2]string{{"keep", keepSecret}, {"gone", goneSecret}} {
		if status, e := tokenFor(t, c.issuer, cl[0], cl[1]); status != http.StatusOK {
			t.Fatalf("before the reload, %s: HTTP %d %s", cl[0], status, e)
		}
	}
	if status, _ := tokenFor(t, c.issuer, "new", newSecret); status != http.StatusUnauthorized {
		t.Fatalf("before the reload, new: HTTP %d, want 401", status)
	}

	goneToken := accessToken(t, c.issuer, "gone", goneSecret)
	if !introspect(t, c.issuer, "rs", "rs-secret-for-tests-only", goneToken).Active {
		t.Fatalf("gone's token inactive before the reload")
	}

	held := holdTokenRequest(t, c.issuer, "keep", keepSecret)
	// gone leaves, new arrives, and a key that needs a restart changes.
	writeFile(t, c.path, configWith(t, c, "tokens:\n  access_token_lifespan: 30m\nclients:\n"+rsClient+ccClient("keep", keepSecret)+ccClient("new", newSecret)))
	reloadAndWait(t, s, hup, `msg="config reloaded"`, 1)

	if status, body := held.finish(t); status != http.StatusOK || body["access_token"] == nil {
		t.Errorf("request in flight across the reload: HTTP %d %v", status, body)
	}
	if status, e := tokenFor(t, c.issuer, "gone", goneSecret); status != http.StatusUnauthorized || e != "invalid_client" {
		t.Errorf("removed client after the reload: HTTP %d %q, want 401 invalid_client", status, e)
	}
	if introspect(t, c.issuer, "rs", "rs-secret-for-tests-only", goneToken).Active {
		t.Errorf("the removed client's token is still active")
	}
	if status, e := tokenFor(t, c.issuer, "new", newSecret); status != http.StatusOK {
		t.Errorf("added client after the reload: HTTP %d %s", status, e)
	}
	if status, e := tokenFor(t, c.issuer, "keep", keepSecret); status != http.StatusOK {
		t.Errorf("kept client after the reload: HTTP %d %s", status, e)
	}
	log := s.stderr.String()
	for _, want := range []string{
		`clients="1 added, 0 updated, 1 removed"`,
		`level=WARN msg="tokens.access_token_lifespan changed: restart to apply"`,
		`trigger=signal`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
	for _, secret := range []string{keepSecret, goneSecret, newSecret} {
		if strings.Contains(log, secret) {
			t.Errorf("log contains a client secret")
		}
	}

	// The held connection and the server are still there: a changed
	// secret takes effect at once.
	writeFile(t, c.path, configWith(t, c, "clients:\n"+rsClient+ccClient("keep", keepSecret+"-2")+ccClient("new", newSecret)))
	reloadAndWait(t, s, hup, `msg="config reloaded"`, 2)
	if status, e := tokenFor(t, c.issuer, "keep", keepSecret); status != http.StatusUnauthorized || e != "invalid_client" {
		t.Errorf("old secret after the reload: HTTP %d %q, want 401 invalid_client", status, e)
	}
	if status, e := tokenFor(t, c.issuer, "keep", keepSecret+"-2"); status != http.StatusOK {
		t.Errorf("new secret after the reload: HTTP %d %s", status, e)
	}
	log = s.stderr.String()
	if !strings.Contains(log, `clients="0 added, 1 updated, 0 removed"`) {
		t.Errorf("second reload's counts missing:\n%s", log)
	}
	// The lifespan is back to the value the server runs with: nothing
	// waits for a restart any more.
	if n := strings.Count(log, "restart to apply"); n != 1 {
		t.Errorf("%d restart warnings, want the first reload's only:\n%s", n, log)
	}
}

func TestReloadRefusesInvalidConfig(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), "ui:\n  org_name: Old Org\nclients:\n"+ccClient("keep", keepSecret))
	s, hup := startReloadable(t, c)

	writeFile(t, c.path, configWith(t, c, "ui:\n  org_name: New Org\n  primary_color: blue\nclients:\n"+ccClient("new", newSecret)+
		"  - id: broken\n    grant_types: [telepathy]\n"))
	reloadAndWait(t, s, hup, "config reload refused: the running config stays in force", 1)

	if status, e := tokenFor(t, c.issuer, "keep", keepSecret); status != http.StatusOK {
		t.Errorf("old client after a refused reload: HTTP %d %s", status, e)
	}
	if status, _ := tokenFor(t, c.issuer, "new", newSecret); status != http.StatusUnauthorized {
		t.Errorf("client of the refused config: HTTP %d, want 401", status)
	}
	if body := getPage(t, c.issuer+"/account"); !strings.Contains(body, "Old Org") || strings.Contains(body, "New Org") {
		t.Errorf("the refused config's org_name is shown")
	}
	log := s.stderr.String()
	for _, key := range []string{"ui.primary_color", "clients[1]"} {
		if !logLine(`level=ERROR msg="config reload refused" .*problem="?\S*config.yaml:\d+: `+regexp.QuoteMeta(key), log) {
			t.Errorf("no error line names %s:\n%s", key, log)
		}
	}
	if strings.Contains(log, "config reloaded") {
		t.Errorf("a refused config was reported as reloaded:\n%s", log)
	}

	// Fixed, it applies.
	writeFile(t, c.path, configWith(t, c, "clients:\n"+ccClient("new", newSecret)))
	reloadAndWait(t, s, hup, `msg="config reloaded"`, 1)
	if status, e := tokenFor(t, c.issuer, "new", newSecret); status != http.StatusOK {
		t.Errorf("client of the fixed config: HTTP %d %s", status, e)
	}
}

// logLine reports whether a line of log matches pattern.
func logLine(pattern, log string) bool {
	return regexp.MustCompile(`(?m)^.*` + pattern).MatchString(log)
}

func getPage(t *testing.T, u string) string {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// The file watch: an editor's save (a new file renamed over the config) is
// picked up without a signal.
func TestReloadOnConfigFileChange(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), "ui:\n  org_name: Old Org\ntrusted_proxies: [10.0.0.1]\n")
	s, _ := startReloadable(t, c)
	if body := getPage(t, c.issuer+"/account"); !strings.Contains(body, "Old Org") {
		t.Fatalf("sign-in page before the change lacks the org name")
	}

	rewriteConfig(t, c, configWith(t, c, "ui:\n  org_name: Brand New Org\n  primary_color: \"#0F766E\"\ntrusted_proxies: [10.0.0.2]\n"))
	waitForCount(t, s, `msg="config reloaded"`, 1)
	if body := getPage(t, c.issuer+"/account"); !strings.Contains(body, "Brand New Org") {
		t.Errorf("sign-in page after the change lacks the new org name")
	}
	if css := getPage(t, c.issuer+"/static/theme.css"); !strings.Contains(css, "--primary:#0f766e") {
		t.Errorf("theme.css after the change = %q", css)
	}
	log := s.stderr.String()
	if !strings.Contains(log, "trigger=file") || !strings.Contains(log, "ui_changed=true") || strings.Contains(log, "restart to apply") {
		t.Errorf("log of the reload:\n%s", log)
	}
}

func TestReloadUsers(t *testing.T) {
	t.Parallel()
	const client = "  - id: legacy\n    secret: legacy-secret-for-tests\n    grant_types: [password, refresh_token]\n    scopes: [openid]\n"
	users := func(bobPassword string, carol bool) string {
		s := "users:\n  - username: bob\n    password: " + bobPassword + "\n"
		if carol {
			s += "  - username: carol\n    password: carol-password-1\n"
		}
		return s
	}
	c := writeConfig(t, freePort(t), "clients:\n"+client+users("bob-password-1", true))
	s, hup := startReloadable(t, c)
	grant := func(username, password string) (int, string) {
		return postTokenForm(t, c.issuer, "legacy", "legacy-secret-for-tests", url.Values{
			"grant_type": {"password"}, "username": {username}, "password": {password}, "scope": {"openid"}})
	}
	if status, e := grant("bob", "bob-password-1"); status != http.StatusOK {
		t.Fatalf("bob before the reload: HTTP %d %s", status, e)
	}
	refresh := passwordRefreshToken(t, c.issuer, "bob", "bob-password-1")
	carolRefresh := passwordRefreshToken(t, c.issuer, "carol", "carol-password-1")

	// bob's password changes; carol leaves the config.
	writeFile(t, c.path, configWith(t, c, "clients:\n"+client+users("bob-password-2", false)))
	reloadAndWait(t, s, hup, `msg="config reloaded"`, 1)

	if status, e := grant("bob", "bob-password-2"); status != http.StatusOK {
		t.Errorf("bob's new password: HTTP %d %s", status, e)
	}
	if status, _ := grant("bob", "bob-password-1"); status == http.StatusOK {
		t.Errorf("bob's old password still works")
	}
	// As with `users passwd`: what the old password gave is taken back.
	if status, _ := postTokenForm(t, c.issuer, "legacy", "legacy-secret-for-tests", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {refresh}}); status == http.StatusOK {
		t.Errorf("a refresh token from before the password change still works")
	}
	// Taking carol out of the file offboards her: she cannot sign in, and
	// what she had is ended.
	if status, _ := grant("carol", "carol-password-1"); status == http.StatusOK {
		t.Errorf("carol, removed from the config, still signs in")
	}
	if status, _ := postTokenForm(t, c.issuer, "legacy", "legacy-secret-for-tests", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {carolRefresh}}); status == http.StatusOK {
		t.Errorf("carol's refresh token works after she was removed from the config")
	}
	if introspect(t, c.issuer, "legacy", "legacy-secret-for-tests", carolRefresh).Active {
		t.Errorf("carol's refresh token introspects active after she was removed from the config")
	}
	log := s.stderr.String()
	for _, want := range []string{`users="0 added, 1 updated, 1 removed"`, `removed user no longer in config`, "user=carol"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
	for _, secret := range []string{"bob-password-1", "bob-password-2", "carol-password-1"} {
		if strings.Contains(log, secret) {
			t.Errorf("log contains a password")
		}
	}
}

func passwordRefreshToken(t *testing.T, issuer, username, password string) string {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}, "scope": {"openid"}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("legacy", "legacy-secret-for-tests")
	hc := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		RefreshToken string `json:"refresh_token"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	if body.RefreshToken == "" {
		t.Fatalf("password grant gave no refresh token (HTTP %d)", resp.StatusCode)
	}
	return body.RefreshToken
}

// SIGTERM (here the context's end, as main's signal.NotifyContext does)
// lets a request in flight finish, refuses new connections, then returns.
func TestShutdownDrainsRequestsInFlight(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), "clients:\n"+ccClient("keep", keepSecret))
	s, _ := startReloadable(t, c)
	held := holdTokenRequest(t, c.issuer, "keep", keepSecret)

	s.cancel()
	if !s.stderr.waitFor("shutting down", s.exited, 15*time.Second) {
		t.Fatalf("no shutdown logged:\n%s", s.stderr.String())
	}
	u, _ := url.Parse(c.issuer)
	for deadline := time.Now().Add(10 * time.Second); ; {
		conn, err := net.DialTimeout("tcp", u.Host, time.Second)
		if errors.Is(err, syscall.ECONNREFUSED) {
			break
		}
		// Otherwise the dial raced the listener's close: it was accepted
		// into the backlog (and is reset with it); try again.
		if conn != nil {
			conn.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("new connections still accepted while draining")
		}
	}
	select {
	case <-s.exited:
		t.Fatalf("serve returned with a request in flight")
	default:
	}

	if status, body := held.finish(t); status != http.StatusOK || body["access_token"] == nil {
		t.Errorf("request in flight at shutdown: HTTP %d %v", status, body)
	}
	select {
	case code := <-s.done:
		if code != 0 {
			t.Errorf("serve exited %d", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("serve did not return after the request in flight finished")
	}
	log := s.stderr.String()
	if strings.Contains(log, "were cut") || !strings.Contains(log, "msg=stopped") {
		t.Errorf("shutdown log:\n%s", log)
	}
}

func TestRestartKeys(t *testing.T) {
	t.Parallel()
	old := &fileConfig{Issuer: "http://127.0.0.1:1", Listen: "127.0.0.1:1"}
	next := *old
	next.Issuer = "http://127.0.0.1:2"
	next.Limits.HeaderBytes = 4096
	next.Tokens.AccessTokenLifespan = duration(time.Minute)
	next.UI.OrgName = "live"
	next.TrustedProxies = []string{"10.0.0.1"}
	next.Users = append(next.Users, next.Users...)
	next.Registration.Enabled = true
	next.path = "elsewhere"
	got := restartKeys(old, &next)
	want := []string{"issuer", "tokens.access_token_lifespan", "registration.enabled", "limits.header_bytes"}
	if !slices.Equal(got, want) {
		t.Errorf("restartKeys = %v, want %v", got, want)
	}
}

func TestConfigProblems(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, path, "listen: nowhere\nclients:\n  - id: a\n    redirect_uris: [http://app.example/cb]\n")
	_, err := loadConfig(path)
	if err == nil {
		t.Fatal("a broken config loaded")
	}
	got := configProblems(err)
	if len(got) != 3 {
		t.Fatalf("configProblems = %q, want the three problems one by one", got)
	}
	for i, want := range []string{": issuer: is required", ":1: listen:", ":4: clients[0].redirect_uris[0]:"} {
		if !strings.HasPrefix(got[i], path) || !strings.Contains(got[i], want) {
			t.Errorf("problem %d = %q, want %s%s...", i, got[i], path, want)
		}
	}
}

func TestReloadTrustedIssuers(t *testing.T) {
	t.Parallel()
	oldKey, newKey := newTestKey(t, jose.ES256, "p-1"), newTestKey(t, jose.ES256, "p-2")
	trust := func(k testKey) string {
		return `clients:
  - id: bearer-app
    secret: bearer-app-secret
    grant_types: [` + jwtBearerGrant + `]
    scopes: [read]
trusted_issuers:
  - issuer: https://idp.partner.example
    any_subject: true
    jwks: ` + k.jwks + `
    scopes: [read]
`
	}
	c := writeConfig(t, freePort(t), trust(oldKey))
	s, hup := startReloadable(t, c)
	exchange := func(k testKey) (int, string) {
		return postTokenForm(t, c.issuer, "bearer-app", "bearer-app-secret", url.Values{"grant_type": {jwtBearerGrant},
			"assertion": {k.assertion(t, c.issuer, "https://idp.partner.example", "someone")}, "scope": {"read"}})
	}
	if status, e := exchange(oldKey); status != http.StatusOK {
		t.Fatalf("before the reload: HTTP %d %s", status, e)
	}

	// The partner rotated its key.
	writeFile(t, c.path, configWith(t, c, trust(newKey)))
	reloadAndWait(t, s, hup, `msg="config reloaded"`, 1)
	if status, _ := exchange(oldKey); status == http.StatusOK {
		t.Errorf("the replaced key still works")
	}
	if status, e := exchange(newKey); status != http.StatusOK {
		t.Errorf("the new key: HTTP %d %s", status, e)
	}
	if !strings.Contains(s.stderr.String(), `trusted_issuers="0 added, 1 updated, 0 removed"`) {
		t.Errorf("counts missing:\n%s", s.stderr.String())
	}

	// The partner is gone.
	cfg, _, _ := strings.Cut(trust(newKey), "trusted_issuers:")
	writeFile(t, c.path, configWith(t, c, cfg))
	reloadAndWait(t, s, hup, `msg="config reloaded"`, 2)
	if status, _ := exchange(newKey); status == http.StatusOK {
		t.Errorf("the removed trusted issuer still works")
	}
	if !strings.Contains(s.stderr.String(), `trusted_issuers="0 added, 0 updated, 1 removed"`) {
		t.Errorf("counts missing:\n%s", s.stderr.String())
	}
}

// A config mounted as Kubernetes mounts a ConfigMap: config.yaml links to
// ..data/config.yaml, and an update points ..data at a new directory.
func TestReloadThroughSymlinkSwap(t *testing.T) {
	t.Parallel()
	base := writeConfig(t, freePort(t), "ui:\n  org_name: Old Org\n")
	mnt := filepath.Join(base.dir, "mnt")
	version := func(v, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(mnt, v), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(mnt, v, "config.yaml"), content)
	}
	version("v1", configWith(t, base, "ui:\n  org_name: Old Org\n"))
	for _, l := range [][2]string{{"v1", "..data"}, {"..data/config.yaml", "config.yaml"}} {
		if err := os.Symlink(l[0], filepath.Join(mnt, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	c := *base
	c.path = filepath.Join(mnt, "config.yaml")
	s, _ := startReloadable(t, &c)

	version("v2", configWith(t, base, "ui:\n  org_name: Swapped Org\n"))
	if err := os.Symlink("v2", filepath.Join(mnt, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(mnt, "..data_tmp"), filepath.Join(mnt, "..data")); err != nil {
		t.Fatal(err)
	}
	waitForCount(t, s, `msg="config reloaded"`, 1)
	if body := getPage(t, c.issuer+"/account"); !strings.Contains(body, "Swapped Org") {
		t.Errorf("sign-in page after the swap lacks the new org name")
	}
}
