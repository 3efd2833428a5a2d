package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// registration: in the config turns on /register; the initial access token
// can come from a file beside the config, and registered clients show up in
// `clients list` with their source.
func TestRegistrationFromConfig(t *testing.T) {
	t.Parallel()
	const iat = "0123456789abcdef0123456789abcdef"
	c := writeConfig(t, freePort(t), "registration:\n  enabled: true\n  initial_access_token_file: iat.txt\n")
	writeFile(t, filepath.Join(c.dir, "iat.txt"), iat+"\n")
	startServer(t, c)

	var doc map[string]any
	getJSON(t, http.DefaultClient, c.issuer+"/.well-known/openid-configuration", &doc)
	if doc["registration_endpoint"] != c.issuer+"/register" {
		t.Fatalf("registration_endpoint = %v", doc["registration_endpoint"])
	}
	register := func(token string) (int, map[string]any) {
		body, _ := json.Marshal(map[string]any{"redirect_uris": []string{"https://app.example/cb"}, "client_name": "Dyn"})
		req, _ := http.NewRequest(http.MethodPost, c.issuer+"/register", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if status, body := register(""); status != http.StatusUnauthorized {
		t.Fatalf("without the initial access token: HTTP %d %v", status, body)
	}
	status, body := register(iat)
	id, _ := body["client_id"].(string)
	if status != http.StatusCreated || id == "" {
		t.Fatalf("with the initial access token: HTTP %d %v", status, body)
	}
	out := runCLI(t, "", "clients", "list", "--config", c.path).ok(t)
	if !strings.Contains(out, id) || !strings.Contains(out, "registration") {
		t.Fatalf("clients list does not show the registered client %s:\n%s", id, out)
	}
}

func TestRegistrationConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "empty.txt"), "\n")
	base := "issuer: http://127.0.0.1:8080\nstorage:\n  bolt: " + dir + "/provider.db\nkeys:\n  dir: " + dir + "/keys\nregistration:\n  enabled: true\n"
	for _, tt := range []struct {
		name, reg string
		want      []string
	}{
		{"token and file", "  initial_access_token: 0123456789abcdef0123\n  initial_access_token_file: t.txt\n", []string{"registration:", "not both"}},
		{"missing file", "  initial_access_token_file: nope.txt\n", []string{"registration.initial_access_token_file", "nope.txt"}},
		{"empty file", "  initial_access_token_file: empty.txt\n", []string{"registration.initial_access_token_file", "empty"}},
		{"short token", "  initial_access_token: secret\n", []string{"registration.initial_access_token", "at least 16"}},
		{"unknown key", "  open: true\n", []string{"open"}},
		{"redirect host with scheme", "  allowed_redirect_hosts: [\"https://app.example\"]\n", []string{"registration.allowed_redirect_hosts[0]", "host name"}},
		{"redirect host wildcard inside", "  allowed_redirect_hosts: [\"app.*.example\"]\n", []string{"registration.allowed_redirect_hosts[0]", "first label"}},
		{"outbound any host", "outbound:\n  allowed_hosts: [\"*\"]\n", []string{"outbound.allowed_hosts[0]", "list the hosts"}},
		{"outbound host with port", "outbound:\n  allowed_hosts: [\"keys.example:8443\"]\n", []string{"outbound.allowed_hosts[0]", "no scheme, port or path"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml")
			writeFile(t, path, base+tt.reg)
			msg := runCLI(t, "", "clients", "list", "--config", path).fails(t, 1)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q does not contain %q", msg, w)
				}
			}
		})
	}
}

// What a client shows people can be set with clients add too, under the
// same rules as registration.
func TestClientsAddPageLinks(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), "")
	out := runCLI(t, "", "clients", "add", "--config", c.path, "--id", "branded", "--redirect-uri", "https://app.example/cb",
		"--logo-uri", "https://app.example/logo.png", "--policy-uri", "https://app.example/privacy",
		"--tos-uri", "https://app.example/terms", "--client-uri", "https://app.example/", "--contact", "ops@app.example").ok(t)
	if !strings.Contains(out, "added client branded") {
		t.Fatalf("clients add: %s", out)
	}
	out = runCLI(t, "", "clients", "list", "--config", c.path, "--json").ok(t)
	for _, want := range []string{`"logo_uri": "https://app.example/logo.png"`, `"policy_uri": "https://app.example/privacy"`, `"tos_uri": "https://app.example/terms"`, `"ops@app.example"`} {
		if !strings.Contains(out, want) {
			t.Errorf("clients list --json lacks %s:\n%s", want, out)
		}
	}
	msg := runCLI(t, "", "clients", "add", "--config", c.path, "--id", "bad", "--redirect-uri", "https://app.example/cb",
		"--logo-uri", "http://app.example/logo.png").fails(t, 1)
	if !strings.Contains(msg, "logo_uri") || !strings.Contains(msg, "https") {
		t.Fatalf("http logo accepted or unclear: %s", msg)
	}
}
