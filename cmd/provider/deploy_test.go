package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The deployment files live at the repository root and in docs/deploy.
const (
	systemdUnitPath = "../../docs/deploy/provider.service"
	dockerfilePath  = "../../Dockerfile"
)

func TestVersionCommand(t *testing.T) {
	t.Parallel()
	out := runCLI(t, "", "version").ok(t)
	for _, want := range []string{"provider ", "commit:", "go:      go1.", "build:"} {
		if !strings.Contains(out, want) {
			t.Errorf("provider version printed %q, missing %q", out, want)
		}
	}
	runCLI(t, "", "version", "extra").fails(t, 2)
}

// requireTool finds a program the test needs. Under CI its absence fails
// the test (.ci/run installs it); elsewhere the test is skipped, saying so.
func requireTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed (Debian package %s); .ci/run installs it", name, debianPackage)
	}
	t.Skipf("SKIPPED: %s is not installed (apt-get install %s): the deployment file is not checked", name, debianPackage)
	return ""
}

// The systemd unit in the repository is one systemd accepts without a
// warning, and its sandboxing rates as systemd's "OK" exposure or better.
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(systemdUnitPath)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(raw)
	for _, want := range []string{
		"ExecStart=/usr/local/bin/provider serve --config /etc/provider/config.yaml",
		"ExecReload=/bin/kill -HUP $MAINPID",
		"DynamicUser=yes", "StateDirectory=provider", "ProtectSystem=strict", "NoNewPrivileges=yes",
		"storage: {bolt: /var/lib/provider/provider.db}", "keys: {dir: /var/lib/provider/keys}",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("provider.service lacks %q", want)
		}
	}
	// The paths the unit's comment gives make a valid config.
	checkDocumentedConfig(t, "storage: {bolt: /var/lib/provider/provider.db}\nkeys: {dir: /var/lib/provider/keys}\n")

	analyze := requireTool(t, "systemd-analyze", "systemd")
	// verify checks that the ExecStart program exists: point it at this
	// test binary, which does.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(t.TempDir(), "provider.service")
	writeFile(t, local, strings.ReplaceAll(unit, "/usr/local/bin/provider", self))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	verify := exec.CommandContext(ctx, analyze, "verify", local)
	verify.Stdout, verify.Stderr = &out, &out
	if err := verify.Run(); err != nil || out.Len() > 0 {
		// An unknown or misspelt directive is only a warning, so any output fails.
		t.Errorf("systemd-analyze verify: %v\n%s", err, out.String())
	}
	out.Reset()
	// --threshold is the exposure level times ten: 2.0 or below.
	security := exec.CommandContext(ctx, analyze, "security", "--offline=true", "--threshold=20", local)
	security.Stdout, security.Stderr = &out, &out
	if err := security.Run(); err != nil {
		t.Errorf("systemd-analyze security: exposure above 2.0 (%v)\n%s", err, lastLines(out.String(), 3))
	}
}

// The Dockerfile builds a static binary onto a non-root distroless image
// with the data in a volume; it is built with Docker only where an engine
// runs (CI has none, and no registry to pull the base images from).
func TestDockerfile(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	df := string(raw)
	for _, re := range []string{
		`(?m)^FROM golang:1\.\d+\S* AS build$`,
		`(?m)^RUN CGO_ENABLED=0 go build -trimpath`,
		`-o /out/provider \./cmd/provider`,
		`(?m)^FROM gcr\.io/distroless/static-debian\d+:nonroot$`,
		`(?m)^USER nonroot:nonroot$`,
		`(?m)^VOLUME /data$`,
		`(?m)^ENTRYPOINT \["/usr/local/bin/provider"\]$`,
		`(?m)^CMD \["serve", "--config", "/etc/provider/config.yaml"\]$`,
	} {
		if !regexp.MustCompile(re).MatchString(df) {
			t.Errorf("Dockerfile does not match %s", re)
		}
	}
	checkDocumentedConfig(t, "listen: 0.0.0.0:8080\nstorage: {bolt: /data/provider.db}\nkeys: {dir: /data/keys}\n")

	docker, err := exec.LookPath("docker")
	if err != nil || exec.Command(docker, "info").Run() != nil {
		t.Log("NOTE: no Docker engine here: the Dockerfile was checked but not built")
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, docker, "build", "-q", "-f", dockerfilePath, "../..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Errorf("docker build: %v\n%s", err, lastLines(string(out), 20))
	}
}

// checkDocumentedConfig loads a config made of a deployment file's
// documented lines and an issuer, as `serve` would.
func checkDocumentedConfig(t *testing.T, documented string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, path, "issuer: https://sso.example.org\n"+documented)
	if _, err := loadConfig(path); err != nil {
		t.Errorf("the documented config does not load: %v", err)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
