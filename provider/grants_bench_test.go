package provider_test

import (
	"github.com/smallsso/provider/storage"

	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/smallsso/provider/provider/clientspec"
)

// BenchmarkTokenEndpoint compares what one token request costs per grant
// and client authentication method (the first case is the plain
// client-credentials request a CI pipeline hammers with), over HTTP against the real server, in
// one run (the machine is shared: read the ratios, not the absolutes).
// Assertions are signed inside the loop, as a real client signs each one;
// that is about 1% of a request for ES256.
func BenchmarkTokenEndpoint(b *testing.B) {
	ts := newTestServer(b)
	ts.addClient(b, clientspec.Spec{ID: "svc-jwt-at", Secret: "svc-jwt-at-secret", ClientSettings: storage.ClientSettings{
		GrantTypes:        []string{"client_credentials"},
		Scopes:            []string{"api:read"},
		AccessTokenFormat: "jwt",
	}})
	hmacSecret := strings.Repeat("s", 32)
	ts.addClient(b, clientspec.Spec{ID: "svc-hs", Secret: hmacSecret, ClientSettings: storage.ClientSettings{
		TokenEndpointAuthMethod: "client_secret_jwt",
		GrantTypes:              []string{"client_credentials"},
		Scopes:                  []string{"api:read"},
	}})
	es := newClientKey(b, "es-1", jose.ES256)
	ts.addClient(b, clientspec.Spec{ID: "svc-es", ClientSettings: storage.ClientSettings{
		TokenEndpointAuthMethod: "private_key_jwt",
		GrantTypes:              []string{"client_credentials"},
		Scopes:                  []string{"api:read"},
	}, JWKS: clientspec.JWKSDoc(jwksJSON(b, es))})
	ts.addClient(b, clientspec.Spec{ID: "legacy", Secret: "legacy-secret-0123456789", ClientSettings: storage.ClientSettings{GrantTypes: []string{"password"}, Scopes: []string{"openid"}}})

	cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"api:read"}}
	cases := []struct {
		name string
		req  func() (url.Values, string, string)
	}{
		{"client_credentials/secret_basic/opaque", func() (url.Values, string, string) { return cc, "svc", "svc-secret" }},
		{"client_credentials/secret_basic/jwt_access_token", func() (url.Values, string, string) { return cc, "svc-jwt-at", "svc-jwt-at-secret" }},
		{"client_credentials/client_secret_jwt", func() (url.Values, string, string) {
			f := assertionForm(signAssertion(b, jose.HS256, []byte(hmacSecret), "", assertionClaims(ts, "svc-hs", time.Now())))
			f.Set("scope", "api:read")
			return f, "", ""
		}},
		{"client_credentials/private_key_jwt_es256", func() (url.Values, string, string) {
			f := assertionForm(es.sign(b, assertionClaims(ts, "svc-es", time.Now())))
			f.Set("scope", "api:read")
			return f, "", ""
		}},
		{"password", func() (url.Values, string, string) {
			return url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePass}, "scope": {"openid"}}, "legacy", "legacy-secret-0123456789"
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					form, user, pass := c.req()
					req, _ := http.NewRequest(http.MethodPost, ts.URL+"/token", strings.NewReader(form.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					if user != "" {
						req.SetBasicAuth(user, pass)
					}
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
