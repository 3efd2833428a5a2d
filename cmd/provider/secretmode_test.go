package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// A config file with secrets that other users may read: `serve` warns at
// start, naming the file and its mode and saying how to fix it.
func TestServeWarnsAboutReadableSecretConfig(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix file modes")
	}
	t.Parallel()
	c := writeConfig(t, freePort(t), appConfig)
	if err := os.Chmod(c.path, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, c)
	srv.stop(t)
	log := srv.stderr.String()
	var warning string
	for l := range strings.Lines(log) {
		if strings.Contains(l, "config file holds secrets") {
			warning = l
		}
	}
	for _, want := range []string{"level=WARN", "path=" + c.path, "mode=0644", "chmod 600", "clients[0].secret", "users[0].password"} {
		if !strings.Contains(warning, want) {
			t.Errorf("start-up warning %q lacks %q; log:\n%s", warning, want, log)
		}
	}
	for _, secret := range []string{appSecret, "alice-password-for-tests"} {
		if strings.Contains(log, secret) {
			t.Errorf("the log shows the secret %q", secret)
		}
	}
}

func TestReadableSecretsWarningCases(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix file modes")
	}
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		mode    os.FileMode
		content string
		warn    bool
	}{
		{"private file", 0o600, appConfig, false},
		{"group-readable", 0o640, appConfig, true},
		{"world-readable, no secrets", 0o644, "issuer: http://127.0.0.1:1\nkeys:\n  dir: k\n", false},
		{"only a token file named", 0o644, "registration:\n  enabled: true\n  initial_access_token_file: t.txt\n", false},
		{"initial access token", 0o604, "registration:\n  enabled: true\n  initial_access_token: abcdefghijklmnopqrstuvwxyz0123456789\n", true},
		{"hashes only", 0o644, "users:\n  - username: a\n    password_hash: $argon2id$v=19$x\n", true},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
		if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		warnReadableSecrets(path, slog.New(slog.NewTextHandler(&buf, nil)))
		if got := strings.Contains(buf.String(), "level=WARN"); got != tc.warn {
			t.Errorf("%s (mode %04o): warned = %v, want %v: %q", tc.name, tc.mode, got, tc.warn, buf.String())
		}
	}
}

func TestSecretKeys(t *testing.T) {
	t.Parallel()
	got := secretKeys([]byte(`
tokens:
  access_token_lifespan: 15m
registration:
  initial_access_token: xyz
  initial_access_token_file: ""
clients:
  - id: a
    secret: s
    jwks_uri: https://example.org/jwks
  - id: b
    secret_hash: h
users:
  - username: u
    password: ""
`))
	want := []string{"registration.initial_access_token", "clients[0].secret", "clients[1].secret_hash"}
	if !slices.Equal(got, want) {
		t.Errorf("secretKeys = %v, want %v", got, want)
	}
}
