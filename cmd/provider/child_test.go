//go:build linux

package main

// The real server as a child process, for what an in-process server
// cannot show: a process-wide file size limit (a full disk), another
// user's permissions, a kill. TestMain runs `provider serve` instead of
// the tests when childServeEnv names a config file.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const childServeEnv = "PROVIDER_TEST_CHILD_SERVE"

// serveChildIfAsked runs `provider serve --config $PROVIDER_TEST_CHILD_SERVE`
// and exits, when that variable is set. SIGXFSZ is ignored, so a write
// past RLIMIT_FSIZE fails with EFBIG, as a write to a full disk fails with
// ENOSPC, instead of killing the process.
func serveChildIfAsked() {
	path := os.Getenv(childServeEnv)
	if path == "" {
		return
	}
	signal.Ignore(syscall.SIGXFSZ)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, []string{"serve", "--config", path}, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// child is `provider serve` in another process.
type child struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan struct{} // closed once it has exited
	code   int
}

// startChild starts the test binary as `provider serve --config c.path`,
// as cred's user when cred is set. It does not wait for it to listen.
func startChild(t *testing.T, binary string, c *testConfig, cred *syscall.Credential) *child {
	t.Helper()
	ch := &child{stderr: &syncBuffer{}, exited: make(chan struct{})}
	ch.cmd = exec.Command(binary, "-test.run=^$")
	ch.cmd.Env = append(os.Environ(), childServeEnv+"="+c.path)
	ch.cmd.Stdout, ch.cmd.Stderr = io.Discard, ch.stderr
	if cred != nil {
		ch.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	if err := ch.cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	go func() {
		_ = ch.cmd.Wait()
		ch.code = ch.cmd.ProcessState.ExitCode()
		close(ch.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-ch.exited:
		default:
			_ = ch.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-ch.exited:
			case <-time.After(15 * time.Second):
				_ = ch.cmd.Process.Kill()
				<-ch.exited
				t.Errorf("child did not stop on SIGTERM")
			}
		}
		if t.Failed() {
			t.Logf("child log:\n%s", ch.stderr.String())
		}
	})
	return ch
}

// waitListening waits until the child logs that it listens.
func (ch *child) waitListening(t *testing.T) {
	t.Helper()
	if !ch.stderr.waitFor("msg=listening", ch.exited, 30*time.Second) {
		t.Fatalf("child not listening (exited: %v): %s", ch.hasExited(), ch.stderr.String())
	}
}

func (ch *child) hasExited() bool {
	select {
	case <-ch.exited:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits for exit code 0.
func (ch *child) stop(t *testing.T) {
	t.Helper()
	_ = ch.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-ch.exited:
	case <-time.After(15 * time.Second):
		t.Fatal("child did not stop on SIGTERM")
	}
	if ch.code != 0 {
		t.Fatalf("child exited with %d: %s", ch.code, ch.stderr.String())
	}
}

// noPanic fails the test if the child's log shows a Go panic or stack.
func (ch *child) noPanic(t *testing.T) {
	t.Helper()
	log := ch.stderr.String()
	for _, bad := range []string{"panic", "goroutine ", ".go:"} {
		if strings.Contains(log, bad) {
			t.Errorf("child log contains %q:\n%s", bad, log)
		}
	}
}

// answer is one HTTP answer with a JSON body.
type answer struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func call(t *testing.T, hc *http.Client, method, u string, form url.Values, user, pass string) answer {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	a, err := decodeAnswer(resp)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	return a
}

// decodeAnswer reads a response with a JSON body, or none.
func decodeAnswer(resp *http.Response) (answer, error) {
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			return a, fmt.Errorf("HTTP %d, body not JSON: %q", resp.StatusCode, raw)
		}
	}
	return a, nil
}

// testBinary is the running test binary; a copy in a directory every
// user can read when another user must run it.
func testBinary(t *testing.T, forOtherUser bool) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if !forOtherUser {
		return self
	}
	dir := t.TempDir()
	openUp(t, dir)
	raw, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(dir, "provider.test")
	if err := os.WriteFile(copyPath, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	return copyPath
}

// openUp makes dir and its parent (the test's temporary root) readable
// and searchable by every user.
func openUp(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}
