package buildinfo

import (
	"runtime"
	"testing"
)

func TestRead(t *testing.T) {
	info := Read()
	if info.GoVersion != runtime.Version() {
		t.Errorf("GoVersion %q, want %q", info.GoVersion, runtime.Version())
	}
	if info.Version == "" {
		t.Error("no version")
	}
	for _, s := range info.Settings {
		if len(s[0]) > 4 && s[0][:4] == "vcs." {
			t.Errorf("setting %v is reported as a field, not a setting", s)
		}
	}
	// A version set at link time wins.
	defer func(v string) { version = v }(version)
	version = "v9.9.9"
	if got := Read().Version; got != "v9.9.9" {
		t.Errorf("with -X version: %q", got)
	}
}
