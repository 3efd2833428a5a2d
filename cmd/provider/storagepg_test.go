package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Secrets the config tests put into configs and the environment; none
// may appear in any output.
const (
	dsnPassword = "s3cret-dsn-pw"
	envPassword = "env-s3cret-dsn-pw"
)

// newEncryptionKey is a fresh keys.encryption_key.
func newEncryptionKey() string {
	return base64.StdEncoding.EncodeToString(randBytes(32))
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// writePGConfig writes a config on PostgreSQL at dsn for a server on
// 127.0.0.1:port, followed by extra YAML. The key directory is unused;
// keys is left empty.
func writePGConfig(t *testing.T, port int, dsn, encKey, extra string) *testConfig {
	t.Helper()
	dir := t.TempDir()
	c := &testConfig{
		dir:    dir,
		path:   filepath.Join(dir, "config.yaml"),
		issuer: fmt.Sprintf("http://127.0.0.1:%d", port),
	}
	yaml := fmt.Sprintf(`issuer: %s
listen: 127.0.0.1:%d
storage:
  postgres:
    dsn: %q
keys:
  encryption_key: %s
log:
  level: info
`, c.issuer, port, dsn, encKey) + extra
	writeFile(t, c.path, yaml)
	return c
}

// noSecrets fails the test if text holds any of secrets.
func noSecrets(t *testing.T, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s holds a secret (%.6s...):\n%s", what, s, text)
		}
	}
}

// `provider config check` on storage.postgres and keys.encryption_key:
// each problem on its key path, and never the DSN's password or the key.
func TestConfigCheckPostgres(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	goodKey := newEncryptionKey()
	shortKey := base64.StdEncoding.EncodeToString([]byte("sixteen-byte-key"))
	badKey := "not*base64*s3cret-key-value"
	goodDSN := "postgres://provider:" + dsnPassword + "@127.0.0.1:5432/provider?sslmode=disable"
	pg := func(postgres, keys string) string {
		return "issuer: http://127.0.0.1:8080\nstorage:\n" + postgres + "keys:\n" + keys
	}
	dsn := func(v string) string { return "  postgres:\n    dsn: " + v + "\n" }
	key := func(v string) string { return "  encryption_key: " + v + "\n" }
	tests := []struct {
		name, config string
		want         []string // each a problem line's tail after PATH
	}{
		{"bolt and postgres", pg("  bolt: "+dir+"/provider.db\n"+dsn(goodDSN), key(goodKey)),
			[]string{":2: storage: give bolt or postgres, not both"}},
		{"no dsn", pg("  postgres:\n    max_conns: 4\n", key(goodKey)),
			[]string{":3: storage.postgres.dsn: is required: a PostgreSQL connection string"}},
		{"empty postgres block", pg("  postgres:\n", key(goodKey)),
			[]string{":3: storage.postgres: is empty"}},
		{"URL with a bad port", pg(dsn("postgres://provider:"+dsnPassword+"@127.0.0.1:notaport/provider"), key(goodKey)),
			[]string{":4: storage.postgres.dsn: is not a valid PostgreSQL connection string"}},
		{"key=value with a bad port", pg(dsn(`"host=db.example.org password=`+dsnPassword+` port=abc"`), key(goodKey)),
			[]string{":4: storage.postgres.dsn: is not a valid PostgreSQL connection string"}},
		{"key=value with an open quote", pg(dsn(`"host=db.example.org password='`+dsnPassword+`"`), key(goodKey)),
			[]string{":4: storage.postgres.dsn: is not a valid PostgreSQL connection string"}},
		{"max_conns negative", pg(dsn(goodDSN)+"    max_conns: -1\n", key(goodKey)),
			[]string{":5: storage.postgres.max_conns: must be between 1 and 1000"}},
		{"max_conns too many", pg(dsn(goodDSN)+"    max_conns: 5000\n", key(goodKey)),
			[]string{":5: storage.postgres.max_conns: must be between 1 and 1000"}},
		{"max_conns not a number", pg(dsn(goodDSN)+"    max_conns: lots\n", key(goodKey)),
			[]string{`:5: storage.postgres.max_conns: must be a whole number, not "lots"`}},
		{"no encryption key", pg(dsn(goodDSN), "  rotate_every: 2h\n"),
			[]string{":5: keys.encryption_key: is required with storage.postgres"}},
		{"short encryption key", pg(dsn(goodDSN), key(shortKey)),
			[]string{":6: keys.encryption_key: decodes to 16 bytes: it must be the base64 of exactly 32 random bytes"}},
		{"encryption key not base64", pg(dsn(goodDSN), key(badKey)),
			[]string{":6: keys.encryption_key: is not base64"}},
		{"key directory with postgres", pg(dsn(goodDSN), key(goodKey)+"  dir: "+dir+"/keys\n"),
			[]string{":7: keys.dir: is not used with storage.postgres"}},
		{"encryption key with bolt", pg("  bolt: "+dir+"/provider.db\n", key(goodKey)),
			[]string{":5: keys.encryption_key: is only used with storage.postgres"}},
		{"every problem at once", pg("  bolt: x.db\n"+dsn("postgres://u:"+dsnPassword+"@h:bad/db")+"    max_conns: -3\n", key(badKey)+"  dir: k\n"),
			[]string{":2: storage: give bolt or postgres, not both", ":5: storage.postgres.dsn: is not a valid", ":6: storage.postgres.max_conns:", ":8: keys.encryption_key: is not base64", ":9: keys.dir: is not used"}},
	}
	for i, tt := range tests {
		path := filepath.Join(dir, fmt.Sprintf("config-%d.yaml", i))
		writeFile(t, path, tt.config)
		r := runCLI(t, "", "config", "check", "--config", path)
		out := r.failsConfig(t, path)
		if n := strings.Count(out, "\n") + 1; n != len(tt.want) {
			t.Errorf("%s: %d problems, want %d:\n%s", tt.name, n, len(tt.want), out)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, path+w) {
				t.Errorf("%s: output lacks %q:\n%s", tt.name, path+w, out)
			}
		}
		noSecrets(t, tt.name, r.stdout+r.stderr, dsnPassword, goodKey, shortKey, badKey)
	}

	// A good one: ok, with the database named, never its password.
	path := filepath.Join(dir, "good.yaml")
	writeFile(t, path, pg(dsn(goodDSN)+"    max_conns: 20\n", key(goodKey)))
	r := runCLI(t, "", "config", "check", "--config", path)
	if out := r.ok(t); !strings.Contains(out, ": ok: issuer http://127.0.0.1:8080,") {
		t.Errorf("config check: %q", out)
	}
	noSecrets(t, "config check", r.stdout, dsnPassword, goodKey)
	// The commands that work on a bbolt file refuse, in one line that
	// points to pg_dump and migrate-storage.
	for _, args := range [][]string{
		{"backup", "--config", path, "--out", filepath.Join(dir, "b.db")},
		{"restore", "--config", path, "--from", filepath.Join(dir, "b.db")},
	} {
		line := runCLI(t, "", args...).fails(t, 1)
		if !strings.Contains(line, "storage is PostgreSQL: "+args[0]+" works on a bbolt file; use pg_dump and pg_restore") ||
			!strings.Contains(line, "migrate-storage") {
			t.Errorf("%s on PostgreSQL: %q", args[0], line)
		}
	}
	line := runCLI(t, "", "compact", "--config", path).fails(t, 1)
	if !strings.Contains(line, "storage is PostgreSQL: compact rewrites a bbolt file") {
		t.Errorf("compact on PostgreSQL: %q", line)
	}

	// The config as loaded prints and logs without its secrets.
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.Storage.Postgres.DSN) != goodDSN || cfg.Storage.Postgres.MaxConns != 20 || string(cfg.Keys.EncryptionKey) != goodKey {
		t.Errorf("loaded storage %+v", cfg.Storage.Postgres)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "dsn", cfg.Storage.Postgres.DSN, "key", cfg.Keys.EncryptionKey)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "dsn", cfg.Storage.Postgres.DSN, "key", cfg.Keys.EncryptionKey)
	fmt.Fprintf(&buf, "%v %+v %#v %s\n", *cfg.Storage.Postgres, cfg.Keys, cfg.Storage, cfg.Keys.EncryptionKey)
	noSecrets(t, "a config printed", buf.String(), dsnPassword, goodKey)
	if got := cfg.describeStorage(); got != "PostgreSQL 127.0.0.1:5432/provider" {
		t.Errorf("describeStorage: %q", got)
	}
}

// The environment supplies the DSN and the encryption key, and wins over
// the file; it never switches a bbolt config to PostgreSQL. Not parallel:
// it sets environment variables.
func TestConfigPostgresFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	goodKey, envKey := newEncryptionKey(), newEncryptionKey()
	envDSN := "postgres://provider:" + envPassword + "@127.0.0.1:5433/fromenv"
	t.Setenv(envPostgresDSN, envDSN)
	t.Setenv(envEncryptionKey, envKey)

	check := func(name, config string) (result, *fileConfig) {
		t.Helper()
		path := filepath.Join(dir, name+".yaml")
		writeFile(t, path, "issuer: http://127.0.0.1:8080\n"+config)
		cfg, _ := loadConfig(path)
		return runCLI(t, "", "config", "check", "--config", path), cfg
	}
	// Everything from the environment.
	r, cfg := check("env-only", "storage:\n  postgres: {}\n")
	r.ok(t)
	if string(cfg.Storage.Postgres.DSN) != envDSN || string(cfg.Keys.EncryptionKey) != envKey {
		t.Errorf("DSN and key not taken from the environment")
	}
	// The environment wins over the file, even over a broken value.
	r, cfg = check("env-wins", "storage:\n  postgres:\n    dsn: 'host=x port=bad password="+dsnPassword+"'\nkeys:\n  encryption_key: "+goodKey+"\n")
	r.ok(t)
	if string(cfg.Storage.Postgres.DSN) != envDSN || string(cfg.Keys.EncryptionKey) != envKey {
		t.Errorf("the file won over the environment")
	}
	noSecrets(t, "config check", r.stdout, envPassword, envKey, dsnPassword, goodKey)
	// A bbolt config stays on bbolt.
	r, cfg = check("bolt", "storage:\n  bolt: "+dir+"/provider.db\nkeys:\n  dir: "+dir+"/keys\n")
	r.ok(t)
	if cfg.usesPostgres() || cfg.Keys.EncryptionKey != "" {
		t.Errorf("the environment switched a bbolt config to PostgreSQL")
	}

	// Broken values in the environment: named as coming from there.
	t.Setenv(envPostgresDSN, "postgres://provider:"+envPassword+"@127.0.0.1:bad/x")
	t.Setenv(envEncryptionKey, base64.StdEncoding.EncodeToString([]byte(envPassword)))
	r, _ = check("env-broken", "storage:\n  postgres: {}\n")
	out := r.failsConfig(t, filepath.Join(dir, "env-broken.yaml"))
	for _, want := range []string{
		":3: storage.postgres.dsn: (from PROVIDER_POSTGRES_DSN) is not a valid PostgreSQL connection string",
		": keys.encryption_key: (from PROVIDER_KEYS_ENCRYPTION_KEY) decodes to 17 bytes",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	noSecrets(t, "config check", r.stdout+r.stderr, envPassword, base64.StdEncoding.EncodeToString([]byte(envPassword)))
}

// A config file holding the DSN's password or the encryption key is a
// file of secrets: serve warns when others may read it.
func TestSecretKeysOfPostgresConfig(t *testing.T) {
	t.Parallel()
	got := secretKeys([]byte("storage:\n  postgres:\n    dsn: postgres://u:pw@h/db\nkeys:\n  encryption_key: abc\n"))
	if !slices.Equal(got, []string{"storage.postgres.dsn", "keys.encryption_key"}) {
		t.Errorf("secret keys %q", got)
	}
	for _, dsn := range []string{"postgres://u@h:5432/db", "host=h user=u dbname=db"} {
		if got := secretKeys([]byte("storage:\n  postgres:\n    dsn: " + dsn + "\n")); len(got) != 0 {
			t.Errorf("%s: secret keys %q, want none (no password)", dsn, got)
		}
	}
	if !dsnHasPassword("host=h password=x") || !dsnHasPassword("postgresql://u:p@h/d") {
		t.Errorf("dsnHasPassword misses a password")
	}
}

// keys.encryption_key in any base64 alphabet, padded or not, with
// surrounding whitespace; never anything but 32 bytes.
func TestParseEncryptionKey(t *testing.T) {
	t.Parallel()
	raw := randBytes(32)
	raw[0], raw[1] = 0xfb, 0xff // '+' and '/' in the standard alphabet, '-' and '_' in the URL one
	for _, s := range []string{
		base64.StdEncoding.EncodeToString(raw), base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw),
		" " + base64.StdEncoding.EncodeToString(raw) + "\n",
	} {
		got, err := parseEncryptionKey(s)
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("%q: %x, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "a", base64.StdEncoding.EncodeToString(randBytes(31)), base64.StdEncoding.EncodeToString(randBytes(33)), "@@@@"} {
		if _, err := parseEncryptionKey(s); err == nil {
			t.Errorf("%q accepted", s)
		} else if len(s) > 4 && strings.Contains(err.Error(), s) {
			t.Errorf("the error quotes the value: %v", err)
		}
	}
}

// A DSN pgx cannot use is explained in pgx's words when they hold
// nothing of the string, and never with its password.
func TestDSNProblem(t *testing.T) {
	t.Parallel()
	for dsn, want := range map[string]string{
		"postgres://u:" + dsnPassword + "@h:port/db":                                         ": invalid port",
		"postgres://u:" + dsnPassword + "@h/db?sslmode=verify-full&sslrootcert=/nonexistent": ": failed to configure TLS (unable to read CA file: open /nonexistent: no such file or directory)",
		"postgres://u:" + dsnPassword + "@h%zz/db":                                           ": failed to parse as URL",
		"host=h password='" + dsnPassword:                                                    ": failed to parse as keyword/value",
	} {
		got := dsnProblem(dsn)
		if !strings.HasPrefix(got, "is not a valid PostgreSQL connection string") || !strings.HasSuffix(got, want) {
			t.Errorf("%s: %q, want it to end in %q", dsn, got, want)
		}
		noSecrets(t, "dsnProblem", got, dsnPassword)
	}
	for _, dsn := range []string{"postgres://u:pw@h:5432/db?sslmode=disable", "host=h dbname=db user=u", "postgresql:///db?host=/run/postgresql"} {
		if got := dsnProblem(dsn); got != "" {
			t.Errorf("%s: %q, want no problem", dsn, got)
		}
	}
	if mayLeak("bad thing near "+dsnPassword, "postgres://u:"+dsnPassword+"@h/db") != true {
		t.Errorf("mayLeak misses a URL password")
	}
	if mayLeak("bad thing near "+dsnPassword, "host=h password="+dsnPassword) != true {
		t.Errorf("mayLeak misses a key=value password")
	}
}
