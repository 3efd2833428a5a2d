package provider

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallsso/provider/keys"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/bolt"
	"github.com/smallsso/provider/templates"
)

// reloadFixture is a provider on a fresh store whose clock stands still,
// so the CORS origins' TTL never runs out on its own.
func reloadFixture(t *testing.T) (*Provider, storage.Store, *httptest.Server) {
	t.Helper()
	dir := t.TempDir()
	store, err := bolt.Open(filepath.Join(dir, "provider.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	km, err := keys.Open(filepath.Join(dir, "keys"), keys.Options{Algorithms: []string{"ES256"}, ReloadInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := km.Secret("provider")
	if err != nil {
		t.Fatal(err)
	}
	pages, err := templates.New(templates.Embedded())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	now := time.Now()
	p, err := New(Config{Issuer: "http://" + srv.Listener.Addr().String(), OrgName: "Org A", PrimaryColor: "#2456c8"},
		Deps{Store: store, Keys: km, Templates: pages, Secret: sec, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = p.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	return p, store, srv
}

func get(t *testing.T, u string, header ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return nil, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// Pages rendered while SetUI swaps the settings show the old settings or
// the new ones, whole (and -race finds no data race).
func TestSetUIWhileServing(t *testing.T) {
	t.Parallel()
	p, _, srv := reloadFixture(t)
	pages := p.pages()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ui := UI{OrgName: "Org A", PrimaryColor: "#2456c8", Templates: pages}
			if i%2 == 1 {
				ui = UI{OrgName: "Org B", PrimaryColor: "#0f766e", LogoURL: "static/b.svg", Templates: pages}
			}
			if err := p.SetUI(ui); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for range 50 {
		_, body := get(t, srv.URL+"/nowhere")
		a, b := strings.Contains(body, "Org A"), strings.Contains(body, "Org B")
		if a == b || a && strings.Contains(body, "static/b.svg") || b && !strings.Contains(body, "static/b.svg") {
			t.Fatalf("error page mixes or lacks the settings:\n%s", body)
		}
		_, css := get(t, srv.URL+"/static/theme.css")
		if !strings.Contains(css, "#2456c8") && !strings.Contains(css, "#0f766e") {
			t.Fatalf("theme.css = %q", css)
		}
	}
	close(stop)
	wg.Wait()

	before := p.ui.Load()
	if err := p.SetUI(UI{OrgName: "Bad", PrimaryColor: "blue", Templates: pages}); err == nil {
		t.Errorf("SetUI accepted a colour that is not one")
	}
	if err := p.SetUI(UI{OrgName: "Bad", LogoURL: "http://cdn.example/logo.png", Templates: pages}); err == nil {
		t.Errorf("SetUI accepted a plain-http logo")
	}
	if p.ui.Load() != before {
		t.Errorf("a refused SetUI changed the settings")
	}
}

// After ClientsChanged a new client's origin is answered at once, and a
// removed client's no longer, without waiting for the TTL.
func TestClientsChangedRefreshesCORSOrigins(t *testing.T) {
	t.Parallel()
	p, store, srv := reloadFixture(t)
	const origin = "https://spa.example.org"
	allowed := func() bool {
		resp, _ := get(t, srv.URL+"/jwks", "Origin", origin)
		return resp != nil && resp.Header.Get("Access-Control-Allow-Origin") == origin
	}
	if allowed() {
		t.Fatalf("origin allowed before any client has it")
	}
	spec, err := clientspec.Spec{ID: "spa", ClientSettings: storage.ClientSettings{
		Public: true, RedirectURIs: []string{origin + "/cb"}, GrantTypes: []string{"authorization_code"},
	}}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	rec, err := spec.Record(storage.Client{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateClient(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	if allowed() {
		t.Fatalf("the clock stands still, so the cached origins should still be used")
	}
	p.ClientsChanged()
	if !allowed() {
		t.Errorf("new client's origin refused after ClientsChanged")
	}
	if err := store.DeleteClient(t.Context(), "spa"); err != nil {
		t.Fatal(err)
	}
	p.ClientsChanged()
	if allowed() {
		t.Errorf("removed client's origin still allowed after ClientsChanged")
	}
}
