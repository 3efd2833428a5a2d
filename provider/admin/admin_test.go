package admin_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smallsso/provider/provider/admin"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/userspec"
	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/bolt"
)

// The CLI talks to Local directly or, while a server holds the database,
// to the same Local through the admin socket: both must refuse and report
// alike, so an operator's mistake reads the same either way.
func TestSocketClientActsLikeLocal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := openStore(t, dir)
	local := &admin.Local{Store: store}
	ln, err := admin.Listen(filepath.Join(dir, "p.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: admin.Handler(local), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	remote := admin.Dial(filepath.Join(dir, "p.sock"))

	ctx := context.Background()
	for name, a := range map[string]admin.Admin{"local": local, "socket": remote} {
		var inv *clientspec.InvalidError
		_, err := a.AddUser(ctx, userspec.User{Username: "u-" + name, Password: "short"})
		if !errors.As(err, &inv) || inv.Msg != "password: must be at least 8 characters" {
			t.Errorf("%s: short password: %v", name, err)
		}
		if err := a.SetPassword(ctx, "nobody", "short"); !errors.As(err, &inv) {
			t.Errorf("%s: short new password: %v", name, err)
		}
		u, err := a.AddUser(ctx, userspec.User{Username: "u-" + name, Password: "long-enough-password",
			Profile: storage.Profile{Email: "u@example.org", Groups: []string{"a", " b", ""}}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(u.Groups) != 2 || u.Groups[1] != "b" || u.PasswordHash == "" {
			t.Errorf("%s: stored %+v", name, u)
		}
		if _, err := a.AddUser(ctx, userspec.User{Username: "u-" + name, Password: "long-enough-password"}); !errors.Is(err, storage.ErrAlreadyExists) {
			t.Errorf("%s: duplicate: %v", name, err)
		}
		_, _, err = a.AddClient(ctx, clientspec.Spec{ID: "c-" + name, ClientSettings: storage.ClientSettings{RedirectURIs: []string{"https://*.example.org/cb"}}})
		if !errors.As(err, &inv) {
			t.Errorf("%s: wildcard redirect URI: %v", name, err)
		}
	}
}

// The config's users are validated by the sync too, not only by the
// loader: a caller that skips the loader cannot store a malformed user.
func TestSyncUsersValidates(t *testing.T) {
	t.Parallel()
	store := openStore(t, t.TempDir())
	_, err := admin.SyncUsers(context.Background(), store, []userspec.User{{Username: "x", Password: "long-enough-password",
		Profile: storage.Profile{Email: "Eve <eve@example.org>"}}}, time.Now())
	if err == nil {
		t.Fatal("a malformed email was synced")
	}
	if _, err := store.GetUserByUsername(context.Background(), "x"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("refused user stored: %v", err)
	}
}

// A user added through the API gets a password in clear, hashed here, as
// before the split; the sync names the user it refuses.
func TestAddUserRefusesHashAndSyncNamesUser(t *testing.T) {
	t.Parallel()
	store := openStore(t, t.TempDir())
	ctx := context.Background()
	var inv *clientspec.InvalidError
	_, err := (&admin.Local{Store: store}).AddUser(ctx, userspec.User{Username: "h", PasswordHash: "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"})
	if !errors.As(err, &inv) {
		t.Errorf("hash accepted: %v", err)
	}
	_, err = admin.SyncUsers(ctx, store, []userspec.User{{Username: "shorty", Password: "short"}}, time.Now())
	if err == nil || !strings.Contains(err.Error(), `user "shorty"`) {
		t.Errorf("sync error %v, want it to name the user", err)
	}
}

// A user the config declared and no longer does is deleted, and returned
// for its sessions to be ended; a user added with the CLI is left alone.
func TestSyncUsersRemovesUndeclared(t *testing.T) {
	t.Parallel()
	store := openStore(t, t.TempDir())
	ctx := context.Background()
	now := time.Now()
	pw := "long-enough-password"
	if _, err := (&admin.Local{Store: store}).AddUser(ctx, userspec.User{Username: "cli-user", Password: pw}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.SyncUsers(ctx, store, []userspec.User{{Username: "kept", Password: pw}, {Username: "leaver", Password: pw}}, now); err != nil {
		t.Fatal(err)
	}
	leaver, err := store.GetUserByUsername(ctx, "leaver")
	if err != nil || leaver.Source != "config" {
		t.Fatalf("declared user %+v, %v: want source config", leaver, err)
	}
	removed, err := admin.SyncUsers(ctx, store, []userspec.User{{Username: "kept", Password: pw}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0].ID != leaver.ID {
		t.Errorf("removed %+v, want leaver", removed)
	}
	if _, err := store.GetUserByUsername(ctx, "leaver"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("leaver after the sync: %v, want not found", err)
	}
	for _, name := range []string{"kept", "cli-user"} {
		if _, err := store.GetUserByUsername(ctx, name); err != nil {
			t.Errorf("%s after the sync: %v", name, err)
		}
	}
}

// openStore opens a bbolt store in dir, closed when the test ends.
func openStore(t *testing.T, dir string) *bolt.Store {
	t.Helper()
	store, err := bolt.Open(filepath.Join(dir, "p.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// A running server hears of every client added or deleted, so its caches
// of clients (CORS origins, rate-limit buckets) do not wait for a TTL.
func TestClientsChangedHook(t *testing.T) {
	t.Parallel()
	store := openStore(t, t.TempDir())
	ctx := context.Background()
	calls := 0
	a := &admin.Local{Store: store, ClientsChanged: func() { calls++ }}
	if _, _, err := a.AddClient(ctx, clientspec.Spec{ID: "hooked", ClientSettings: storage.ClientSettings{RedirectURIs: []string{"http://127.0.0.1:9/cb"}}}); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteClient(ctx, "hooked"); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteClient(ctx, "hooked"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if calls != 2 {
		t.Errorf("ClientsChanged called %d times, want 2 (add and delete; not for a failed delete)", calls)
	}
}
