package main

import (
	"os"
	"strings"
	"testing"
)

// failsConfig asserts the command was refused for problems in the config
// file at path: exit 1, nothing on stdout, and one or more lines on stderr,
// each "provider: <command>: PATH:" followed by one problem. It returns the
// lines joined by newlines.
func (r result) failsConfig(t *testing.T, path string) string {
	t.Helper()
	cmd := "provider " + strings.Join(r.args, " ")
	if r.code != 1 {
		t.Errorf("%s: exit %d, want 1 (stderr %q)", cmd, r.code, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("%s: stdout %q, want nothing on failure", cmd, r.stdout)
	}
	if !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("%s: stderr %q does not end with a newline", cmd, r.stderr)
	}
	prefix := "provider: "
	for _, a := range r.args {
		if strings.HasPrefix(a, "-") {
			break
		}
		prefix += a + " "
	}
	prefix = strings.TrimSuffix(prefix, " ") + ": " + path + ":"
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	for _, l := range lines {
		if !strings.HasPrefix(l, prefix) {
			t.Errorf("%s: stderr line %q does not start with %q", cmd, l, prefix)
		}
		for _, bad := range []string{"goroutine ", "panic", ".go:", "Usage:", "main.", "!!", "unmarshal"} {
			if strings.Contains(l, bad) {
				t.Errorf("%s: stderr line %q contains %q", cmd, l, bad)
			}
		}
	}
	return strings.Join(lines, "\n")
}

// `provider config check` on a table of broken configs: every problem is
// printed, one line each, with the file, the line and the key path; serve
// refuses the same file with the same lines. Lines are 1-based; the base
// config takes lines 1 to 5.
func TestConfigCheckBrokenConfigs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := "issuer: http://127.0.0.1:8080\nstorage:\n  bolt: " + dir + "/provider.db\nkeys:\n  dir: " + dir + "/keys\n"
	noIssuer := "storage:\n  bolt: " + dir + "/provider.db\nkeys:\n  dir: " + dir + "/keys\n"
	client := func(id string) string {
		return "  - id: " + id + "\n    secret: long-enough-secret\n    redirect_uris: [http://127.0.0.1:9/cb]\n"
	}
	tests := []struct {
		name   string
		config string
		// want are what the lines must hold after "PATH": ":LINE: KEY: ..."
		want []string
		// lines is how many problems must be printed.
		lines int
	}{
		{"empty file", "", []string{": the file is empty: it needs at least issuer"}, 1},
		{"comments only", "# nothing yet\n\n   # really\n", []string{": the file is empty: it needs at least issuer"}, 1},
		{"only a document marker", "---\n", []string{": the file is empty"}, 1},
		{"a list, not a mapping", "- issuer: x\n", []string{":1: the config must be a mapping of keys"}, 1},
		{"unknown top-level key", base + "isuer: http://x\n", []string{`:6: unknown key "isuer" (did you mean issuer?)`}, 1},
		{"unknown nested key", base + "clients:\n" + client("a") + "  - id: b\n    secret: long-enough-secret\n    redirect_uri: http://127.0.0.1:9/cb\n",
			[]string{`:12: clients[1]: unknown key "redirect_uri" (did you mean redirect_uris?)`, ":10: clients[1]: redirect_uris is required"}, 2},
		{"unknown key in a block", base + "tokens:\n  access_lifespan: 1h\n", []string{`:7: tokens: unknown key "access_lifespan"`}, 1},
		{"list where text is", base + "listen: [a]\n", []string{":6: listen: must be a single value (text), not a list"}, 1},
		{"text where a list is", base + "clients:\n  - id: a\n    secret: long-enough-secret\n    redirect_uris: https://app.example/cb\n",
			[]string{`:9: clients[0].redirect_uris: must be a list (lines starting with "- ", or [a, b]), not "https://app.example/cb"`}, 1},
		{"not a boolean", base + "clients:\n  - id: a\n    public: maybe\n    redirect_uris: [http://127.0.0.1:9/cb]\n",
			[]string{`:8: clients[0].public: must be true or false, not "maybe"`}, 1},
		{"not a number", base + "limits:\n  uri_bytes: 8k\n", []string{`:7: limits.uri_bytes: must be a whole number, not "8k"`}, 1},
		{"mapping where text is", base + "log:\n  level:\n    x: 1\n", []string{":7: log.level: must be a single value (text), not a mapping"}, 1},
		{"block that is not a mapping", base + "tokens: 1h\n", []string{`:6: tokens: must be a mapping (keys indented below it), not "1h"`}, 1},
		{"empty block that switches something on", base + "tls:\n  acme:\n", []string{":7: tls.acme: is empty: give its keys indented below it, or remove it"}, 1},
		{"key given twice", base + "listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n", []string{":7: listen: given twice (first at line 6)"}, 1},
		{"missing issuer", noIssuer, []string{": issuer: is required"}, 1},
		{"bad issuer", "issuer: ftp://sso.example.org\n" + noIssuer, []string{`:1: issuer: "ftp://sso.example.org" must be an http(s) URL`}, 1},
		{"issuer with a trailing slash", "issuer: https://sso.example.org/\n" + noIssuer,
			[]string{`:1: issuer: "https://sso.example.org/" ends with a slash: write "https://sso.example.org"`}, 1},
		{"issuer path with a trailing slash", "issuer: https://example.org/sso/\n" + noIssuer,
			[]string{`:1: issuer: "https://example.org/sso/" ends with a slash: write "https://example.org/sso"`}, 1},
		{"bad duration", base + "tokens:\n  access_token_lifespan: soon\n", []string{`:7: tokens.access_token_lifespan: "soon" is not a duration like 15m or 720h`}, 1},
		{"negative duration", base + "sessions:\n  login_lifespan: -1h\n", []string{`:7: sessions.login_lifespan: "-1h" is not a duration`}, 1},
		{"duplicate client id", base + "clients:\n" + client("a") + client("a"), []string{`:10: clients[1].id: "a" is declared twice`}, 1},
		{"bad redirect URI", base + "clients:\n" + client("a") + client("b") + "  - id: c\n    secret: long-enough-secret\n    redirect_uris:\n      - http://app.example/cb\n",
			[]string{`:16: clients[2].redirect_uris[0]: redirect URI "http://app.example/cb": http is only allowed on loopback`}, 1},
		{"bad user email", base + "users:\n  - username: bob\n    password: long-enough-password\n    email: not-an-address\n",
			[]string{`:9: users[0].email: "not-an-address"`}, 1},
		{"user group", base + "users:\n  - username: bob\n    password: long-enough-password\n    groups:\n      - ok\n      - a,b\n",
			[]string{`:11: users[0].groups[1]: "a,b" must not contain a comma`}, 1},
		{"max_lifetime too long", base + "trusted_issuers:\n  - issuer: https://ci.example.org\n    subject: bot\n    jwks_uri: https://ci.example.org/jwks\n    max_lifetime: 48h\n",
			[]string{`:10: trusted_issuers[0].max_lifetime: 48h0m0s must be more than 0 and at most 24h0m0s`}, 1},
		{"limits out of range", base + "limits:\n  form_body_bytes: 10\n  uri_bytes: 100\n",
			[]string{`:7: limits.form_body_bytes: 10 must be between 8192 and 16777216 bytes`, `:8: limits.uri_bytes: 100 must be between 1024 and 1048576 bytes`}, 2},
		{"two problems at once", base + "listen: nowhere\nlog:\n  level: loud\n",
			[]string{`:6: listen: "nowhere" must be host:port`, `:8: log.level: "loud" must be debug, info, warn or error`}, 2},
		{"structure and meaning at once", base + "listen: [a]\nclients:\n  - id: a\n    redirect_uris: [http://app.example/cb]\n",
			[]string{":6: listen: must be a single value", `:9: clients[0].redirect_uris[0]: redirect URI "http://app.example/cb"`}, 2},
		{"tab indentation", base + "log:\n\tlevel: info\n", []string{":7: not valid YAML: found character that cannot start any token (a tab: indent with spaces)"}, 1},
		{"two documents", base + "---\nlisten: 127.0.0.1:1\n", []string{":6: a second YAML document"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := dir + "/" + strings.ReplaceAll(tt.name, " ", "-") + ".yaml"
			writeFile(t, path, tt.config)
			var first string
			for _, args := range [][]string{
				{"config", "check", "--config", path},
				{"serve", "--config", path},
			} {
				r := runCLI(t, "", args...)
				if r.code == 0 {
					t.Fatalf("%v accepted the config: %s", args, r.stdout)
				}
				msg := r.failsConfig(t, path)
				for _, w := range tt.want {
					if !strings.Contains(msg, path+w) {
						t.Errorf("%s:\n%s\ndoes not contain %q", strings.Join(args[:len(args)-2], " "), msg, path+w)
					}
				}
				if n := strings.Count(msg, "\n") + 1; n != tt.lines {
					t.Errorf("%d problems printed, want %d:\n%s", n, tt.lines, msg)
				}
				// The same problems, whatever the command.
				rest := strings.NewReplacer("provider: serve: ", "", "provider: config check: ", "").Replace(msg)
				if first == "" {
					first = rest
				} else if rest != first {
					t.Errorf("serve says %q, config check %q", rest, first)
				}
			}
		})
	}
}

// config check on a valid file says ok in one line and creates nothing:
// no database, no keys, no directories.
func TestConfigCheckCreatesNothing(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, 18099, "clients:\n  - id: a\n    secret: long-enough-secret\n    redirect_uris: [http://127.0.0.1:9/cb]\n"+
		"users:\n  - username: bob\n    password: long-enough-password\n")
	out := runCLI(t, "", "config", "check", "--config", c.path).ok(t)
	if want := c.path + ": ok: issuer " + c.issuer + ", 1 client, 1 user, 0 trusted issuers\n"; out != want {
		t.Errorf("config check said %q, want %q", out, want)
	}
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "config.yaml" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("config check left %v in the config's directory, want only config.yaml", names)
	}
	msg := runCLI(t, "", "config", "check").fails(t, 2)
	if msg != "provider: config check: --config is required" {
		t.Errorf("without --config: %q", msg)
	}
}

// The example config passes config check (its data directory is not
// created by the check).
func TestExampleConfigChecks(t *testing.T) {
	t.Parallel()
	out := runCLI(t, "", "config", "check", "--config", "../../config.example.yaml").ok(t)
	if !strings.HasPrefix(out, "../../config.example.yaml: ok: issuer http://127.0.0.1:8080, ") || strings.Count(out, "\n") != 1 {
		t.Errorf("config check config.example.yaml: %q", out)
	}
}
