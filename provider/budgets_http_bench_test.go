package provider_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/storage"
)

// BenchmarkRateLimitedTokenEndpoint is client_credentials at the token
// endpoint for a client with a rate_limit it stays under (its bucket is
// read and spent on every request) and for one without (no bucket).
func BenchmarkRateLimitedTokenEndpoint(b *testing.B) {
	ts := newTestServer(b)
	ts.addClient(b, clientspec.Spec{ID: "limited", Secret: "limited-secret", ClientSettings: storage.ClientSettings{
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"api:read"}, RateLimit: "1000000/s",
	}})
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"api:read"}}.Encode()
	for _, c := range []struct{ name, id, secret string }{{"limited", "limited", "limited-secret"}, {"unlimited", "svc", "svc-secret"}} {
		b.Run(c.name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodPost, ts.URL+"/token", strings.NewReader(form))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.SetBasicAuth(c.id, c.secret)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("HTTP %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}
