package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/smallsso/provider/storage/bolt"
	"github.com/smallsso/provider/storage/postgres/pgtest"
)

// refreshFails asserts that the token endpoint refuses refreshToken with
// invalid_grant.
func (rp *relyingParty) refreshFails(t *testing.T, refreshToken, why string) {
	t.Helper()
	_, err := rp.oauth.TokenSource(rp.ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("%s: refresh gave %v, want invalid_grant", why, err)
	}
}

// An installation moved with migrate-storage keeps a live refresh chain:
// the token refreshed last before the move refreshes after it, ID tokens
// are signed with the same keys, and a token rotated before the move is
// still detected as reused (which revokes the family). The table is over
// the kinds of target; a PostgreSQL target is moved back to a bbolt file
// after, so both directions are crossed.
func TestMigrateStorageKeepsARefreshChain(t *testing.T) {
	t.Parallel()
	for _, target := range []struct {
		name   string
		needs  func(*testing.T)
		config func(t *testing.T, port int) *testConfig
	}{
		{"bolt", nil, func(t *testing.T, port int) *testConfig { return writeConfig(t, port, appConfig) }},
		{"postgres", nil, func(t *testing.T, port int) *testConfig {
			return writePGConfig(t, port, pgtest.Shared(t).NewDatabase(t), newEncryptionKey(), appConfig)
		}},
	} {
		t.Run(target.name, func(t *testing.T) {
			t.Parallel()
			if target.needs != nil {
				target.needs(t)
			}
			port := freePort(t)
			a := writeConfig(t, port, appConfig)
			hops := []*testConfig{target.config(t, port)}
			if target.name != "bolt" {
				hops = append(hops, writeConfig(t, port, appConfig)) // and back
			}

			s := startServer(t, a)
			rp := newRelyingParty(t, a.issuer, "app", appSecret, appCallback, "openid", "offline_access")
			tok := rp.signIn(t, "alice", "alice-password-for-tests")
			first := idToken(t, tok)
			sub, kid := verify(t, a.issuer, "app", first).Subject, kidOf(t, first)
			rotated := tok.RefreshToken
			live := rp.refresh(t, rotated).RefreshToken

			// A source in use is refused.
			line := runCLI(t, "", "migrate-storage", "--from-config", a.path, "--to-config", hops[0].path).fails(t, 1)
			if !strings.Contains(line, "OLD: database "+a.bolt+" is in use") {
				t.Errorf("migrate-storage from a running server's database: %q", line)
			}
			s.stop(t)
			// Alice's authenticator app, sealed with OLD's provider
			// secret, moves with her and still opens on NEW.
			enrolled := parseTOTPAdd(t, runCLI(t, "", "users", "totp", "add", "alice", "--config", a.path).ok(t), "alice", false, true)

			from := a
			for i, to := range hops {
				r := runCLI(t, "", "migrate-storage", "--from-config", from.path, "--to-config", to.path)
				out := r.ok(t)
				t.Logf("hop %d: migrate-storage said:\n%s", i, out)
				for _, want := range []string{"1 client, 1 user, 0 trusted issuers\n", " token records (code ", "1 browser session, 1 consent, 0 JTIs\n", "  second factors of 1 user\n", "  keys: "} {
					if !strings.Contains(out, want) {
						t.Errorf("hop %d: output lacks %q:\n%s", i, want, out)
					}
				}
				// The target now holds data: a second copy is refused.
				line := runCLI(t, "", "migrate-storage", "--from-config", from.path, "--to-config", to.path).fails(t, 1)
				if !strings.Contains(line, "NEW") || !strings.Contains(line, "migrate-storage copies into") {
					t.Errorf("hop %d: a second copy into the same target: %q", i, line)
				}

				checkEnrolled(t, to, "alice", enrolled)

				s := startServer(t, to)
				rp = newRelyingParty(t, to.issuer, "app", appSecret, appCallback, "openid", "offline_access")
				tok := rp.refresh(t, live)
				raw := idToken(t, tok)
				if got := verify(t, to.issuer, "app", raw).Subject; got != sub {
					t.Errorf("hop %d: subject %q after the move, want %q", i, got, sub)
				}
				if got := kidOf(t, raw); got != kid {
					t.Errorf("hop %d: ID token signed by %s, want %s (the keys were not copied)", i, got, kid)
				}
				live = tok.RefreshToken
				if i < len(hops)-1 {
					s.stop(t)
				}
				from = to
			}
			// Reuse of the token rotated before the first move is detected,
			// and revokes the family: the live token dies with it.
			rp.refreshFails(t, rotated, "a token rotated before the move")
			rp.refreshFails(t, live, "the live token after its family's reuse")
		})
	}
}

// migrate-storage refuses what it cannot do safely, in one line, before
// writing anything.
func TestMigrateStorageRefusals(t *testing.T) {
	t.Parallel()
	a := writeConfig(t, freePort(t), appConfig)
	b := writeConfig(t, freePort(t), appConfig)
	ms := func(from, to string) string {
		t.Helper()
		return runCLI(t, "", "migrate-storage", "--from-config", from, "--to-config", to).fails(t, 1)
	}
	if line := runCLI(t, "", "migrate-storage", "--from-config", a.path).fails(t, 2); !strings.Contains(line, "--from-config and --to-config are required") {
		t.Errorf("without --to-config: %q", line)
	}
	if line := ms(a.path, a.path); !strings.Contains(line, "OLD and NEW name the same database file") {
		t.Errorf("same config twice: %q", line)
	}
	if line := ms(a.path, b.path); !strings.Contains(line, "OLD: no database at "+a.bolt) {
		t.Errorf("from a database that does not exist: %q", line)
	}
	if _, err := os.Stat(b.bolt); err == nil {
		t.Errorf("a refused migrate-storage created %s", b.bolt)
	}
	// A target key directory with keys in it is refused, and the target
	// database is not created.
	withStore(t, a, func(*bolt.Store) {})                   // an empty source
	runCLI(t, "", "keys", "list", "--config", b.path).ok(t) // creates b's keys
	if line := ms(a.path, b.path); !strings.Contains(line, "NEW: the key directory "+b.keys+" already holds keys") {
		t.Errorf("into a key directory with keys: %q", line)
	}
	if _, err := os.Stat(b.bolt); err == nil {
		t.Errorf("a refused migrate-storage created %s", b.bolt)
	}
	// Keys of the target removed, but its database holds a user.
	if err := os.RemoveAll(b.keys); err != nil {
		t.Fatal(err)
	}
	runCLI(t, "pw-for-the-target\n", "users", "add", "--config", b.path, "--username", "zed", "--password-stdin").ok(t)
	if line := ms(a.path, b.path); !strings.Contains(line, "already holds data (1 user)") {
		t.Errorf("into a database with a user: %q", line)
	}
	// An empty source copies nothing, and says so.
	c := writeConfig(t, freePort(t), "")
	out := runCLI(t, "", "migrate-storage", "--from-config", a.path, "--to-config", c.path).ok(t)
	if !strings.Contains(out, "0 clients, 0 users") || !strings.Contains(out, "keys: none in "+a.keys) {
		t.Errorf("from an empty installation: %q", out)
	}
	if _, err := os.Stat(filepath.Join(c.keys, "keys.json")); err == nil {
		t.Errorf("keys appeared in the target from an empty source")
	}
}
