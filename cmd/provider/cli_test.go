package main

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/secret"

	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/bolt"
)

// line returns the first line of out whose first column is key.
func line(t *testing.T, out, key string) []string {
	t.Helper()
	for l := range strings.Lines(out) {
		if f := strings.Fields(l); len(f) > 0 && f[0] == key {
			return f
		}
	}
	t.Fatalf("no line for %q in:\n%s", key, out)
	return nil
}

func hasLine(out, key string) bool {
	for l := range strings.Lines(out) {
		if f := strings.Fields(l); len(f) > 0 && f[0] == key {
			return true
		}
	}
	return false
}

// shownOnce extracts the secret printed after prefix ("password: ") and
// checks it is printed exactly once.
func shownOnce(t *testing.T, out, prefix string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(prefix)+`(\S+)$`).FindAllStringSubmatch(out, -1)
	if len(m) != 1 {
		t.Fatalf("want one %q line, got %d in:\n%s", prefix, len(m), out)
	}
	secret := m[0][1]
	if n := strings.Count(out, secret); n != 1 {
		t.Fatalf("secret appears %d times in output, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "shown once") {
		t.Errorf("output does not warn that the secret is shown once:\n%s", out)
	}
	return secret
}

func checkPassword(t *testing.T, c *testConfig, username, password string, want bool) {
	t.Helper()
	withStore(t, c, func(s *bolt.Store) {
		u, err := s.GetUserByUsername(t.Context(), username)
		if err != nil {
			t.Fatalf("get user %s: %v", username, err)
		}
		if got := secret.Check(u.PasswordHash, password) == nil; got != want {
			t.Errorf("password %q for %s accepted = %v, want %v", password, username, got, want)
		}
	})
}

func TestUsersCommands(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, 18080, "")
	F := c.path

	out := runCLI(t, "first-password\n", "users", "add", "--config", F, "--username", "bob",
		"--email", "bob@example.org", "--name", "Bob B", "--groups", "a,b", "--password-stdin").ok(t)
	if !strings.HasPrefix(out, "added user bob (sub ") {
		t.Errorf("users add printed %q", out)
	}
	if strings.Contains(out, "password") || strings.Contains(out, "first-password") {
		t.Errorf("users add --password-stdin printed a password: %q", out)
	}
	sub := regexp.MustCompile(`\(sub (\S+)\)`).FindStringSubmatch(out)
	if sub == nil {
		t.Fatalf("no sub in %q", out)
	}
	checkPassword(t, c, "bob", "first-password", true)

	t.Run("list shows the user", func(t *testing.T) {
		out := runCLI(t, "", "users", "list", "--config", F).ok(t)
		if !strings.HasPrefix(out, "USERNAME") {
			t.Errorf("no header in:\n%s", out)
		}
		bob := strings.Join(line(t, out, "bob"), " ")
		for _, want := range []string{"bob@example.org", "Bob B", "a,b", sub[1]} {
			if !strings.Contains(bob, want) {
				t.Errorf("bob's line %q lacks %q", bob, want)
			}
		}
	})

	t.Run("list --json parses", func(t *testing.T) {
		out := runCLI(t, "", "users", "list", "--json", "--config", F).ok(t)
		var users []storage.User
		if err := json.Unmarshal([]byte(out), &users); err != nil {
			t.Fatalf("users list --json: %v\n%s", err, out)
		}
		if len(users) != 1 {
			t.Fatalf("got %d users, want 1: %s", len(users), out)
		}
		u := users[0]
		if u.Username != "bob" || u.Email != "bob@example.org" || u.Name != "Bob B" || !slices.Equal(u.Groups, []string{"a", "b"}) || u.ID != sub[1] {
			t.Errorf("users list --json: got %+v", u)
		}
		if strings.Contains(out, "argon2") || u.PasswordHash != "" {
			t.Errorf("users list --json shows the password hash: %s", out)
		}
	})

	t.Run("duplicate add fails", func(t *testing.T) {
		msg := runCLI(t, "other-password\n", "users", "add", "--config", F, "--username", "bob", "--password-stdin").fails(t, 1)
		if want := `provider: users add: user "bob" already exists`; msg != want {
			t.Errorf("got %q, want %q", msg, want)
		}
		checkPassword(t, c, "bob", "first-password", true)
	})

	t.Run("set-password", func(t *testing.T) {
		out := runCLI(t, "second-password\r\n", "users", "set-password", "bob", "--password-stdin", "--config", F).ok(t)
		if out != "password set for bob\n" {
			t.Errorf("set-password printed %q", out)
		}
		checkPassword(t, c, "bob", "second-password", true)
		checkPassword(t, c, "bob", "first-password", false)

		out = runCLI(t, "", "users", "set-password", "--config", F, "bob").ok(t)
		generated := shownOnce(t, out, "password: ")
		checkPassword(t, c, "bob", generated, true)
		checkPassword(t, c, "bob", "second-password", false)

		msg := runCLI(t, "long-enough-password\n", "users", "set-password", "nobody", "--config", F, "--password-stdin").fails(t, 1)
		if want := `provider: users set-password: user "nobody" does not exist`; msg != want {
			t.Errorf("got %q, want %q", msg, want)
		}
	})

	t.Run("delete with flags after the argument", func(t *testing.T) {
		if out := runCLI(t, "", "users", "delete", "bob", "--config", F).ok(t); out != "deleted user bob\n" {
			t.Errorf("delete printed %q", out)
		}
		if out := runCLI(t, "", "users", "list", "--config", F).ok(t); hasLine(out, "bob") {
			t.Errorf("bob still listed after delete:\n%s", out)
		}
		msg := runCLI(t, "", "users", "delete", "--config", F, "bob").fails(t, 1)
		if want := `provider: users delete: user "bob" does not exist`; msg != want {
			t.Errorf("got %q, want %q", msg, want)
		}
	})
}

func TestUsersAddGeneratesPassword(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, 18080, "")
	out := runCLI(t, "", "users", "add", "--config", c.path, "--username", "carol", "--email", "carol@example.org").ok(t)
	password := shownOnce(t, out, "password: ")
	if len(password) < 20 {
		t.Errorf("generated password %q is short", password)
	}
	checkPassword(t, c, "carol", password, true)
	checkPassword(t, c, "carol", password+"x", false)

	// Two users never get the same generated password.
	out = runCLI(t, "", "users", "add", "--username", "dan", "--config", c.path).ok(t)
	if other := shownOnce(t, out, "password: "); other == password {
		t.Errorf("two generated passwords are both %q", password)
	}
}

func TestClientsCommands(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, 18080, "")
	F := c.path

	out := runCLI(t, "", "clients", "add", "--config", F, "--id", "x", "--redirect-uri", "http://127.0.0.1:9/cb",
		"--grant-type", "authorization_code,refresh_token", "--scope", "openid,offline_access").ok(t)
	if !strings.HasPrefix(out, "added client x\n") {
		t.Errorf("clients add printed %q", out)
	}
	generated := shownOnce(t, out, "client secret: ")
	if len(generated) < 32 {
		t.Errorf("generated secret %q is short", generated)
	}

	out = runCLI(t, "", "clients", "add", "--config", F, "--id", "spa", "--public", "--auth-method", "none",
		"--redirect-uri", "http://127.0.0.1:9/spa").ok(t)
	if out != "added client spa\n" {
		t.Errorf("public clients add printed %q, want no secret", out)
	}

	out = runCLI(t, "given-client-secret\n", "clients", "add", "--config", F, "--id", "given", "--secret-stdin",
		"--redirect-uri", "http://127.0.0.1:9/given", "--auth-method", "client_secret_post").ok(t)
	if out != "added client given\n" {
		t.Errorf("clients add --secret-stdin printed %q, want no secret", out)
	}

	withStore(t, c, func(s *bolt.Store) {
		given, err := s.GetClient(t.Context(), "given")
		if err != nil {
			t.Fatal(err)
		}
		if secret.Check(given.SecretHash, "given-client-secret") != nil || given.TokenEndpointAuthMethod != "client_secret_post" {
			t.Errorf("stored client given: %+v, want the secret from stdin hashed", given)
		}
		x, err := s.GetClient(t.Context(), "x")
		if err != nil {
			t.Fatal(err)
		}
		if err := secret.Check(x.SecretHash, generated); err != nil {
			t.Errorf("printed secret does not match the stored hash: %v", err)
		}
		if !slices.Equal(x.GrantTypes, []string{"authorization_code", "refresh_token"}) ||
			!slices.Equal(x.Scopes, []string{"openid", "offline_access"}) ||
			!slices.Equal(x.RedirectURIs, []string{"http://127.0.0.1:9/cb"}) ||
			x.TokenEndpointAuthMethod != "client_secret_basic" || x.Public || x.Source != "cli" {
			t.Errorf("stored client x: %+v", x)
		}
		spa, err := s.GetClient(t.Context(), "spa")
		if err != nil {
			t.Fatal(err)
		}
		if !spa.Public || spa.SecretHash != "" || spa.TokenEndpointAuthMethod != "none" {
			t.Errorf("stored client spa: %+v", spa)
		}
	})

	t.Run("invalid grant type", func(t *testing.T) {
		msg := runCLI(t, "", "clients", "add", "--config", F, "--id", "bad", "--redirect-uri", "http://127.0.0.1:9/cb",
			"--grant-type", "urn:example:magic").fails(t, 1)
		if !strings.HasPrefix(msg, "provider: clients add: ") || !strings.Contains(msg, `grant type "urn:example:magic" is not supported`) {
			t.Errorf("got %q", msg)
		}
	})

	t.Run("auth method does not fit", func(t *testing.T) {
		for _, args := range [][]string{
			{"--public", "--auth-method", "client_secret_basic"},
			{"--auth-method", "none"},
		} {
			args = append([]string{"clients", "add", "--config", F, "--id", "bad", "--redirect-uri", "http://127.0.0.1:9/cb"}, args...)
			msg := runCLI(t, "", args...).fails(t, 1)
			if !strings.HasPrefix(msg, "provider: clients add: ") || !strings.Contains(msg, "public client") {
				t.Errorf("got %q", msg)
			}
		}
	})

	t.Run("duplicate", func(t *testing.T) {
		msg := runCLI(t, "", "clients", "add", "--config", F, "--id", "x", "--redirect-uri", "http://127.0.0.1:9/cb").fails(t, 1)
		if want := `provider: clients add: client "x" already exists`; msg != want {
			t.Errorf("got %q, want %q", msg, want)
		}
	})

	t.Run("list", func(t *testing.T) {
		out := runCLI(t, "", "clients", "list", "--config", F).ok(t)
		if !strings.HasPrefix(out, "ID") {
			t.Errorf("no header in:\n%s", out)
		}
		if x := strings.Join(line(t, out, "x"), " "); !strings.Contains(x, "client_secret_basic") ||
			!strings.Contains(x, "authorization_code,refresh_token") || !strings.Contains(x, "http://127.0.0.1:9/cb") || !strings.Contains(x, "cli") {
			t.Errorf("x's line: %q", x)
		}
		if spa := strings.Join(line(t, out, "spa"), " "); !strings.Contains(spa, "none") {
			t.Errorf("spa's line: %q", spa)
		}
		if hasLine(out, "bad") {
			t.Errorf("a refused client was stored:\n%s", out)
		}

		out = runCLI(t, "", "clients", "list", "--config", F, "--json").ok(t)
		var clients []storage.Client
		if err := json.Unmarshal([]byte(out), &clients); err != nil {
			t.Fatalf("clients list --json: %v\n%s", err, out)
		}
		ids := []string{}
		for _, cl := range clients {
			ids = append(ids, cl.ID)
			if cl.SecretHash != "" {
				t.Errorf("clients list --json shows the secret hash of %s", cl.ID)
			}
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"given", "spa", "x"}) {
			t.Errorf("clients list --json: ids %v", ids)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if out := runCLI(t, "", "clients", "delete", "x", "--config", F).ok(t); out != "deleted client x\n" {
			t.Errorf("delete printed %q", out)
		}
		if out := runCLI(t, "", "clients", "list", "--config", F).ok(t); hasLine(out, "x") || !hasLine(out, "spa") {
			t.Errorf("after deleting x:\n%s", out)
		}
		msg := runCLI(t, "", "clients", "delete", "--config", F, "x").fails(t, 1)
		if want := `provider: clients delete: client "x" does not exist`; msg != want {
			t.Errorf("got %q, want %q", msg, want)
		}
	})
}

func TestKeysCommands(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, 18080, "")

	// One active key per signing algorithm.
	out := runCLI(t, "", "keys", "list", "--config", c.path).ok(t)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1+len(clientspec.SigningAlgorithms) || !strings.HasPrefix(lines[0], "KID") {
		t.Fatalf("keys list on a fresh directory: want a header and one key per algorithm:\n%s", out)
	}
	active := map[string]string{} // alg -> kid
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 5 || f[2] != "active" || f[4] != "-" {
			t.Fatalf("fresh key: %q", l)
		}
		active[f[1]] = f[0]
	}
	for _, alg := range clientspec.SigningAlgorithms {
		if active[alg] == "" {
			t.Fatalf("no %s key in:\n%s", alg, out)
		}
	}

	out = runCLI(t, "", "keys", "rotate", "--config", c.path).ok(t)
	rotated := regexp.MustCompile(`(?m)^new active (\S+) key (\S+)$`).FindAllStringSubmatch(out, -1)
	if len(rotated) != len(clientspec.SigningAlgorithms) {
		t.Fatalf("keys rotate printed %q, want one new key per algorithm", out)
	}
	out = runCLI(t, "", "keys", "list", "--config", c.path).ok(t)
	if n := len(strings.Split(strings.TrimSpace(out), "\n")); n != 1+2*len(clientspec.SigningAlgorithms) {
		t.Fatalf("keys list after rotate: want a header, the new and the old keys:\n%s", out)
	}
	for _, m := range rotated {
		alg, newKID := m[1], m[2]
		if newKID == active[alg] {
			t.Fatalf("rotate kept the %s kid %s", alg, newKID)
		}
		if k := line(t, out, newKID); k[1] != alg || k[2] != "active" || k[4] != "-" {
			t.Errorf("new key: %v", k)
		}
		if k := line(t, out, active[alg]); k[2] != "retired" || k[4] == "-" {
			t.Errorf("old key: %v, want retired with a publish-until date", k)
		}
		active[alg] = newKID
	}

	// One algorithm alone.
	out = runCLI(t, "", "keys", "rotate", "--config", c.path, "--alg", "EdDSA").ok(t)
	m := regexp.MustCompile(`^new active EdDSA key (\S+)\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("keys rotate --alg EdDSA printed %q", out)
	}
	out = runCLI(t, "", "keys", "list", "--config", c.path).ok(t)
	if k := line(t, out, active["EdDSA"]); k[2] != "retired" {
		t.Errorf("previous EdDSA key: %v, want retired", k)
	}
	for _, alg := range []string{"RS256", "PS256", "ES256"} {
		if k := line(t, out, active[alg]); k[2] != "active" {
			t.Errorf("%s key after an EdDSA rotation: %v, want still active", alg, k)
		}
	}
	msg := runCLI(t, "", "keys", "rotate", "--config", c.path, "--alg", "HS256").fails(t, 1)
	if !strings.Contains(msg, `"HS256"`) || !strings.Contains(msg, "RS256, PS256, ES256, EdDSA") {
		t.Errorf("keys rotate --alg HS256: %q", msg)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, 18080, "")
	F := c.path
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  []string // substrings of the one stderr line
	}{
		{"no command", "", nil, []string{"provider: missing command"}},
		{"unknown command", "", []string{"frobnicate"}, []string{"provider: ", "frobnicate"}},
		{"noun without verb", "", []string{"users"}, []string{"provider: users: missing command (add, list, delete, set-password, hash, totp, mfa)"}},
		{"unknown verb", "", []string{"users", "frob"}, []string{"provider: users: ", `"frob"`}},
		{"unknown verb with flags", "", []string{"users", "frob", "bob", "--config", F}, []string{"provider: users: ", `"frob"`}},
		{"unknown command with flags", "", []string{"user", "list", "--config", F}, []string{"provider: ", `"user"`}},
		{"noun with flags but no verb", "", []string{"clients", "--config", F}, []string{"provider: clients: missing command (add, list, delete)"}},
		{"keys without verb", "", []string{"keys"}, []string{"provider: keys: missing command"}},
		{"missing --username", "", []string{"users", "add", "--config", F, "--email", "x@example.org"}, []string{"provider: users add: --username is required"}},
		{"unknown flag", "", []string{"users", "list", "--config", F, "--bogus"}, []string{"provider: users list: ", "unknown flag: --bogus"}},
		{"flag without value", "", []string{"users", "list", "--config"}, []string{"provider: users list: ", "--config"}},
		{"missing --id", "", []string{"clients", "add", "--config", F}, []string{"provider: clients add: --id is required"}},
		{"delete without name", "", []string{"users", "delete", "--config", F}, []string{"provider: users delete: expects one USERNAME"}},
		{"delete with two names", "", []string{"users", "delete", "a", "b", "--config", F}, []string{"provider: users delete: expects one USERNAME"}},
		{"extra argument", "", []string{"users", "list", "--config", F, "extra"}, []string{"provider: users list: ", "extra"}},
		{"empty password on stdin", "\n", []string{"users", "add", "--config", F, "--username", "x", "--password-stdin"}, []string{"provider: users add: password on stdin is empty"}},
		{"public client with secret", "s\n", []string{"clients", "add", "--config", F, "--id", "y", "--public", "--secret-stdin"}, []string{"provider: clients add: ", "--secret-stdin and --public"}},
		{"missing --config", "", []string{"users", "list"}, []string{"provider: users list: --config is required"}},
		{"missing --config for serve", "", []string{"serve"}, []string{"provider: serve: --config is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := runCLI(t, tt.stdin, tt.args...).fails(t, 2)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("stderr %q does not contain %q", msg, w)
				}
			}
		})
	}
	// None of the refused commands touched the database.
	if out := runCLI(t, "", "users", "list", "--config", F).ok(t); strings.Count(out, "\n") != 1 {
		t.Errorf("users after refused commands:\n%s", out)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := "storage:\n  bolt: " + dir + "/provider.db\nkeys:\n  dir: " + dir + "/keys\n"
	tests := []struct {
		name   string
		config string
		want   []string
	}{
		{"bad issuer and client", base + "issuer: ftp://x\nclients:\n  - id: app\n    secret: s\n",
			[]string{"issuer", "ftp://x", "clients[0]", "redirect_uris"}},
		{"missing issuer", base, []string{"issuer: is required"}},
		{"http issuer not on loopback", base + "issuer: http://sso.example.org\n", []string{"issuer", "https"}},
		{"unknown key", base + "issuer: http://127.0.0.1:8080\nisuser: x\n", []string{"isuser"}},
		{"unknown nested key", base + "issuer: http://127.0.0.1:8080\ntokens:\n  access_lifespan: 1h\n", []string{"access_lifespan"}},
		{"bad duration", base + "issuer: http://127.0.0.1:8080\ntokens:\n  access_token_lifespan: soon\n", []string{"soon", "duration"}},
		{"bad listen and log level", base + "issuer: http://127.0.0.1:8080\nlisten: nowhere\nlog:\n  level: loud\n", []string{"listen", "nowhere", "log.level", "loud"}},
		{"user without password", base + "issuer: http://127.0.0.1:8080\nusers:\n  - username: a\n", []string{"users[0]", "password"}},
		{"duplicate client", base + "issuer: http://127.0.0.1:8080\nclients:\n  - id: a\n    redirect_uris: [http://127.0.0.1:1/cb]\n  - id: a\n    redirect_uris: [http://127.0.0.1:1/cb]\n",
			[]string{"clients[1].id", "declared twice"}},
		{"not yaml", "issuer: [\n", []string{":1: not valid YAML"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := dir + "/" + strings.ReplaceAll(tt.name, " ", "-") + ".yaml"
			writeFile(t, path, tt.config)
			for _, args := range [][]string{
				{"users", "list", "--config", path},
				{"serve", "--config", path},
			} {
				msg := runCLI(t, "", args...).failsConfig(t, path)
				for _, w := range tt.want {
					if !strings.Contains(msg, w) {
						t.Errorf("%q does not contain %q", msg, w)
					}
				}
			}
		})
	}

	t.Run("config file does not exist", func(t *testing.T) {
		path := dir + "/nope.yaml"
		msg := runCLI(t, "", "users", "list", "--config", path).fails(t, 1)
		if !strings.Contains(msg, path) || !strings.Contains(msg, "no such file") {
			t.Errorf("got %q", msg)
		}
	})
}

// The CLI validates through the same rules as the account page and
// registration: it refuses a short password, a malformed email and a
// wildcard redirect URI, and "a, b" is two groups, a and b.
func TestCLIValidatesLikeAccountPageAndRegistration(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, 18083, "")
	F := c.path
	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"short\n", []string{"users", "add", "--username", "u1", "--password-stdin"}, "provider: users add: password: must be at least 8 characters"},
		{"long-enough-password\n", []string{"users", "add", "--username", "u2", "--email", "not-an-address", "--password-stdin"}, "provider: users add: email: "},
		{"long-enough-password\n", []string{"users", "add", "--username", "u3", "--email", "Eve <eve@example.org>", "--password-stdin"}, "provider: users add: email: "},
		{"", []string{"clients", "add", "--id", "wild", "--redirect-uri", "https://*.example.org/cb"}, "wildcard"},
	} {
		msg := runCLI(t, tc.stdin, append(tc.args, "--config", F)...).fails(t, 1)
		if !strings.Contains(msg, tc.want) {
			t.Errorf("%v: got %q, want it to contain %q", tc.args, msg, tc.want)
		}
	}
	runCLI(t, "long-enough-password\n", "users", "add", "--username", "grouped", "--groups", "a, b", "--password-stdin", "--config", F).ok(t)
	withStore(t, c, func(s *bolt.Store) {
		u, err := s.GetUserByUsername(t.Context(), "grouped")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(u.Groups, []string{"a", "b"}) {
			t.Errorf("groups = %q, want [a b]", u.Groups)
		}
		for _, name := range []string{"u1", "u2", "u3"} {
			if _, err := s.GetUserByUsername(t.Context(), name); err == nil {
				t.Errorf("refused user %s was stored", name)
			}
		}
	})
}
