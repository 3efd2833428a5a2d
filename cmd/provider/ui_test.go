package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUIConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := "issuer: http://127.0.0.1:8080\nstorage:\n  bolt: " + dir + "/provider.db\nkeys:\n  dir: " + dir + "/keys\n"
	path := filepath.Join(dir, "ui.yaml")
	writeFile(t, path, base+"ui:\n  primary_color: blue\n  logo_url: http://cdn.example/logo.png\n  templates_dir: ./nope\n")
	msg := runCLI(t, "", "serve", "--config", path).failsConfig(t, path)
	for _, want := range []string{"ui.primary_color", `"blue"`, "ui.logo_url", "https", "ui.templates_dir", filepath.Join(dir, "nope")} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not contain %q", msg, want)
		}
	}
}

func TestServeWithTemplatesDir(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	c := writeConfig(t, port, "ui:\n  org_name: Acme\n  primary_color: \"#0F766E\"\n  logo_url: static/logo.svg\n  templates_dir: brand\n")
	brand := filepath.Join(c.dir, "brand")
	if err := os.MkdirAll(filepath.Join(brand, "static"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(brand, "error.html"), `{{define "content"}}<h1>Custom trouble at {{.OrgName}}</h1><p>{{.Message}}</p>{{end}}`)
	writeFile(t, filepath.Join(brand, "static", "logo.svg"), `<svg xmlns="http://www.w3.org/2000/svg"/>`)
	startServer(t, c)

	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(c.issuer + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if body := get("/nowhere"); !strings.Contains(body, "Custom trouble at Acme") || !strings.Contains(body, `src="/static/logo.svg"`) {
		t.Errorf("the folder's error page or the logo is not used:\n%s", body)
	}
	if body := get("/account"); !strings.Contains(body, "Keep me signed in") {
		t.Errorf("the embedded sign-in page is not the fallback:\n%s", body)
	}
	if css := get("/static/theme.css"); !strings.Contains(css, "--primary:#0f766e") {
		t.Errorf("theme.css = %q", css)
	}
	if svg := get("/static/logo.svg"); !strings.Contains(svg, "<svg") {
		t.Errorf("logo from the folder's static/: %q", svg)
	}
}

func TestServeRefusesBrokenTemplate(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), "ui:\n  templates_dir: brand\n")
	broken := filepath.Join(c.dir, "brand", "login.html")
	if err := os.MkdirAll(filepath.Dir(broken), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, broken, `{{define "content"}}{{if .Username}}unclosed{{end}`)
	msg := runCLI(t, "", "serve", "--config", c.path).fails(t, 1)
	if !strings.Contains(msg, broken) {
		t.Errorf("%q does not name %s", msg, broken)
	}
}
