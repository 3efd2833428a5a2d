package main

import (
	"encoding/json"
	"testing"

	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider/providertest"
	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/bolt"
)

// skip_consent from the config file and --skip-consent from the command
// line (into the database, and through a running server's admin socket):
// the client's people get their code without a consent page, which
// clients list --json shows; a client without it still asks.
func TestClientsSkipConsent(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), `clients:
  - id: app
    secret: `+appSecret+`
    redirect_uris: [`+appCallback+`]
  - id: first
    secret: `+appSecret+`
    redirect_uris: [`+appCallback+`]
    scopes: [openid, profile]
    skip_consent: true
users:
  - username: alice
    password: `+alicePassword+`
`)
	// Before the server runs: straight into the database.
	runCLI(t, appSecret+"\n", "clients", "add", "--config", c.path, "--id", "cli-first", "--secret-stdin",
		"--redirect-uri", appCallback, "--skip-consent").ok(t)
	runCLI(t, appSecret+"\n", "clients", "add", "--config", c.path, "--id", "cli-asks", "--secret-stdin",
		"--redirect-uri", appCallback).ok(t)
	withStore(t, c, func(s *bolt.Store) {
		for id, want := range map[string]bool{"cli-first": true, "cli-asks": false} {
			cl, err := s.GetClient(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if cl.SkipConsent != want {
				t.Errorf("%s: stored skip_consent %v, want %v", id, cl.SkipConsent, want)
			}
		}
	})
	startServer(t, c)
	// While it runs: through the admin socket.
	runCLI(t, appSecret+"\n", "clients", "add", "--config", c.path, "--id", "socket-first", "--secret-stdin",
		"--redirect-uri", appCallback, "--skip-consent").ok(t)

	var clients []storage.Client
	out := runCLI(t, "", "clients", "list", "--config", c.path, "--json").ok(t)
	if err := json.Unmarshal([]byte(out), &clients); err != nil {
		t.Fatalf("clients list --json: %v\n%s", err, out)
	}
	want := map[string]bool{"app": false, "first": true, "cli-first": true, "cli-asks": false, "socket-first": true}
	for _, cl := range clients {
		if cl.SkipConsent != want[cl.ID] {
			t.Errorf("clients list --json: %s skip_consent %v, want %v", cl.ID, cl.SkipConsent, want[cl.ID])
		}
	}
	if len(clients) != len(want) {
		t.Errorf("clients list --json: %d clients, want %d", len(clients), len(want))
	}

	// Answering "deny" on a consent page would end in access_denied: a
	// code means no page was shown.
	for id, skips := range map[string]bool{"first": true, "socket-first": true, "app": false} {
		rp := newRelyingParty(t, c.issuer, id, appSecret, appCallback, "openid")
		loc, err := providertest.NewBrowser(c.issuer).SignIn(rp.ctx,
			rp.oauth.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), "alice", alicePassword, "deny")
		if err != nil {
			t.Fatalf("%s: sign in: %v", id, err)
		}
		q := loc.Query()
		if skips && q.Get("code") == "" {
			t.Errorf("%s (skip_consent): redirect %s, want a code without a consent page", id, loc)
		}
		if !skips && q.Get("error") != "access_denied" {
			t.Errorf("%s: redirect %s, want access_denied from the consent page", id, loc)
		}
	}
}
