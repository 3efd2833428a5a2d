package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// config.example.yaml is what a newcomer starts with: it must load, declare
// the documented example client and user, and document every key it sets.
func TestExampleConfigLoads(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig("../../config.example.yaml")
	if err != nil {
		t.Fatalf("config.example.yaml does not load: %v", err)
	}
	if cfg.Issuer != "http://127.0.0.1:8080" || cfg.Listen != "127.0.0.1:8080" {
		t.Errorf("issuer %q listen %q", cfg.Issuer, cfg.Listen)
	}
	if len(cfg.Clients) == 0 || cfg.Clients[0].ID != "example-app" || cfg.Clients[0].Secret != exampleClientSecret {
		t.Errorf("the example client is not example-app/%s: %+v", exampleClientSecret, cfg.Clients)
	}
	if len(cfg.Users) == 0 || cfg.Users[0].Username != "alice" || cfg.Users[0].Password != exampleUserPassword {
		t.Errorf("the example user is not alice/%s", exampleUserPassword)
	}
	if a := cfg.Users[0].Address; a == nil || a.Locality != "Springfield" || cfg.Users[0].PhoneNumber == "" {
		t.Errorf("the example user's address and phone did not load: %+v", cfg.Users[0])
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{exampleUserPassword, exampleClientSecret, "go run ./cmd/provider serve --config config.example.yaml"} {
		if !strings.Contains(string(readme), s) {
			t.Errorf("README.md does not mention %q", s)
		}
	}
	if want := filepath.Join(filepath.Dir(mustAbs(t, "../../config.example.yaml")), "data", "provider.db"); cfg.Storage.Bolt != want {
		t.Errorf("storage.bolt = %q, want it relative to the config file: %q", cfg.Storage.Bolt, want)
	}
}

func TestExampleCredentialsWarnOnlyOffLoopback(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	warned := func(issuer string) string {
		c := *cfg
		c.Issuer = issuer
		var buf bytes.Buffer
		warnExampleCredentials(&c, slog.New(slog.NewTextHandler(&buf, nil)))
		return buf.String()
	}
	if out := warned("http://127.0.0.1:8080"); out != "" {
		t.Errorf("warned on loopback: %s", out)
	}
	out := warned("https://sso.example.org")
	if !strings.Contains(out, "EXAMPLE CREDENTIALS") || !strings.Contains(out, "example-app") || !strings.Contains(out, "alice") {
		t.Errorf("no loud warning for example credentials on a public issuer: %q", out)
	}
	if strings.Contains(out, exampleClientSecret) || strings.Contains(out, exampleUserPassword) {
		t.Errorf("the warning prints the secret itself: %q", out)
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
