package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/bolt"
)

func init() {
	// A bundle's scrypt at age's default costs about a second per run,
	// and far more under the race detector; these tests need no more than
	// the format.
	bundleWorkFactor = 10
}

const bundlePassphrase = "correct horse battery staple"

var backupLine = regexp.MustCompile(`^wrote (\d+) bytes \((database|database and keys, encrypted)\) to (\S+)\n$`)

// backupOK runs `provider backup` and checks its one line and the file.
func backupOK(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out := runCLI(t, stdin, append([]string{"backup"}, args...)...).ok(t)
	m := backupLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("backup printed %q", out)
	}
	st, err := os.Stat(m[3])
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(st.Size()) != m[1] {
		t.Errorf("backup said %s bytes, the file has %d", m[1], st.Size())
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("backup file mode %v, want 0600", st.Mode().Perm())
	}
	return m[3]
}

// chainPair is one token response of a refresh chain.
type chainPair struct {
	access, refresh string
	// beforeBackup: the response had arrived before the backup started.
	beforeBackup bool
}

// TestBackupUnderLoad takes a backup through the admin socket while
// refreshes run, restores it into the stopped server's place and checks
// that every token that was current before the backup started is there:
// tokens nobody touched are active and refresh, and each refresh chain
// holds exactly one live pair, the last one received before the backup or
// a later one. restore and compact refuse a running server.
func TestBackupUnderLoad(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	c := writeConfig(t, port, appConfig)
	srv := startServer(t, c)
	scopes := []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess}
	rp := newRelyingParty(t, c.issuer, "app", appSecret, appCallback, scopes...)

	// Tokens nobody touches during the load.
	var idle []*oauth2.Token
	for range 2 {
		idle = append(idle, rp.signIn(t, "alice", "alice-password-for-tests"))
	}

	const workers = 3
	chains := make([][]chainPair, workers)
	var (
		started atomic.Bool // the backup has started
		wg      sync.WaitGroup
		warm    sync.WaitGroup
		stop    = make(chan struct{})
		errs    = make(chan error, workers)
	)
	for w := range workers {
		tok := rp.signIn(t, "alice", "alice-password-for-tests")
		chains[w] = []chainPair{{tok.AccessToken, tok.RefreshToken, true}}
		wg.Add(1)
		warm.Add(1)
		go func() {
			defer wg.Done()
			warmed := false
			defer func() {
				if !warmed {
					warm.Done()
				}
			}()
			// Bounded: it stops when told, or after 400 refreshes.
			for i := range 400 {
				select {
				case <-stop:
					return
				default:
				}
				last := chains[w][len(chains[w])-1]
				next, err := rp.oauth.TokenSource(rp.ctx, &oauth2.Token{RefreshToken: last.refresh}).Token()
				if err != nil {
					errs <- fmt.Errorf("worker %d, refresh %d: %w", w, i, err)
					return
				}
				chains[w] = append(chains[w], chainPair{next.AccessToken, next.RefreshToken, !started.Load()})
				if i == 5 {
					warmed = true
					warm.Done()
				}
			}
		}()
	}
	warm.Wait()

	out := filepath.Join(t.TempDir(), "provider-backup.db")
	started.Store(true)
	backupOK(t, "", "--config", c.path, "--out", out)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	t.Run("refused while the server runs", func(t *testing.T) {
		before, err := os.Stat(c.bolt)
		if err != nil {
			t.Fatal(err)
		}
		msg := runCLI(t, "", "restore", "--config", c.path, "--from", out).fails(t, 1)
		if !strings.HasPrefix(msg, "provider: restore: a server is running on this database ("+c.bolt+"); stop it first") {
			t.Errorf("restore while serving: %q", msg)
		}
		msg = runCLI(t, "", "compact", "--config", c.path).fails(t, 1)
		if want := "provider: compact: a server is running on " + c.bolt + "; compact works offline: stop it first"; msg != want {
			t.Errorf("compact while serving: %q, want %q", msg, want)
		}
		// An existing --out is kept.
		msg = runCLI(t, "", "backup", "--config", c.path, "--out", out).fails(t, 1)
		if !strings.Contains(msg, out+" already exists (--force replaces it)") {
			t.Errorf("backup over an existing file: %q", msg)
		}
		// The server's file is still the one it runs on, and nothing was
		// kept aside as if replaced.
		if after, err := os.Stat(c.bolt); err != nil || !os.SameFile(before, after) {
			t.Errorf("the database file was replaced during refused commands (%v)", err)
		}
		if kept, _ := filepath.Glob(c.bolt + ".before-restore-*"); len(kept) > 0 {
			t.Errorf("a refused restore kept %v", kept)
		}
	})

	srv.stop(t)
	restored := runCLI(t, "", "restore", "--config", c.path, "--from", out).ok(t)
	if !strings.HasPrefix(restored, "restored "+c.bolt+" from "+out+" (") || !strings.Contains(restored, "previous database kept as "+c.bolt+".before-restore-") {
		t.Errorf("restore printed %q", restored)
	}
	startServer(t, c)
	rp = newRelyingParty(t, c.issuer, "app", appSecret, appCallback, scopes...)

	for i, tok := range idle {
		if in := introspect(t, c.issuer, "app", appSecret, tok.AccessToken); !in.Active {
			t.Errorf("idle token %d: access token inactive after restore", i)
		}
		rp.refresh(t, tok.RefreshToken)
	}
	for w, chain := range chains {
		last := -1
		for i, p := range chain {
			if p.beforeBackup {
				last = i
			}
		}
		live := -1
		for i := max(last-1, 0); i < len(chain); i++ {
			if introspect(t, c.issuer, "app", appSecret, chain[i].refresh).Active {
				if live >= 0 {
					t.Errorf("chain %d: refresh tokens %d and %d both active", w, live, i)
				}
				live = i
			}
		}
		t.Logf("chain %d: %d pairs, last before the backup %d, live %d", w, len(chain), last, live)
		if live < last {
			t.Errorf("chain %d: the live refresh token is %d, want the last one before the backup (%d) or a later one", w, live, last)
			continue
		}
		if in := introspect(t, c.issuer, "app", appSecret, chain[live].access); !in.Active {
			t.Errorf("chain %d: the live pair's access token is inactive", w)
		}
		rp.refresh(t, chain[live].refresh)
	}
}

// TestRestoreRefusesBadBackups checks that a truncated, damaged, empty or
// foreign file is refused with one line and the database left as it was.
func TestRestoreRefusesBadBackups(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), appConfig)
	// No server: backup opens the file itself (after a first start has
	// made it).
	withStore(t, c, func(s *bolt.Store) {
		if err := s.CreateUser(t.Context(), storage.User{ID: "u1", Username: "bob", PasswordHash: "x"}); err != nil {
			t.Fatal(err)
		}
	})
	runCLI(t, "", "keys", "list", "--config", c.path).ok(t) // makes the keys a bundle needs
	dir := t.TempDir()
	good := backupOK(t, "", "--config", c.path, "--out", filepath.Join(dir, "good.db"))
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	bundle := backupOK(t, bundlePassphrase+"\n", "--config", c.path, "--out", filepath.Join(dir, "good.bundle"), "--with-keys")
	rawBundle, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	current, err := os.ReadFile(c.bolt)
	if err != nil {
		t.Fatal(err)
	}
	garbage := bytes.Repeat([]byte("not a database "), 5000)
	flipped := bytes.Clone(raw)
	flipped[len(flipped)-100] ^= 0xff // a data page, past both meta pages
	flippedBundle := bytes.Clone(rawBundle)
	flippedBundle[len(flippedBundle)-20] ^= 0xff

	for _, tc := range []struct {
		name, stdin string
		data        []byte
		want        string
	}{
		{"empty", "", nil, "the file is empty"},
		{"garbage", "", garbage, "not a database file"},
		{"short", "", raw[:5000], "not a database file"},
		{"truncated", "", raw[:len(raw)/2], "truncated"},
		{"bundle truncated", bundlePassphrase, rawBundle[:len(rawBundle)-300], "the bundle is damaged or truncated"},
		{"bundle altered", bundlePassphrase, flippedBundle, "the bundle is damaged or truncated"},
		{"bundle wrong passphrase", "not the passphrase", rawBundle, "wrong passphrase for "},
		{"bundle no passphrase", "", rawBundle, "passphrase on stdin is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := filepath.Join(t.TempDir(), "backup")
			writeFile(t, from, string(tc.data))
			r := runCLI(t, tc.stdin+"\n", "restore", "--config", c.path, "--from", from)
			msg := r.fails(t, r.code)
			if r.code == 0 || !strings.HasPrefix(msg, "provider: restore: ") || !strings.Contains(msg, tc.want) {
				t.Errorf("restore of %s: exit %d, %q; want it refused with %q", tc.name, r.code, msg, tc.want)
			}
			if r.code == 1 && !strings.HasSuffix(msg, "nothing was changed") {
				t.Errorf("restore of %s: %q does not say nothing was changed", tc.name, msg)
			}
			if got, err := os.ReadFile(c.bolt); err != nil || !bytes.Equal(got, current) {
				t.Errorf("restore of %s changed the database (%v)", tc.name, err)
			}
		})
	}
	// A damaged data page: refused by the consistency check, or, when the
	// flipped byte is in unused space, restored as it is harmless.
	t.Run("damaged page", func(t *testing.T) {
		from := filepath.Join(t.TempDir(), "backup")
		writeFile(t, from, string(flipped))
		r := runCLI(t, "", "restore", "--config", c.path, "--from", from)
		if r.code != 0 {
			if msg := r.fails(t, 1); !strings.Contains(msg, "nothing was changed") {
				t.Errorf("restore of a damaged page: %q", msg)
			}
		}
	})

	entries, err := os.ReadDir(filepath.Dir(c.bolt))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), "restore") && !strings.Contains(e.Name(), "before-restore") {
			t.Errorf("a refused restore left %s behind", e.Name())
		}
	}
}

// TestBundleRoundTrip restores a --with-keys bundle taken from a running
// server into an empty directory: the tokens issued before it are valid
// there, signed by the same keys; restoring it over other keys needs
// --force.
func TestBundleRoundTrip(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	c := writeConfig(t, port, appConfig)
	srv := startServer(t, c)
	scopes := []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess}
	rp := newRelyingParty(t, c.issuer, "app", appSecret, appCallback, scopes...)
	tok := rp.signIn(t, "alice", "alice-password-for-tests")
	rawID := idToken(t, tok)

	msg := runCLI(t, "short\n", "backup", "--config", c.path, "--out", filepath.Join(t.TempDir(), "b"), "--with-keys").fails(t, 1)
	if !strings.Contains(msg, "the passphrase must be at least 12 characters") {
		t.Errorf("backup with a short passphrase: %q", msg)
	}
	bundle := backupOK(t, bundlePassphrase+"\n", "--config", c.path, "--out", filepath.Join(t.TempDir(), "provider.bundle"), "--with-keys")
	if raw, err := os.ReadFile(bundle); err != nil || !bytes.HasPrefix(raw, []byte("age-encryption.org/v1\n")) || bytes.Contains(raw, []byte("provider.secret")) {
		t.Errorf("the bundle is not an age file with nothing in clear (%v)", err)
	}
	srv.stop(t)

	// A fresh machine: the same issuer, nothing in its directory.
	fresh := writeConfig(t, port, appConfig)
	msg = runCLI(t, "wrong passphrase!\n", "restore", "--config", fresh.path, "--from", bundle).fails(t, 1)
	if want := "provider: restore: wrong passphrase for " + bundle + "; nothing was changed"; msg != want {
		t.Errorf("wrong passphrase: %q, want %q", msg, want)
	}
	if entries, _ := os.ReadDir(fresh.dir); len(entries) != 1 {
		t.Errorf("a refused restore left files in the new directory: %v", entries)
	}
	out := runCLI(t, bundlePassphrase+"\n", "restore", "--config", fresh.path, "--from", bundle).ok(t)
	if !strings.Contains(out, "keys: restored to "+fresh.keys+"\n") || strings.Contains(out, "previous database") {
		t.Errorf("restore into an empty directory printed %q", out)
	}
	if st, err := os.Stat(fresh.keys); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("restored key directory: %v, %v; want mode 0700", st, err)
	}

	startServer(t, fresh)
	if in := introspect(t, fresh.issuer, "app", appSecret, tok.AccessToken); !in.Active {
		t.Errorf("access token inactive after restoring the bundle: %+v", in)
	}
	verify(t, fresh.issuer, "app", rawID)
	rp = newRelyingParty(t, fresh.issuer, "app", appSecret, appCallback, scopes...)
	rp.refresh(t, tok.RefreshToken)

	t.Run("over other keys", func(t *testing.T) {
		other := writeConfig(t, freePort(t), appConfig)
		runCLI(t, "", "keys", "list", "--config", other.path).ok(t) // creates other keys
		msg := runCLI(t, bundlePassphrase+"\n", "restore", "--config", other.path, "--from", bundle).fails(t, 1)
		if !strings.Contains(msg, "key directory "+other.keys+" holds other keys than the bundle; --force keeps them") || !strings.HasSuffix(msg, "nothing was changed") {
			t.Errorf("restore over other keys: %q", msg)
		}
		if _, err := os.Stat(other.bolt); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused restore made a database: %v", err)
		}
		out := runCLI(t, bundlePassphrase+"\n", "restore", "--config", other.path, "--from", bundle, "--force").ok(t)
		if !strings.Contains(out, "previous keys kept as "+other.keys+".before-restore-") {
			t.Errorf("restore --force over other keys printed %q", out)
		}
		out = runCLI(t, bundlePassphrase+"\n", "restore", "--config", other.path, "--from", bundle).ok(t)
		if !strings.Contains(out, "keys: "+other.keys+" already holds the bundle's keys") {
			t.Errorf("restore again printed %q", out)
		}
	})
}

// TestCompact fills a database, deletes most of it, and checks that
// compact shrinks the file and keeps every record and token.
func TestCompact(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), appConfig)
	srv := startServer(t, c)
	scopes := []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}
	rp := newRelyingParty(t, c.issuer, "app", appSecret, appCallback, scopes...)
	tok := rp.signIn(t, "alice", "alice-password-for-tests")
	srv.stop(t)

	ctx := context.Background()
	pad := strings.Repeat("x", 2000)
	withStore(t, c, func(s *bolt.Store) {
		for _, del := range []bool{false, true} {
			txCtx, err := s.BeginTx(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2000 {
				id := fmt.Sprintf("user-%04d", i)
				switch {
				case !del:
					err = s.CreateUser(txCtx, storage.User{ID: id, Username: id, PasswordHash: "x", Profile: storage.Profile{Name: pad}})
				case i%50 != 0:
					err = s.DeleteUser(txCtx, id)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := s.CommitTx(txCtx); err != nil {
				t.Fatal(err)
			}
		}
	})
	before := runCLI(t, "", "users", "list", "--config", c.path, "--json").ok(t)
	out := runCLI(t, "", "compact", "--config", c.path).ok(t)
	m := regexp.MustCompile(`^compacted (\S+): (\d+) bytes before, (\d+) after\n$`).FindStringSubmatch(out)
	if m == nil || m[1] != c.bolt {
		t.Fatalf("compact printed %q", out)
	}
	var b, a int64
	fmt.Sscan(m[2], &b)
	fmt.Sscan(m[3], &a)
	if st, err := os.Stat(c.bolt); err != nil || st.Size() != a || st.Mode().Perm() != 0o600 {
		t.Errorf("compacted file: %v, %v; want %d bytes, mode 0600", st, err, a)
	}
	if a*2 > b {
		t.Errorf("compact: %d bytes before, %d after; want it at least halved", b, a)
	}
	if after := runCLI(t, "", "users", "list", "--config", c.path, "--json").ok(t); after != before {
		t.Errorf("users after compact differ:\n%s\nbefore:\n%s", after, before)
	}

	startServer(t, c)
	if in := introspect(t, c.issuer, "app", appSecret, tok.AccessToken); !in.Active {
		t.Errorf("access token inactive after compact")
	}
	rp = newRelyingParty(t, c.issuer, "app", appSecret, appCallback, scopes...)
	rp.refresh(t, tok.RefreshToken)
	rp.signIn(t, "alice", "alice-password-for-tests")
}

// TestBackupOffline backs up without a server, refusing a missing
// database, and --force replaces an existing file.
func TestBackupOffline(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), "")
	out := filepath.Join(t.TempDir(), "b.db")
	msg := runCLI(t, "", "backup", "--config", c.path, "--out", out).fails(t, 1)
	if !strings.Contains(msg, c.bolt) || !strings.Contains(msg, "no such file") {
		t.Errorf("backup of a missing database: %q", msg)
	}
	if _, err := os.Stat(c.bolt); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("backup made a database: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 0 {
		t.Errorf("a failed backup left files: %v", entries)
	}
	msg = runCLI(t, "", "backup", "--config", c.path).fails(t, 2)
	if msg != "provider: backup: --out is required" {
		t.Errorf("backup without --out: %q", msg)
	}
	withStore(t, c, func(*bolt.Store) {})
	backupOK(t, "", "--config", c.path, "--out", out)
	backupOK(t, "", "--config", c.path, "--out", out, "--force")
}
