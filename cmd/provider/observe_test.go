package main

import (
	"bufio"
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
	"strconv"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider/audit"
	"github.com/smallsso/provider/provider/providertest"
)

// TestAuditAndMetrics drives a server with an audit log and a metrics
// listener through failed and successful sign-ins, a code flow with a
// replayed code, a refresh with a reused refresh token, a revocation and
// an admin change through the socket, then reads the audit log and
// scrapes the metrics.
func TestAuditAndMetrics(t *testing.T) {
	t.Parallel()
	port, mport := freePort(t), freePort(t)
	c := writeConfig(t, port, appConfig+fmt.Sprintf("audit:\n  file: audit.log\nmetrics:\n  listen: 127.0.0.1:%d\n", mport))
	startServer(t, c)
	auditPath := filepath.Join(c.dir, "audit.log")
	if st, err := os.Stat(auditPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("audit log: %v, mode %v; want a file with mode 0600", err, st.Mode())
	}
	// Everything secret the test sees; none may reach the audit log.
	secrets := []string{appSecret, alicePassword}

	rp := newRelyingParty(t, c.issuer, "app", appSecret, appCallback, oidc.ScopeOpenID, "email", oidc.ScopeOfflineAccess)
	hc := &http.Client{}
	t.Cleanup(hc.CloseIdleConnections)

	// Failed sign-ins: a wrong password, an unknown user.
	const wrongPassword = "not-alices-password-123"
	secrets = append(secrets, wrongPassword)
	for _, who := range []string{"alice", "mallory"} {
		authURL := rp.oauth.AuthCodeURL("state-fail", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
		page, err := providertest.NewBrowser(c.issuer).SignInPage(rp.ctx, authURL, who, wrongPassword, "allow")
		if err != nil || page.Status != http.StatusUnauthorized {
			t.Fatalf("sign in as %s with a wrong password: %v, %+v; want the login page with 401", who, err, page)
		}
	}

	// The code flow, then the same code again.
	verifier := oauth2.GenerateVerifier()
	loc, err := providertest.NewBrowser(c.issuer).SignIn(rp.ctx, rp.oauth.AuthCodeURL("state-ok", oauth2.S256ChallengeOption(verifier)), "alice", alicePassword, "allow")
	if err != nil {
		t.Fatal(err)
	}
	code := loc.Query().Get("code")
	tok, err := rp.oauth.Exchange(rp.ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	secrets = append(secrets, code, verifier, tok.AccessToken, tok.RefreshToken, idToken(t, tok))

	// A refresh, then the rotated refresh token again (reuse: the family
	// is revoked), then the code again (a replay).
	tok2 := rp.refresh(t, tok.RefreshToken)
	secrets = append(secrets, tok2.AccessToken, tok2.RefreshToken)
	if _, err := rp.oauth.TokenSource(rp.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Fatal("a rotated refresh token was accepted")
	}
	if _, err := rp.oauth.Exchange(rp.ctx, code, oauth2.VerifierOption(verifier)); err == nil {
		t.Fatal("a code was exchanged twice")
	}

	// A revocation by the client.
	req, _ := http.NewRequest(http.MethodPost, c.issuer+"/revoke", strings.NewReader(url.Values{"token": {tok2.AccessToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", appSecret)
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}

	// An admin change through the admin socket, and a refused one.
	const erinPassword = "erin-password-for-audit"
	secrets = append(secrets, erinPassword)
	runCLI(t, erinPassword+"\n", "users", "add", "--config", c.path, "--username", "erin", "--password-stdin").ok(t)
	runCLI(t, "", "users", "delete", "nobody", "--config", c.path).fails(t, 1)
	out := runCLI(t, "", "clients", "add", "--config", c.path, "--id", "audited-app", "--redirect-uri", appCallback).ok(t)
	runCLI(t, "", "backup", "--config", c.path, "--out", filepath.Join(t.TempDir(), "backup.db")).ok(t)
	secrets = append(secrets, shownOnce(t, out, "client secret: "))

	// A path no route has: counted as not_found, never by its path.
	if resp, err := hc.Get(c.issuer + "/no-such-path-xyzzy"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}

	raw, events := readAudit(t, auditPath)
	find := func(what string, match func(audit.Event) bool) audit.Event {
		t.Helper()
		for _, e := range events {
			if match(e) {
				return e
			}
		}
		t.Fatalf("audit log has no %s event:\n%s", what, raw)
		return audit.Event{}
	}
	e := find("failed sign-in as alice", func(e audit.Event) bool {
		return e.Name == audit.SignIn && e.Outcome == audit.Failure && e.Username == "alice"
	})
	if e.Reason != audit.ReasonBadPassword || e.ClientAddr != "127.0.0.1" || e.ClientID != "app" || e.RequestID == "" || e.Time.IsZero() {
		t.Errorf("failed sign-in event %+v: want reason bad_password, client_addr 127.0.0.1, client app, a request ID and a time", e)
	}
	e = find("failed sign-in as mallory", func(e audit.Event) bool {
		return e.Name == audit.SignIn && e.Outcome == audit.Failure && e.Username == "mallory"
	})
	if e.Reason != audit.ReasonUnknownUser || e.ClientAddr != "127.0.0.1" {
		t.Errorf("unknown user's event %+v: want reason unknown_user from 127.0.0.1", e)
	}
	signIn := find("sign-in", func(e audit.Event) bool { return e.Name == audit.SignIn && e.Outcome == audit.Success })
	if signIn.Username != "alice" || signIn.Subject == "" || signIn.ClientID != "app" {
		t.Errorf("sign-in event %+v", signIn)
	}
	e = find("consent", func(e audit.Event) bool { return e.Name == audit.Consent })
	if e.Outcome != audit.Success || e.ClientID != "app" || e.Subject != signIn.Subject || !strings.Contains(e.Scope, "openid") {
		t.Errorf("consent event %+v", e)
	}
	e = find("code exchange", func(e audit.Event) bool { return e.Name == audit.TokenIssued && e.GrantType == "authorization_code" })
	if e.ClientID != "app" || e.Subject != signIn.Subject || !strings.Contains(e.Scope, "offline_access") {
		t.Errorf("token event %+v", e)
	}
	find("code replay", func(e audit.Event) bool { return e.Name == audit.CodeReplay && e.ClientID == "app" })
	find("refresh", func(e audit.Event) bool { return e.Name == audit.TokenIssued && e.GrantType == "refresh_token" })
	find("refresh token reuse", func(e audit.Event) bool { return e.Name == audit.RefreshReuse && e.ClientID == "app" })
	find("revocation", func(e audit.Event) bool { return e.Name == audit.TokenRevoked && e.ClientID == "app" })
	for _, op := range []struct{ op, object, outcome string }{
		{audit.OpUserAdd, "erin", audit.Success},
		{audit.OpUserDelete, "nobody", audit.Failure},
		{audit.OpClientAdd, "audited-app", audit.Success},
		{audit.OpBackup, "", audit.Success},
	} {
		e = find(op.op+" "+op.object, func(e audit.Event) bool { return e.Name == audit.AdminChange && e.Op == op.op && e.Object == op.object })
		if e.Outcome != op.outcome || e.Actor == nil || e.Actor.Via != "socket" || e.Actor.UID != os.Getuid() || e.Actor.PID != os.Getpid() {
			t.Errorf("admin event %+v (actor %+v): want outcome %s by the socket peer, uid %d, pid %d", e, e.Actor, op.outcome, os.Getuid(), os.Getpid())
		}
	}
	for _, s := range secrets {
		if strings.Contains(raw, s) {
			t.Errorf("the audit log contains a secret %q:\n%s", s, raw)
		}
	}

	// The metrics, from their own listener.
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)
	body := scrape(t, hc, metricsURL, `provider_http_requests_total{code="404",route="not_found"}`)
	for series, want := range map[string]float64{
		`provider_tokens_issued_total{grant_type="authorization_code"}`:       1,
		`provider_tokens_issued_total{grant_type="refresh_token"}`:            1,
		`provider_tokens_issued_total{grant_type="client_credentials"}`:       0,
		`provider_signin_failures_total{reason="bad_credentials"}`:            2,
		`provider_audit_events_total{event="code_replay",outcome="denied"}`:   1,
		`provider_audit_events_total{event="refresh_reuse",outcome="denied"}`: 1,
		`provider_audit_events_total{event="admin_change",outcome="success"}`: 3,
		`provider_throttled_total{kind="signin"}`:                             0,
		`provider_http_requests_total{code="404",route="not_found"}`:          1,
	} {
		if got := metricValue(t, body, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if got := metricValue(t, body, `provider_http_requests_total{code="200",route="/token"}`); got < 2 {
		t.Errorf("token requests with 200 by route template: %v, want at least 2", got)
	}
	if got := metricValue(t, body, `provider_http_request_duration_seconds_count{route="/login"}`); got < 3 {
		t.Errorf("/login latency observations: %v, want at least 3", got)
	}
	if got := metricValue(t, body, "provider_db_size_bytes"); got <= 0 {
		t.Errorf("provider_db_size_bytes = %v", got)
	}
	for _, want := range []string{"provider_build_info{", `goversion="go`, "go_goroutines ", "process_resident_memory_bytes ", "provider_janitor_runs_total"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics have no %q", want)
		}
	}
	for _, raw := range []string{"xyzzy", "/authorize?", code} {
		if strings.Contains(body, raw) {
			t.Errorf("metrics contain a raw request path or value %q", raw)
		}
	}
	// Only /metrics is served there.
	if resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/", mport)); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("metrics listener /: %v %v, want 404", err, resp)
	} else {
		resp.Body.Close()
	}
}

// readAudit reads the audit log: every line one JSON object.
func readAudit(t *testing.T, path string) (string, []audit.Event) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var events []audit.Event
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		var e audit.Event
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		events = append(events, e)
	}
	return string(raw), events
}

// scrape fetches the metrics until they contain want: a request is
// counted once its answer has left, which the client may see first.
func scrape(t *testing.T, hc *http.Client, u, want string) string {
	t.Helper()
	var body string
	for range 100 {
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", u, resp.Status)
		}
		if body = string(b); strings.Contains(body, want) {
			break
		}
	}
	return body
}

// metricValue is the value of one series (name and labels exactly as
// exposed, labels sorted by name) in the text format; -1 if absent.
func metricValue(t *testing.T, body, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s: %v", series, err)
	}
	return v
}

// With no server running, the CLI changes the database itself and writes
// its own audit lines, naming the user who ran it.
func TestAuditLocalCLI(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), appConfig+"audit:\n  file: audit.log\n")
	const password = "frank-password-for-audit"
	runCLI(t, password+"\n", "users", "add", "--config", c.path, "--username", "frank", "--password-stdin").ok(t)
	runCLI(t, password+"-2\n", "users", "set-password", "frank", "--config", c.path, "--password-stdin").ok(t)
	runCLI(t, "", "users", "delete", "frank", "--config", c.path).ok(t)
	raw, events := readAudit(t, filepath.Join(c.dir, "audit.log"))
	var ops []string
	for _, e := range events {
		if e.Name != audit.AdminChange || e.Object != "frank" || e.Outcome != audit.Success {
			t.Errorf("event %+v", e)
			continue
		}
		if e.Actor == nil || e.Actor.Via != "cli" || e.Actor.UID != os.Getuid() || e.Actor.PID != os.Getpid() {
			t.Errorf("actor %+v, want the CLI's user (uid %d)", e.Actor, os.Getuid())
		}
		ops = append(ops, e.Op)
	}
	if want := []string{audit.OpUserAdd, audit.OpUserPasswd, audit.OpUserDelete}; strings.Join(ops, " ") != strings.Join(want, " ") {
		t.Errorf("ops %v, want %v", ops, want)
	}
	if strings.Contains(raw, password) {
		t.Errorf("the audit log contains the password:\n%s", raw)
	}
}

func TestObserveConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := "issuer: http://127.0.0.1:8080\nlisten: 127.0.0.1:8080\nstorage:\n  bolt: " + dir + "/provider.db\nkeys:\n  dir: " + dir + "/keys\n"
	path := filepath.Join(dir, "observe.yaml")

	// Off by default; a relative audit file is relative to the config.
	writeFile(t, path, base)
	cfg, err := loadConfig(path)
	if err != nil || cfg.Audit.File != "" || cfg.Metrics.Listen != "" {
		t.Fatalf("defaults: %+v %+v %v", cfg.Audit, cfg.Metrics, err)
	}
	writeFile(t, path, base+"audit:\n  file: audit.log\nmetrics:\n  listen: \"[::1]:9464\"\n")
	if cfg, err = loadConfig(path); err != nil || cfg.Audit.File != filepath.Join(dir, "audit.log") || cfg.Metrics.Listen != "[::1]:9464" {
		t.Fatalf("audit.file %q, metrics.listen %q, %v", cfg.Audit.File, cfg.Metrics.Listen, err)
	}
	writeFile(t, path, base+"audit:\n  file: stderr\n")
	if cfg, err = loadConfig(path); err != nil || cfg.Audit.File != "stderr" {
		t.Fatalf("audit.file stderr: %q %v", cfg.Audit.File, err)
	}

	for _, c := range []struct{ yaml, want string }{
		{"metrics:\n  listen: 9464\n", `metrics.listen: "9464" must be host:port`},
		{"metrics:\n  listen: localhost:http\n", `metrics.listen: "localhost:http" must be host:port`},
		{"metrics:\n  listen: 127.0.0.1:8080\n", `metrics.listen: "127.0.0.1:8080" is the address of listen`},
		{"audit:\n  file: no-such-dir/audit.log\n", "audit.file: directory " + filepath.Join(dir, "no-such-dir") + ": no such file or directory"},
		{"audit:\n  file: .\n", "audit.file: " + dir + " is not a regular file"},
		{"audit:\n  file: observe.yaml/audit.log\n", "audit.file: " + path + " is not a directory"},
	} {
		writeFile(t, path, base+c.yaml)
		msg := runCLI(t, "", "serve", "--config", path).fails(t, 1)
		if !strings.Contains(msg, c.want) {
			t.Errorf("%q: %q does not contain %q", c.yaml, msg, c.want)
		}
	}
}

// A metrics address already in use stops the start with its key.
func TestMetricsListenInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := writeConfig(t, freePort(t), "metrics:\n  listen: "+ln.Addr().String()+"\n")
	msg := runCLI(t, "", "serve", "--config", c.path).fails(t, 1)
	if !strings.Contains(msg, "metrics.listen "+ln.Addr().String()) || !strings.Contains(msg, "address already in use") {
		t.Errorf("serve with metrics.listen in use: %q", msg)
	}
}

// The reload helper's hooks: a reload is an audit event (a refused one
// without the errors, which may quote secrets), and the audit file can be
// reopened after a rotation.
func TestObserverReloadHooks(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), "audit:\n  file: audit.log\n")
	cfg, err := loadConfig(c.path)
	if err != nil {
		t.Fatal(err)
	}
	o, err := openObserver(cfg, &env{stderr: io.Discard}, nil)
	if err != nil {
		t.Fatal(err)
	}
	o.configReloaded(t.Context(), nil)
	path := filepath.Join(c.dir, "audit.log")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := o.reopenAuditLog(); err != nil {
		t.Fatal(err)
	}
	o.configReloaded(t.Context(), errors.New(`clients[0].secret: "hunter2hunter2" is too short`))
	o.shutdown(t.Context())

	_, before := readAudit(t, path+".1")
	raw, after := readAudit(t, path)
	if len(before) != 1 || before[0].Name != audit.ConfigReloaded || before[0].Outcome != audit.Success || before[0].Actor == nil || before[0].Actor.Via != "signal" {
		t.Errorf("before the rotation: %+v", before)
	}
	if len(after) != 1 || after[0].Outcome != audit.Failure || after[0].Reason != "refused" || strings.Contains(raw, "hunter2") {
		t.Errorf("after the rotation: %s", raw)
	}
}
