package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	info := Read()
	if info.Version == "" || info.GoVersion != runtime.Version() || info.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("Read() = %+v", info)
	}
	// Tests run with -race: the setting is among those shown.
	if raceEnabled && !strings.Contains(info.Flags(), "-race=true") {
		t.Errorf("Flags() = %q, want -race=true in a -race build", info.Flags())
	}
}

func TestLinkTimeVersionWins(t *testing.T) {
	old := Version
	t.Cleanup(func() { Version = old })
	Version = "v9.9.9"
	if got := Read().Version; got != "v9.9.9" {
		t.Errorf("Version = %q, want the link-time v9.9.9", got)
	}
}

func TestShortCommit(t *testing.T) {
	for commit, want := range map[string]string{"": "unknown", "abc": "abc", "0123456789abcdef": "0123456789ab"} {
		if got := (Info{Commit: commit}).ShortCommit(); got != want {
			t.Errorf("ShortCommit(%q) = %q, want %q", commit, got, want)
		}
	}
}
