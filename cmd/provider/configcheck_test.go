package main

import (
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
