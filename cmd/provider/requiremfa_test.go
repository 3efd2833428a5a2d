package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider/providertest"
	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/bolt"
)

// require_mfa from the config file and --require-mfa from the command
// line (into the database, and through a running server's admin socket):
// stored, shown by clients list --json, and the client's people are sent
// on from the password to a second factor (here: to enrol one), never
// straight back with a code; a client without it signs them in.
func TestClientsRequireMFA(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), `clients:
  - id: app
    secret: `+appSecret+`
    redirect_uris: [`+appCallback+`]
    skip_consent: true
  - id: strict
    secret: `+appSecret+`
    redirect_uris: [`+appCallback+`]
    skip_consent: true
    require_mfa: true
users:
  - username: alice
    password: `+alicePassword+`
`)
	runCLI(t, appSecret+"\n", "clients", "add", "--config", c.path, "--id", "cli-strict", "--secret-stdin",
		"--redirect-uri", appCallback, "--require-mfa").ok(t)
	withStore(t, c, func(s *bolt.Store) {
		cl, err := s.GetClient(t.Context(), "cli-strict")
		if err != nil || !cl.RequireMFA {
			t.Errorf("cli-strict: stored require_mfa %v (%v), want true", cl.RequireMFA, err)
		}
	})
	startServer(t, c)
	runCLI(t, appSecret+"\n", "clients", "add", "--config", c.path, "--id", "socket-strict", "--secret-stdin",
		"--redirect-uri", appCallback, "--require-mfa", "--skip-consent").ok(t)

	var clients []storage.Client
	out := runCLI(t, "", "clients", "list", "--config", c.path, "--json").ok(t)
	if err := json.Unmarshal([]byte(out), &clients); err != nil {
		t.Fatalf("clients list --json: %v\n%s", err, out)
	}
	want := map[string]bool{"app": false, "strict": true, "cli-strict": true, "socket-strict": true}
	for _, cl := range clients {
		if cl.RequireMFA != want[cl.ID] {
			t.Errorf("clients list --json: %s require_mfa %v, want %v", cl.ID, cl.RequireMFA, want[cl.ID])
		}
	}
	if !strings.Contains(out, `"require_mfa": true`) {
		t.Errorf("clients list --json does not show require_mfa:\n%s", out)
	}

	for id, strict := range map[string]bool{"app": false, "strict": true, "socket-strict": true} {
		rp := newRelyingParty(t, c.issuer, id, appSecret, appCallback, "openid")
		page, err := providertest.NewBrowser(c.issuer).SignInPage(rp.ctx,
			rp.oauth.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), "alice", alicePassword, "allow")
		if err != nil {
			t.Fatalf("%s: sign in: %v", id, err)
		}
		gotCode := page.Location != nil && page.Location.Query().Get("code") != ""
		if strict && (gotCode || page.Status == http.StatusOK && strings.Contains(page.Body, `name="password"`)) {
			t.Errorf("%s (require_mfa): HTTP %d %v, want the enrolment of a second factor", id, page.Status, page.Location)
		}
		if !strict && !gotCode {
			t.Errorf("%s: HTTP %d %v, want a code", id, page.Status, page.Location)
		}
	}
}

// mfa.required_for_groups is checked with its key path and line.
func TestConfigCheckMFAGroups(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := dir + "/config.yaml"
	writeFile(t, path, "issuer: http://127.0.0.1:8080\nstorage:\n  bolt: "+dir+"/provider.db\nkeys:\n  dir: "+dir+"/keys\n"+
		"mfa:\n  required_for_groups: [admins, \"\", admins]\n  required_for_group: [x]\n")
	msg := runCLI(t, "", "config", "check", "--config", path).failsConfig(t, path)
	for _, w := range []string{
		`:7: mfa.required_for_groups[1]: must be a group name, not empty`,
		`:7: mfa.required_for_groups[2]: "admins" is already listed at mfa.required_for_groups[0]`,
		`:8: mfa: unknown key "required_for_group" (did you mean required_for_groups?)`,
	} {
		if !strings.Contains(msg, path+w) {
			t.Errorf("config check:\n%s\ndoes not contain %q", msg, path+w)
		}
	}
	writeFile(t, path, "issuer: http://127.0.0.1:8080\nstorage:\n  bolt: "+dir+"/provider.db\nkeys:\n  dir: "+dir+"/keys\n"+
		"mfa:\n  required_for_groups: [admins, ops]\n")
	runCLI(t, "", "config", "check", "--config", path).ok(t)
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.providerConfig().MFA.RequiredForGroups; len(got) != 2 || got[0] != "admins" || got[1] != "ops" {
		t.Errorf("provider config: required_for_groups %v", got)
	}
}
