package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallsso/provider/storage/bolt"
)

// cmdTimeout bounds every CLI command a test runs: an admin command that
// waits on a server must answer well within it.
const cmdTimeout = 30 * time.Second

// result is what one `provider ...` command line produced.
type result struct {
	args           []string
	code           int
	stdout, stderr string
}

// runCLI runs one command line in memory, the way main does, and fails the
// test if it does not return within cmdTimeout.
func runCLI(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cmdTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, strings.NewReader(stdin), &stdout, &stderr) }()
	select {
	case code := <-done:
		return result{args: args, code: code, stdout: stdout.String(), stderr: stderr.String()}
	case <-time.After(cmdTimeout + 5*time.Second):
		t.Fatalf("provider %s: did not return within %v", strings.Join(args, " "), cmdTimeout)
		return result{}
	}
}

// ok asserts the command succeeded silently on stderr and returns stdout.
func (r result) ok(t *testing.T) string {
	t.Helper()
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("provider %s: exit %d, stderr %q, stdout %q; want exit 0 and no stderr",
			strings.Join(r.args, " "), r.code, r.stderr, r.stdout)
	}
	return r.stdout
}

// fails asserts the command failed with code, printing exactly one line on
// stderr and nothing on stdout, and returns that line without its newline.
func (r result) fails(t *testing.T, code int) string {
	t.Helper()
	cmd := "provider " + strings.Join(r.args, " ")
	if r.code != code {
		t.Errorf("%s: exit %d, want %d (stderr %q)", cmd, r.code, code, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("%s: stdout %q, want nothing on failure", cmd, r.stdout)
	}
	if !strings.HasSuffix(r.stderr, "\n") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("%s: stderr %q, want exactly one line", cmd, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "provider: ") {
		t.Errorf("%s: stderr %q does not start with \"provider: \"", cmd, r.stderr)
	}
	for _, bad := range []string{"goroutine ", "panic", ".go:", "Usage:"} {
		if strings.Contains(r.stderr, bad) {
			t.Errorf("%s: stderr %q contains %q", cmd, r.stderr, bad)
		}
	}
	return strings.TrimSuffix(r.stderr, "\n")
}

// testConfig is a config file in a fresh temporary directory.
type testConfig struct {
	dir, path, issuer string
	bolt, keys        string
}

// writeConfig writes a config for a server on 127.0.0.1:port, with the
// database and keys in the same temporary directory, followed by extra
// YAML (clients, users).
func writeConfig(t *testing.T, port int, extra string) *testConfig {
	t.Helper()
	dir := t.TempDir()
	c := &testConfig{
		dir:    dir,
		path:   filepath.Join(dir, "config.yaml"),
		issuer: fmt.Sprintf("http://127.0.0.1:%d", port),
		bolt:   filepath.Join(dir, "provider.db"),
		keys:   filepath.Join(dir, "keys"),
	}
	yaml := fmt.Sprintf(`issuer: %s
listen: 127.0.0.1:%d
storage:
  bolt: %s
keys:
  dir: %s
log:
  level: info
`, c.issuer, port, c.bolt, c.keys) + extra
	writeFile(t, c.path, yaml)
	return c
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// withStore opens the database directly (no server may be running) and
// closes it again before returning, so the next CLI command can open it.
func withStore(t *testing.T, c *testConfig, fn func(*bolt.Store)) {
	t.Helper()
	store, err := bolt.Open(c.bolt, bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	defer store.Close()
	fn(store)
}

// freePort finds a loopback port that is free right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// syncBuffer is a bytes.Buffer a running server may write to while the
// test reads it, or waits for a line to arrive.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written chan struct{} // closed at the next Write
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.written != nil {
		close(b.written)
		b.written = nil
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the buffer contains want and reports whether it
// does; it gives up when stop is closed or after timeout.
func (b *syncBuffer) waitFor(want string, stop <-chan struct{}, timeout time.Duration) bool {
	expired := time.After(timeout)
	for {
		b.mu.Lock()
		found := strings.Contains(b.buf.String(), want)
		if b.written == nil {
			b.written = make(chan struct{})
		}
		written := b.written
		b.mu.Unlock()
		if found {
			return true
		}
		select {
		case <-written:
		case <-stop:
			return strings.Contains(b.String(), want)
		case <-expired:
			return false
		}
	}
}

// server is `provider serve` running in this process.
type server struct {
	cancel context.CancelFunc
	done   chan int
	exited chan struct{} // closed when run has returned
	stderr *syncBuffer
}

// startServer runs `provider serve --config` in a goroutine and waits until
// it logs that it is listening, then checks that the issuer answers
// /healthz. The server is stopped when the test ends if the test has not
// stopped it.
func startServer(t *testing.T, c *testConfig) *server {
	t.Helper()
	s := launchServer(t, c, context.Background())
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(c.issuer + "/healthz")
	if err != nil {
		t.Fatalf("server at %s: %v", c.issuer, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("server at %s: /healthz answered %s", c.issuer, resp.Status)
	}
	return s
}

// stop cancels the server's context, as SIGINT does, and waits for `run`
// to return 0.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case code := <-s.done:
		s.done <- code // for Cleanup
		if code != 0 {
			t.Fatalf("serve exited with %d: %s", code, s.stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("serve did not return after its context was cancelled")
	}
}

// launchServer runs `provider serve --config` in a goroutine with ctx
// (which may carry a reload channel, see withReloadSignals) and waits
// until it logs that it is listening: the kernel then queues connections
// even if Serve has not accepted yet. The server is stopped when the test
// ends if the test has not stopped it.
func launchServer(t *testing.T, c *testConfig, ctx context.Context) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	s := &server{cancel: cancel, done: make(chan int, 1), exited: make(chan struct{}), stderr: &syncBuffer{}}
	go func() {
		s.done <- run(ctx, []string{"serve", "--config", c.path}, strings.NewReader(""), io.Discard, s.stderr)
		close(s.exited)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.exited:
		case <-time.After(15 * time.Second):
			t.Errorf("server did not stop")
		}
		if t.Failed() {
			t.Logf("server log:\n%s", s.stderr.String())
		}
	})
	if !s.stderr.waitFor("msg=listening", s.exited, 15*time.Second) {
		select {
		case <-s.exited:
			t.Fatalf("serve exited before listening: %s", s.stderr.String())
		default:
			t.Fatalf("server at %s not listening after 15s: %s", c.issuer, s.stderr.String())
		}
	}
	return s
}
