//go:build linux

package main

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Crash safety: a server issuing and rotating tokens for several clients
// at once is killed with SIGKILL. After a restart, every token a client
// received is valid or was legitimately rotated: a client whose last
// request never reached the server refreshes with its last refresh token
// and finds its last access token active; a client whose request was cut
// off may find that rotation committed (its refresh token then counts as
// reused) or not, but never a server error.
func TestKillUnderLoad(t *testing.T) {
	t.Parallel()
	const workers, killAfter = 6, 120
	port := freePort(t)
	c := writeConfig(t, port, legacyConfig)
	ch := startChild(t, testBinary(t, false), c, nil)
	ch.waitListening(t)

	type chain struct {
		access, refresh string
		// cutOff: the last request failed after it may have reached the
		// server; false when it failed to connect.
		cutOff bool
		err    error
	}
	chains := make([]chain, workers)
	// Each client starts from a password grant, one after the other (at
	// once, they would trip the sign-in throttle).
	hc := &http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}
	defer hc.CloseIdleConnections()
	for w := range chains {
		a := call(t, hc, http.MethodPost, c.issuer+"/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password-for-tests"}, "scope": {"openid offline_access"}}, "legacy", legacySecret)
		if a.status != http.StatusOK {
			t.Fatalf("password grant: HTTP %d %s", a.status, a.raw)
		}
		chains[w].access, chains[w].refresh = a.body["access_token"].(string), a.body["refresh_token"].(string)
	}
	// Half the clients stop after their share of rotations, while the
	// others go on until the kill: the first half's state is known.
	const quiet, share = workers / 2, killAfter / workers
	var rotations atomic.Int64
	killed := make(chan struct{})
	var wg, quietDone sync.WaitGroup
	quietDone.Add(quiet)
	for w := range workers {
		wg.Go(func() {
			// A connection per request: after the kill a request fails at
			// dial, which shows it never reached the server.
			hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
			cur := &chains[w]
			if w < quiet {
				defer quietDone.Done()
			}
			for i := 0; w >= quiet || i < share; i++ {
				form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {cur.refresh}}
				a, err := tryCall(hc, c.issuer+"/token", form, "legacy", legacySecret)
				if err != nil {
					var op *net.OpError
					cur.cutOff = !(errors.As(err, &op) && op.Op == "dial")
					select {
					case <-killed:
					default:
						cur.err = err // failed before the kill
					}
					return
				}
				if a.status != http.StatusOK {
					cur.err = errors.New("HTTP " + a.raw)
					return
				}
				cur.access, cur.refresh = a.body["access_token"].(string), a.body["refresh_token"].(string)
				rotations.Add(1)
			}
		})
	}
	// Kill once the quiet clients are done and all have made killAfter
	// rotations between them.
	quietDone.Wait()
	tick := time.NewTicker(10 * time.Millisecond)
	deadline := time.After(60 * time.Second)
wait:
	for rotations.Load() < killAfter {
		select {
		case <-tick.C:
		case <-deadline:
			break wait
		}
	}
	tick.Stop()
	close(killed)
	if err := ch.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-ch.exited
	wg.Wait()
	if n := rotations.Load(); n < killAfter {
		t.Fatalf("only %d token requests succeeded in 60s", n)
	}
	ch.noPanic(t)

	srv := startServer(t, c)
	var definite int
	for w, cur := range chains {
		switch {
		case cur.err != nil:
			t.Errorf("client %d: a request failed before the kill: %v", w, cur.err)
			continue
		}
		if w < quiet && cur.cutOff {
			t.Errorf("client %d stopped before the kill but was cut off", w)
		}
		if !cur.cutOff {
			definite++
			if got := introspect(t, c.issuer, "legacy", legacySecret, cur.access); !got.Active {
				t.Errorf("client %d: its last access token is inactive after the restart", w)
			}
		}
		a := call(t, hc, http.MethodPost, c.issuer+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {cur.refresh}}, "legacy", legacySecret)
		switch {
		case a.status == http.StatusOK:
		case cur.cutOff && a.status == http.StatusBadRequest && a.body["error"] == "invalid_grant":
			// The cut-off rotation committed: this token was rotated.
		default:
			t.Errorf("client %d (cut off: %v): its last refresh token after the restart: HTTP %d %s", w, cur.cutOff, a.status, a.raw)
		}
	}
	t.Logf("%d rotations before the kill; %d of %d clients were not cut off", rotations.Load(), definite, workers)
	if definite < quiet {
		t.Errorf("%d clients not cut off, want at least %d", definite, quiet)
	}
	srv.stop(t)
}

// tryCall is call that returns a transport error instead of failing.
func tryCall(hc *http.Client, u string, form url.Values, user, pass string) (answer, error) {
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	resp, err := hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	return decodeAnswer(resp)
}
