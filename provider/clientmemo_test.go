package provider_test

import (
	"context"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/providertest"
	"github.com/smallsso/provider/storage"
)

// clientCountingStore counts client loads.
type clientCountingStore struct {
	storage.Store
	loads atomic.Int64
}

func (s *clientCountingStore) GetClient(ctx context.Context, id string) (storage.Client, error) {
	s.loads.Add(1)
	return s.Store.GetClient(ctx, id)
}

// One token or introspection request loads each client it involves once,
// though fosite asks for it at client authentication and again with the
// token it looks up.
func TestOneClientLoadPerRequest(t *testing.T) {
	t.Parallel()
	counting := &clientCountingStore{}
	ts := newTestServerDeps(t, func(d *provider.Deps) {
		counting.Store = d.Store
		d.Store = counting
	})
	ctx := context.Background()
	rp := newRP(t, ts, "web", "web-secret", webRedirect, "openid", "offline_access")
	f := rp.authorize(t, providertest.NewBrowser(ts.URL), alicePass, "allow")
	tok, err := rp.oauth2.Exchange(ctx, f.code(t, ts.URL), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatal(err)
	}
	_, _, cc := postForm(t, ts.URL+"/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"api:read"}}, "svc", "svc-secret")
	svcToken, _ := cc["access_token"].(string)
	if svcToken == "" {
		t.Fatalf("client_credentials: %v", cc)
	}

	loads := func(name string, want int64, do func() (int, map[string]any)) {
		t.Helper()
		before := counting.loads.Load()
		status, body := do()
		if status != http.StatusOK {
			t.Fatalf("%s: HTTP %d %v", name, status, body)
		}
		if got := counting.loads.Load() - before; got != want {
			t.Errorf("%s: %d client loads, want %d", name, got, want)
		}
	}
	introspect := func(token, user, pass string) func() (int, map[string]any) {
		return func() (int, map[string]any) {
			status, _, body := postForm(t, ts.URL+"/introspect", url.Values{"token": {token}}, user, pass)
			if body["active"] != true {
				t.Errorf("introspection by %s: %v", user, body)
			}
			return status, body
		}
	}
	loads("introspection by the token's client", 1, introspect(tok.AccessToken, "web", "web-secret"))
	// web may introspect any token: two clients, two loads.
	loads("introspection of another client's token", 2, introspect(svcToken, "web", "web-secret"))
	loads("client_credentials", 1, func() (int, map[string]any) {
		status, _, body := postForm(t, ts.URL+"/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"api:read"}}, "svc", "svc-secret")
		return status, body
	})
	loads("revocation", 1, func() (int, map[string]any) {
		status, _, body := postForm(t, ts.URL+"/revoke", url.Values{"token": {svcToken}}, "svc", "svc-secret")
		return status, body
	})
	rt := tok.RefreshToken
	// web is registered for client_secret_basic and may use the body
	// instead (clientauth.go); each request is adapted to its own method.
	for i, post := range []bool{false, true, false} {
		loads("refresh", 1, func() (int, map[string]any) {
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
			user, pass := "web", "web-secret"
			if post {
				form.Set("client_id", "web")
				form.Set("client_secret", "web-secret")
				user, pass = "", ""
			}
			status, _, body := postForm(t, ts.URL+"/token", form, user, pass)
			if next, _ := body["refresh_token"].(string); next != "" {
				rt = next
			} else {
				t.Errorf("refresh %d: %v", i, body)
			}
			return status, body
		})
	}
}
