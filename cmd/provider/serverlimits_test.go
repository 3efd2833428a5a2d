package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The server's limits come from the limits: block, with today's values
// as defaults.
func TestServerLimitsFromConfig(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, 18097, "")
	cfg, err := loadConfig(c.path)
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(cfg, http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	if srv.ReadHeaderTimeout != 10*time.Second || srv.ReadTimeout != 30*time.Second || srv.WriteTimeout != 30*time.Second ||
		srv.IdleTimeout != 2*time.Minute || srv.MaxHeaderBytes != 16<<10 {
		t.Errorf("default server: header %v read %v write %v idle %v header bytes %d", srv.ReadHeaderTimeout, srv.ReadTimeout,
			srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
	if got := cfg.Limits.withDefaults().MaxConcurrentRequests; got != 1024 {
		t.Errorf("default max_concurrent_requests %d, want 1024", got)
	}

	c = writeConfig(t, 18097, "limits:\n  read_header_timeout: 2s\n  read_timeout: 1m\n  write_timeout: 45s\n  idle_timeout: 5m\n  header_bytes: 8192\n  max_concurrent_requests: 64\n")
	if cfg, err = loadConfig(c.path); err != nil {
		t.Fatal(err)
	}
	srv = newHTTPServer(cfg, http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	if srv.ReadHeaderTimeout != 2*time.Second || srv.ReadTimeout != time.Minute || srv.WriteTimeout != 45*time.Second ||
		srv.IdleTimeout != 5*time.Minute || srv.MaxHeaderBytes != 8192 || cfg.Limits.MaxConcurrentRequests != 64 {
		t.Errorf("configured server: header %v read %v write %v idle %v header bytes %d max %d", srv.ReadHeaderTimeout, srv.ReadTimeout,
			srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes, cfg.Limits.MaxConcurrentRequests)
	}
}

// Out-of-range server limits are refused with their key path and line.
func TestServerLimitsConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := "issuer: http://127.0.0.1:8080\nstorage:\n  bolt: " + dir + "/provider.db\nkeys:\n  dir: " + dir + "/keys\nlimits:\n"
	for _, tt := range []struct {
		name, limits string
		want         []string
	}{
		{"too short", "  write_timeout: 10ms\n", []string{":7: limits.write_timeout: 10ms must be between 1s and 1h0m0s (0 or absent: the default, 30s)"}},
		{"too long", "  idle_timeout: 48h\n", []string{":7: limits.idle_timeout: 48h0m0s must be between 1s and 1h0m0s"}},
		{"not a duration", "  read_timeout: 30\n", []string{`:7: limits.read_timeout: "30" is not a duration like 15m or 720h`}},
		{"header over read", "  read_header_timeout: 1m\n  read_timeout: 20s\n", []string{":7: limits.read_header_timeout: 1m0s must not exceed limits.read_timeout (20s)"}},
		{"header over default read", "  read_header_timeout: 45s\n", []string{":7: limits.read_header_timeout: 45s must not exceed limits.read_timeout (30s)"}},
		{"negative concurrency", "  max_concurrent_requests: -1\n", []string{":7: limits.max_concurrent_requests: -1 must be between 1 and 1048576 (0 or absent: the default, 1024)"}},
		{"concurrency not a number", "  max_concurrent_requests: lots\n", []string{`:7: limits.max_concurrent_requests: must be a whole number, not "lots"`}},
		{"misspelt", "  read_timout: 1m\n", []string{`:7: limits: unknown key "read_timout" (did you mean read_timeout?)`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := dir + "/" + strings.ReplaceAll(tt.name, " ", "-") + ".yaml"
			writeFile(t, path, base+tt.limits)
			msg := runCLI(t, "", "config", "check", "--config", path).failsConfig(t, path)
			for _, w := range tt.want {
				if !strings.Contains(msg, path+w) {
					t.Errorf("%q does not contain %q", msg, path+w)
				}
			}
			if n := strings.Count(msg, "\n"); n != 0 {
				t.Errorf("%d lines, want 1:\n%s", n+1, msg)
			}
		})
	}
}

// holdRequest starts a token request whose body the server waits for:
// with Expect: 100-continue the server answers "100 Continue" only once
// the handler reads the body, which proves the request holds one of the
// max_concurrent_requests slots. finish sends the body and reads the
// answer.
func holdRequest(t *testing.T, addr string) (finish func() int) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	const body = "grant_type=client_credentials"
	_, err = io.WriteString(conn, "POST /token HTTP/1.1\r\nHost: "+addr+"\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
		"Content-Length: 29\r\nExpect: 100-continue\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 100 ") {
		t.Fatalf("held request: %q, %v; want 100 Continue", status, err)
	}
	if blank, err := br.ReadString('\n'); err != nil || blank != "\r\n" {
		t.Fatalf("after 100 Continue: %q, %v", blank, err)
	}
	return func() int {
		t.Helper()
		if _, err := io.WriteString(conn, body); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
}

// Beyond limits.max_concurrent_requests a request gets 503 with
// Retry-After: 1 straight away; /healthz is still answered; once the
// requests in flight end, requests are served again.
func TestMaxConcurrentRequests(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), "limits:\n  max_concurrent_requests: 2\n")
	srv := startServer(t, c)
	addr := strings.TrimPrefix(c.issuer, "http://")
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	get := func(path, accept string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, c.issuer+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}

	first, second := holdRequest(t, addr), holdRequest(t, addr)

	resp, body := get("/.well-known/openid-configuration", "")
	var e struct{ Error, ErrorDescription string }
	json.Unmarshal([]byte(body), &e)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || e.Error != "temporarily_unavailable" {
		t.Errorf("third request: HTTP %d, Retry-After %q, %s; want 503, Retry-After 1, temporarily_unavailable",
			resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	resp, body = get("/authorize", "text/html,application/xhtml+xml")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "busy") {
		t.Errorf("third request from a browser: HTTP %d %s %q; want a 503 page", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if resp, _ := get("/healthz", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz while busy: HTTP %d, want 200", resp.StatusCode)
	}

	// The held requests complete normally (the client is unknown: 401).
	for i, finish := range []func() int{first, second} {
		if status := finish(); status >= 500 {
			t.Errorf("held request %d: HTTP %d", i, status)
		}
	}
	// A slot is released when its handler returns, which may be a moment
	// after the client has read the answer: poll, bounded.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, _ := get("/.well-known/openid-configuration", "")
		if resp.StatusCode == http.StatusOK {
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("after the held requests ended: HTTP %d, want 200", resp.StatusCode)
		}
	}
	if !strings.Contains(srv.stderr.String(), "max_concurrent_requests") {
		t.Errorf("the refusals were not logged")
	}
}

// waitClosed reads from conn until the server closes it, and fails if the
// server answers instead or has not closed it within bound (far longer
// than the configured timeout, far shorter than the default one).
func waitClosed(t *testing.T, conn net.Conn, br *bufio.Reader, bound time.Duration, what string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(bound))
	b, err := io.ReadAll(br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the connection is still open after %v", what, bound)
	}
	if strings.Contains(string(b), " 200 ") {
		t.Fatalf("%s: answered %q", what, b)
	}
}

// A client that sends its headers slowly (slowloris) is cut off after
// limits.read_header_timeout, and an idle keep-alive connection after
// limits.idle_timeout.
func TestServerTimeoutsFromConfig(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), "limits:\n  read_header_timeout: 1s\n  idle_timeout: 1s\n")
	startServer(t, c)
	addr := strings.TrimPrefix(c.issuer, "http://")

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: "+addr+"\r\nX-Slow: ")
	waitClosed(t, conn, bufio.NewReader(conn), 8*time.Second, "half-sent headers")

	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "GET /healthz HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("keep-alive request: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	waitClosed(t, idle, br, 8*time.Second, "idle keep-alive connection")
}
