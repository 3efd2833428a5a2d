package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The limits: block (issue 11): each key is validated with its key path,
// one line per problem.
func TestLimitsConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := "issuer: http://127.0.0.1:8080\nstorage:\n  bolt: " + dir + "/provider.db\nkeys:\n  dir: " + dir + "/keys\n"
	for _, tt := range []struct {
		name, limits string
		want         []string
	}{
		{"negative", "  form_body_bytes: -1\n", []string{"limits.form_body_bytes", "-1", "between"}},
		{"tiny", "  json_body_bytes: 10\n  parameter_bytes: 5\n", []string{"limits.json_body_bytes", "limits.parameter_bytes"}},
		{"huge", "  form_body_bytes: 1073741824\n  header_bytes: 1073741824\n", []string{"limits.form_body_bytes", "limits.header_bytes"}},
		{"uri over header", "  header_bytes: 8192\n  uri_bytes: 16384\n", []string{"limits.uri_bytes", "must not exceed limits.header_bytes (8192)"}},
		{"not a number", "  uri_bytes: 8k\n", []string{"8k"}},
		{"unknown key", "  body_bytes: 1\n", []string{"body_bytes"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := dir + "/" + strings.ReplaceAll(tt.name, " ", "-") + ".yaml"
			writeFile(t, path, base+"limits:\n"+tt.limits)
			msg := runCLI(t, "", "users", "list", "--config", path).failsConfig(t, path)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q does not contain %q", msg, w)
				}
			}
		})
	}
}

// The server enforces the limits it is configured with: header size
// (431), request-target length (414), form bodies (413) and parameters.
func TestServeLimits(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), `limits:
  header_bytes: 8192
  uri_bytes: 4096
  form_body_bytes: 16384
  parameter_bytes: 1024
clients:
  - id: app
    secret: app-secret
    redirect_uris: [http://127.0.0.1:5555/cb]
`)
	startServer(t, c)
	get := func(path string, header string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, c.issuer+path, nil)
		if header != "" {
			req.Header.Set("X-Padding", header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// net/http allows 4 KiB over MaxHeaderBytes; 20 KiB is well beyond.
	if status, _ := get("/healthz", strings.Repeat("h", 20<<10)); status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("20 KiB of headers with header_bytes 8192: HTTP %d, want 431", status)
	}
	if status, _ := get("/healthz", strings.Repeat("h", 6<<10)); status != http.StatusOK {
		t.Errorf("6 KiB of headers: HTTP %d, want 200", status)
	}
	if status, _ := get("/.well-known/openid-configuration?x="+strings.Repeat("u", 5000), ""); status != http.StatusRequestURITooLong {
		t.Errorf("5000-byte URI with uri_bytes 4096: HTTP %d, want 414", status)
	}
	if status, _ := get("/.well-known/openid-configuration?x="+strings.Repeat("u", 3000), ""); status != http.StatusOK {
		t.Errorf("3000-byte URI: HTTP %d, want 200", status)
	}
	q := url.Values{"client_id": {"app"}, "response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {"http://127.0.0.1:5555/cb"},
		"state": {strings.Repeat("s", 1500)}}
	if status, page := get("/authorize?"+q.Encode(), ""); status != http.StatusBadRequest || strings.Contains(page, strings.Repeat("s", 1024)) {
		t.Errorf("1500-byte state with parameter_bytes 1024: HTTP %d, want a 400 page", status)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "pad": {strings.Repeat("p", 20<<10)}}
	req, _ := http.NewRequest(http.MethodPost, c.issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", "app-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("20 KiB form with form_body_bytes 16384: HTTP %d, want 413", resp.StatusCode)
	}
}

// Without a limits: block, the defaults hold: 16 KiB of headers (Go's own
// default is 1 MiB) and 8 KiB request-targets.
func TestServeDefaultLimits(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), "")
	startServer(t, c)
	req, _ := http.NewRequest(http.MethodGet, c.issuer+"/healthz", nil)
	req.Header.Set("X-Padding", strings.Repeat("h", 32<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("32 KiB of headers: HTTP %d, want 431", resp.StatusCode)
	}
	resp, err = http.Get(c.issuer + "/jwks?x=" + strings.Repeat("u", 9000))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestURITooLong {
		t.Errorf("9000-byte URI: HTTP %d, want 414", resp.StatusCode)
	}
}
