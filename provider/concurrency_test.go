package provider_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/smallsso/provider/provider/providertest"
)

// TestConcurrentGrants drives the token endpoint from many goroutines at
// once, as a busy deployment does: client-credentials grants, refresh
// chains and code exchanges (some raced by a replay) share the store's
// commits. Nothing may fail, no rotation may be lost (every refresh token
// is accepted exactly once) and no code may buy two grants.
func TestConcurrentGrants(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rp := newRP(t, ts, "web", "web-secret", webRedirect, "openid", "profile")
	const chains, rotations, raced, ccWorkers, ccEach = 3, 8, 3, 6, 10

	exchange := func(code, verifier string) (int, map[string]any) {
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect}, "code_verifier": {verifier}}
		status, _, body := postForm(t, ts.URL+"/token", form, "web", "web-secret")
		return status, body
	}
	type pending struct{ code, verifier string }
	var chainCodes, racedCodes []pending
	browser := providertest.NewBrowser(ts.URL)
	for i := range chains + raced {
		f := rp.authorize(t, browser, alicePass, "allow")
		p := pending{f.code(t, ts.URL), f.verifier}
		if i < chains {
			chainCodes = append(chainCodes, p)
		} else {
			racedCodes = append(racedCodes, p)
		}
	}

	var mu sync.Mutex
	seen := map[string]bool{} // every token handed out
	fresh := func(what, tok string) {
		mu.Lock()
		defer mu.Unlock()
		if tok == "" || seen[tok] {
			t.Errorf("%s: empty or repeated token", what)
		}
		seen[tok] = true
	}
	var used [][]string // per chain, the refresh tokens it spent
	used = make([][]string, chains)
	var wg sync.WaitGroup

	for w := range ccWorkers {
		wg.Go(func() {
			cc := clientcredentials.Config{ClientID: "svc", ClientSecret: "svc-secret", TokenURL: ts.URL + "/token", Scopes: []string{"api:read"}}
			for i := range ccEach {
				tok, err := cc.Token(context.Background())
				if err != nil {
					t.Errorf("client_credentials %d/%d: %v", w, i, err)
					return
				}
				fresh("client_credentials", tok.AccessToken)
			}
		})
	}
	for c, p := range chainCodes {
		wg.Go(func() {
			status, body := exchange(p.code, p.verifier)
			if status != http.StatusOK {
				t.Errorf("chain %d: exchange: HTTP %d %v", c, status, body)
				return
			}
			rt, _ := body["refresh_token"].(string)
			fresh("code access token", fmt.Sprint(body["access_token"]))
			for r := range rotations {
				status, body := ts.refresh(t, rt)
				if status != http.StatusOK {
					t.Errorf("chain %d: rotation %d: HTTP %d %v", c, r, status, body)
					return
				}
				used[c] = append(used[c], rt)
				rt, _ = body["refresh_token"].(string)
				fresh("refresh token", rt)
				fresh("refreshed access token", fmt.Sprint(body["access_token"]))
			}
		})
	}
	type answer struct {
		status int
		body   map[string]any
	}
	answers := make([][2]answer, raced)
	for c, p := range racedCodes {
		for k := range 2 {
			wg.Go(func() {
				status, body := exchange(p.code, p.verifier)
				answers[c][k] = answer{status, body}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	for c, pair := range answers {
		won := 0
		for _, a := range pair {
			switch {
			case a.status == http.StatusOK:
				won++
			case a.status == http.StatusBadRequest && a.body["error"] == "invalid_grant":
			default:
				t.Errorf("raced code %d: HTTP %d %v, want 200 or invalid_grant", c, a.status, a.body)
			}
		}
		if won != 1 {
			t.Errorf("raced code %d bought %d grants, want exactly 1", c, won)
		}
	}
	// Every spent refresh token is refused when presented again (that
	// revokes its chain, so the chains are checked last).
	for c, spent := range used {
		if len(spent) != rotations {
			t.Errorf("chain %d made %d rotations, want %d", c, len(spent), rotations)
		}
		for r, rt := range spent {
			if status, body := ts.refresh(t, rt); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
				t.Errorf("chain %d: spent refresh token %d accepted again: HTTP %d %v", c, r, status, body)
			}
		}
	}
}
