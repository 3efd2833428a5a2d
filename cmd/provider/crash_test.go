package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// childServer is `provider serve` in a child process (this test binary,
// see TestMain), so that it can be killed without a chance to clean up.
type childServer struct {
	cmd      *exec.Cmd
	exited   chan struct{}
	mu       sync.Mutex
	log      strings.Builder
	listened chan struct{}
}

// startChild starts the server on the config and waits until it logs that
// it is listening.
func startChild(t *testing.T, c *testConfig) *childServer {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := &childServer{exited: make(chan struct{}), listened: make(chan struct{})}
	s.cmd = exec.Command(self, "-test.run=^$")
	s.cmd.Env = append(os.Environ(), childServeEnv+"="+c.path)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go s.readLog(stderr)
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.exited
		if t.Failed() {
			t.Logf("child server log:\n%s", s.logText())
		}
	})
	select {
	case <-s.listened:
	case <-s.exited:
		t.Fatalf("child server exited before listening:\n%s", s.logText())
	case <-time.After(30 * time.Second):
		t.Fatalf("child server not listening after 30s:\n%s", s.logText())
	}
	return s
}

func (s *childServer) readLog(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	listening := false
	for sc.Scan() {
		s.mu.Lock()
		s.log.WriteString(sc.Text() + "\n")
		s.mu.Unlock()
		if !listening && strings.Contains(sc.Text(), "msg=listening") {
			listening = true
			close(s.listened)
		}
	}
	_ = s.cmd.Wait()
	close(s.exited)
}

func (s *childServer) logText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *childServer) kill(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.exited
}

// crashConfig has a client that gets tokens with the password grant and
// rotates them with refresh tokens.
const crashConfig = `clients:
  - id: sync
    secret: sync-secret-for-tests-only
    grant_types: [password, refresh_token]
    scopes: [openid, offline_access]
users:
  - username: alice
    password: alice-password-for-tests
`

// chain is what one client received along one refresh-token family: every
// pair, in order, and whether a request was still unanswered at the kill.
type chain struct {
	pairs    []*oauth2.Token
	inFlight bool
}

// TestKilledUnderLoad kills the server with SIGKILL while refreshes rotate
// tokens, restarts it on the same files, and checks every token a client
// received: the last pair of each family is valid unless a refresh of it
// was unanswered at the kill (then it is valid, or rotated by a refresh
// whose answer was lost), and every pair before it is rotated away.
func TestKilledUnderLoad(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), crashConfig)
	child := startChild(t, c)

	hc := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, hc)
	conf := oauth2.Config{ClientID: "sync", ClientSecret: "sync-secret-for-tests-only",
		Endpoint: oauth2.Endpoint{TokenURL: c.issuer + "/token", AuthStyle: oauth2.AuthStyleInHeader},
		Scopes:   []string{"openid", "offline_access"}}

	const families, killAfter = 4, 120
	chains := make([]*chain, families)
	var (
		mu       sync.Mutex
		answered int
		reached  = make(chan struct{})
		wg       sync.WaitGroup
	)
	for i := range chains {
		tok, err := conf.PasswordCredentialsToken(ctx, "alice", "alice-password-for-tests")
		if err != nil || tok.RefreshToken == "" {
			t.Fatalf("password grant: %v (refresh token %q)", err, tok.RefreshToken)
		}
		chains[i] = &chain{pairs: []*oauth2.Token{tok}}
	}
	for _, ch := range chains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				last := ch.pairs[len(ch.pairs)-1]
				tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: last.RefreshToken}).Token()
				if err != nil {
					// The server is gone: this refresh may or may not have
					// been committed before it died.
					ch.inFlight = true
					return
				}
				ch.pairs = append(ch.pairs, tok)
				mu.Lock()
				answered++
				if answered == killAfter {
					close(reached)
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-reached:
	case <-time.After(2 * time.Minute):
		t.Fatal("the server answered too few refreshes")
	}
	child.kill(t)
	wg.Wait()

	startChild(t, c)
	for i, ch := range chains {
		if len(ch.pairs) < 2 {
			t.Errorf("family %d: no refresh answered before the kill", i)
		}
		last := ch.pairs[len(ch.pairs)-1]
		active := introspect(t, c.issuer, "sync", "sync-secret-for-tests-only", last.RefreshToken).Active
		if !active && !ch.inFlight {
			t.Errorf("family %d: the last refresh token received (pair %d) is not active after the restart, and no refresh of it was pending", i, len(ch.pairs)-1)
		}
		if introspect(t, c.issuer, "sync", "sync-secret-for-tests-only", last.AccessToken).Active != active {
			t.Errorf("family %d: the last pair's access and refresh tokens disagree about being active", i)
		}
		for j, old := range ch.pairs[:len(ch.pairs)-1] {
			if introspect(t, c.issuer, "sync", "sync-secret-for-tests-only", old.RefreshToken).Active {
				t.Errorf("family %d: refresh token %d was rotated before the kill but is active after the restart", i, j)
			}
		}
		if active {
			// The family goes on: its newest refresh token still rotates.
			if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: last.RefreshToken}).Token(); err != nil {
				t.Errorf("family %d: refresh after the restart: %v", i, err)
			}
		}
	}
	if strings.Contains(child.logText(), "panic") {
		t.Error("the server panicked")
	}
}
