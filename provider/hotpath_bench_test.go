package provider_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider/providertest"
)

// The hot paths, through the real handler (routes, middleware, fosite,
// bolt) but in process: no sockets, so a CPU profile shows the provider
// and not the loopback stack. 16 concurrent requests, as in
// ../shared/bench. Only with -bench; e.g.
//
//	go test -run '^$' -bench HotPath -benchtime 3s -cpuprofile cpu.out ./provider/
//
// bbolt's fsync is in ns/op but not in a CPU profile (the thread waits).

// inProcess is an http.RoundTripper that serves requests with a handler.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Host = req.URL.Host
	r.RequestURI = req.URL.RequestURI()
	r.RemoteAddr = "127.0.0.1:40000"
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	if r.Body == nil {
		r.Body = http.NoBody
	}
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	resp := w.Result()
	resp.Request = req
	return resp, nil
}

type benchFixture struct {
	ts      *testServer
	client  *http.Client
	browser *providertest.Browser
	oauth   oauth2.Config
}

func newBenchFixture(b *testing.B) *benchFixture {
	ts := newTestServer(b)
	tr := inProcess{ts.srv.Config.Handler}
	f := &benchFixture{ts: ts, client: &http.Client{Transport: tr}, browser: providertest.NewBrowser(ts.URL)}
	f.browser.HTTP.Transport = tr
	f.oauth = oauth2.Config{ClientID: "web", ClientSecret: "web-secret", RedirectURL: webRedirect,
		Endpoint: oauth2.Endpoint{AuthURL: ts.URL + "/authorize", TokenURL: ts.URL + "/token"},
		Scopes:   []string{"openid", "profile", "email", "offline_access"}}
	// Sign in and consent once: every later authorization request rides on
	// the session.
	f.code(b)
	return f
}

// code runs one authorization request with the browser's session and
// returns the code and its PKCE verifier.
func (f *benchFixture) code(b *testing.B) (string, string) {
	verifier := oauth2.GenerateVerifier()
	loc, err := f.browser.SignIn(b.Context(), f.oauth.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", randomString())), "alice", alicePass, "allow")
	if err != nil {
		b.Fatal(err)
	}
	c := loc.Query().Get("code")
	if c == "" {
		b.Fatalf("no code: %s", loc)
	}
	return c, verifier
}

type tokenBody struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

// post sends a form with Basic credentials and decodes a 200 answer.
func (f *benchFixture) post(path string, form url.Values, user, pass string, out any) error {
	req, _ := http.NewRequest(http.MethodPost, f.ts.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(user, pass)
	resp, err := f.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d %s", path, resp.StatusCode, body)
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}

func (f *benchFixture) exchange(code, verifier string) (tokenBody, error) {
	var tok tokenBody
	err := f.post("/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect}, "code_verifier": {verifier}}, "web", "web-secret", &tok)
	if err == nil && (tok.AccessToken == "" || tok.RefreshToken == "" || tok.IDToken == "") {
		err = fmt.Errorf("incomplete token response %+v", tok)
	}
	return tok, err
}

// benchParallelism gives 16 concurrent requests on 2 cores.
func benchParallelism(b *testing.B) {
	b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
}

// runParallel is b.RunParallel that also reports the process's CPU time
// per operation (cpu-ns/op): on a shared machine it moves far less than
// ns/op, which waits for the CPU and the disk. It includes the in-process
// client's share, the same in every comparison.
func runParallel(b *testing.B, body func(*testing.PB)) {
	start, ok := processCPU()
	b.RunParallel(body)
	if end, ok2 := processCPU(); ok && ok2 && b.N > 0 {
		b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
	}
}

func BenchmarkHotPath(b *testing.B) {
	f := newBenchFixture(b)

	b.Run("token_client_credentials", func(b *testing.B) {
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"api:read"}}
		benchParallelism(b)
		runParallel(b, func(pb *testing.PB) {
			for pb.Next() {
				var tok tokenBody
				if err := f.post("/token", form, "svc", "svc-secret", &tok); err != nil || tok.AccessToken == "" {
					b.Error(err)
					return
				}
			}
		})
	})

	b.Run("token_refresh", func(b *testing.B) {
		// Each worker chains its own rotated token, as a long-lived client
		// does; every refresh signs a new RS256 ID token.
		seeds := make(chan string, 16*runtime.GOMAXPROCS(0))
		for range cap(seeds) {
			tok, err := f.exchange(f.code(b))
			if err != nil {
				b.Fatal(err)
			}
			seeds <- tok.RefreshToken
		}
		benchParallelism(b)
		b.ResetTimer()
		runParallel(b, func(pb *testing.PB) {
			rt := <-seeds
			for pb.Next() {
				var tok tokenBody
				if err := f.post("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "web", "web-secret", &tok); err != nil || tok.RefreshToken == "" || tok.IDToken == "" {
					b.Error(err)
					return
				}
				rt = tok.RefreshToken
			}
		})
	})

	b.Run("token_authorization_code", func(b *testing.B) {
		// The codes are made before the timer starts: this is the exchange
		// alone (authorize_with_session is the other half of a code flow).
		type pending struct{ code, verifier string }
		codes := make([]pending, b.N)
		for i := range codes {
			codes[i].code, codes[i].verifier = f.code(b)
		}
		var next atomic.Int64
		benchParallelism(b)
		b.ResetTimer()
		runParallel(b, func(pb *testing.PB) {
			for pb.Next() {
				c := codes[next.Add(1)-1]
				if _, err := f.exchange(c.code, c.verifier); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})

	b.Run("authorize_with_session", func(b *testing.B) {
		benchParallelism(b)
		runParallel(b, func(pb *testing.PB) {
			for pb.Next() {
				f.code(b)
			}
		})
	})

	tok, err := f.exchange(f.code(b))
	if err != nil {
		b.Fatal(err)
	}

	b.Run("introspect", func(b *testing.B) {
		// A person's access token, asked about by the client it was issued
		// to: client auth, token, client and user lookups.
		form := url.Values{"token": {tok.AccessToken}}
		benchParallelism(b)
		runParallel(b, func(pb *testing.PB) {
			for pb.Next() {
				var out struct {
					Active bool `json:"active"`
				}
				if err := f.post("/introspect", form, "web", "web-secret", &out); err != nil || !out.Active {
					b.Error(err, out)
					return
				}
			}
		})
	})

	b.Run("userinfo", func(b *testing.B) {
		benchParallelism(b)
		runParallel(b, func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest(http.MethodGet, f.ts.URL+"/userinfo", nil)
				req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
				resp, err := f.client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("userinfo: HTTP %d", resp.StatusCode)
					return
				}
			}
		})
	})

	for name, path := range map[string]string{"jwks": "/jwks", "discovery": "/.well-known/openid-configuration"} {
		b.Run(name, func(b *testing.B) {
			benchParallelism(b)
			runParallel(b, func(pb *testing.PB) {
				for pb.Next() {
					resp, err := f.client.Get(f.ts.URL + path)
					if err != nil || resp.StatusCode != http.StatusOK {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}
