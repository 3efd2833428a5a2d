//go:build linux

package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smallsso/provider/storage/bolt"
)

const legacySecret = "legacy-secret-for-tests-only"

// legacyConfig declares a client of the password grant with refresh
// tokens: tokens without a browser.
const legacyConfig = `clients:
  - id: legacy
    secret: ` + legacySecret + `
    grant_types: [password, refresh_token]
    scopes: [openid, offline_access]
users:
  - username: alice
    password: alice-password-for-tests
`

// A full disk, made real with RLIMIT_FSIZE on the server's process: once
// the database file cannot grow, a token request is answered 503
// temporarily_unavailable with Retry-After, /readyz answers 503 naming
// the database, the log gives the cause, nothing panics, and the refresh
// token whose rotation failed is still the valid one. When the limit is
// lifted, without a restart, /readyz turns 200 again, tokens are issued,
// and tokens issued before the disk filled introspect active, also after
// a restart.
func TestFullDisk(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	c := writeConfig(t, port, legacyConfig)
	ch := startChild(t, testBinary(t, false), c, nil)
	ch.waitListening(t)
	hc := &http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}
	defer hc.CloseIdleConnections()
	token := func(form url.Values) answer {
		return call(t, hc, http.MethodPost, c.issuer+"/token", form, "legacy", legacySecret)
	}
	refreshWith := func(rt string) answer {
		return token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	}
	readyz := func() answer { return call(t, hc, http.MethodGet, c.issuer+"/readyz", nil, "", "") }

	if a := readyz(); a.status != http.StatusOK {
		t.Fatalf("/readyz of a fresh server: HTTP %d %s", a.status, a.raw)
	}
	first := token(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password-for-tests"}, "scope": {"openid offline_access"}})
	if first.status != http.StatusOK {
		t.Fatalf("password grant: HTTP %d %s", first.status, first.raw)
	}
	issued := []string{first.body["access_token"].(string)}
	refresh := first.body["refresh_token"].(string)
	// A second grant, never rotated: its access token stays active
	// throughout (a rotation revokes the access tokens of the refresh
	// token it replaces).
	kept := token(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password-for-tests"}, "scope": {"openid"}})
	if kept.status != http.StatusOK {
		t.Fatalf("password grant: HTTP %d %s", kept.status, kept.raw)
	}
	keptAccess := kept.body["access_token"].(string)
	active := func(when string, tokens ...string) {
		t.Helper()
		for i, tok := range tokens {
			if got := introspect(t, c.issuer, "legacy", legacySecret, tok); !got.Active {
				t.Errorf("%s: access token %d of %d is inactive", when, i+1, len(tokens))
			}
		}
	}

	// The disk is full: the file keeps the pages it has, and cannot grow.
	fi, err := os.Stat(c.bolt)
	if err != nil {
		t.Fatal(err)
	}
	pid := ch.cmd.Process.Pid
	var orig unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: uint64(fi.Size()), Max: unix.RLIM_INFINITY}, &orig); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	// fill rotates the refresh token until a rotation fails.
	fill := func() answer {
		t.Helper()
		for range 5000 {
			a := refreshWith(refresh)
			if a.status != http.StatusOK {
				return a
			}
			refresh = a.body["refresh_token"].(string)
			issued = append(issued, a.body["access_token"].(string))
		}
		t.Fatalf("5000 refresh token rotations fitted in a %d-byte file that cannot grow", fi.Size())
		return answer{}
	}
	failed := fill()
	t.Logf("the disk filled after %d rotations: HTTP %d %s", len(issued)-1, failed.status, failed.raw)
	checkUnavailable := func(a answer) {
		t.Helper()
		if a.status != http.StatusServiceUnavailable || a.body["error"] != "temporarily_unavailable" {
			t.Fatalf("token request with a full disk: HTTP %d %s, want 503 temporarily_unavailable", a.status, a.raw)
		}
		if a.header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		for _, bad := range []string{"bolt", "file", "storage", c.dir} {
			if strings.Contains(a.raw, bad) {
				t.Errorf("the answer shows internals (%q): %s", bad, a.raw)
			}
		}
	}
	checkUnavailable(failed)
	// Once more (bbolt may have found a free page when it rolled the
	// failed commit back), and /readyz right after it.
	checkUnavailable(fill())
	if a := readyz(); a.status != http.StatusServiceUnavailable || !strings.Contains(a.raw, `"database":"not writable"`) {
		t.Errorf("/readyz with a full disk: HTTP %d %s", a.status, a.raw)
	}
	for _, want := range []string{"storage unavailable: database write failed, nothing of it was kept: file resize error: truncate " + c.bolt + ": file too large\"", `msg="not ready"`} {
		// The child's stderr reaches the buffer through a pipe: the line may
		// still be on its way when the answer that follows it arrived.
		if !ch.stderr.waitFor(want, ch.exited, 10*time.Second) {
			t.Errorf("the server's log does not say %s", want)
		}
	}
	active("while the disk is full", keptAccess, issued[len(issued)-1])
	ch.noPanic(t)

	// Space returns.
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &orig, nil); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	waitReady(t, readyz)
	again := refreshWith(refresh)
	if again.status != http.StatusOK {
		t.Fatalf("the refresh token whose rotation failed, once space returned: HTTP %d %s", again.status, again.raw)
	}
	for i := range 20 {
		a := refreshWith(again.body["refresh_token"].(string))
		if a.status != http.StatusOK {
			t.Fatalf("rotation %d once space returned: HTTP %d %s", i, a.status, a.raw)
		}
		again = a
	}
	last := again.body["access_token"].(string)
	active("once space returned", keptAccess, last)
	ch.noPanic(t)
	ch.stop(t)
	if !ch.stderr.waitFor(`msg="ready again"`, ch.exited, 10*time.Second) {
		t.Error(`the server's log does not say "ready again"`)
	}

	// A restart finds every token it issued.
	srv := startServer(t, c)
	active("after a restart", keptAccess, last)
	if a := refreshWith(again.body["refresh_token"].(string)); a.status != http.StatusOK {
		t.Errorf("refresh after a restart: HTTP %d %s", a.status, a.raw)
	}
	srv.stop(t)
}

// waitReady polls /readyz until it answers 200: the server forgets a
// failed write a few seconds after it.
func waitReady(t *testing.T, readyz func() answer) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		a := readyz()
		if a.status == http.StatusOK {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("/readyz still HTTP %d %s 30s after space returned", a.status, a.raw)
		}
	}
}

// A database file the server may not write stops `serve` at once with
// one line naming the file and the reason, and leaves the file as it
// was. Root may write any file, so as root the server runs as nobody
// (uid 65534) over the root-owned file; otherwise the file is made
// read-only (0444).
func TestReadOnlyDatabase(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), legacyConfig)
	withStore(t, c, func(s *bolt.Store) {})
	if err := os.Chmod(c.bolt, 0o444); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(c.bolt)
	if err != nil {
		t.Fatal(err)
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		openUp(t, c.dir)
		if err := os.Chmod(c.path, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ch := startChild(t, testBinary(t, cred != nil), c, cred)
	select {
	case <-ch.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("serve over a read-only database did not stop: %s", ch.stderr.String())
	}
	out := ch.stderr.String()
	if ch.code != 1 {
		t.Errorf("exit %d, want 1", ch.code)
	}
	want := fmt.Sprintf("provider: serve: database %s is not writable (permission denied)", c.bolt)
	if !strings.HasPrefix(out, want) || strings.Count(out, "\n") != 1 {
		t.Errorf("serve over a read-only database said %q, want one line starting %q", out, want)
	}
	ch.noPanic(t)
	after, err := os.ReadFile(c.bolt)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Error("the read-only database file changed")
	}
}
