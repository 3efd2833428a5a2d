// Package buildinfo says which build of the provider is running: its
// version, commit, Go version and build settings, as the Go toolchain
// stamped them into the binary. `provider version` prints it and the
// metrics expose it. It imports nothing of the provider.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Version, when set at link time (-ldflags "-X
// github.com/smallsso/provider/provider/buildinfo.Version=v1.2.3"), wins
// over the module version Go stamps: a release built from a tarball has no
// VCS information to stamp.
var Version string

// Info is one binary's build.
type Info struct {
	// Version is the release (v1.2.3), a pseudo-version for a build from a
	// Git checkout, or "(devel)" when nothing better is known.
	Version string
	// Commit and CommitTime come from the Git checkout it was built in;
	// Modified says the checkout had uncommitted changes.
	Commit, CommitTime string
	Modified           bool
	// GoVersion and Platform (GOOS/GOARCH) are the toolchain's.
	GoVersion, Platform string
	// Settings are the other build settings worth knowing when reading a
	// bug report: CGO_ENABLED, -trimpath, -race, -tags, -ldflags, GOAMD64.
	Settings []Setting
}

// Setting is one build setting.
type Setting struct{ Key, Value string }

// settingsShown are the build settings that change behaviour or
// performance; the rest (compiler, buildmode) are the same in every build.
var settingsShown = map[string]bool{
	"CGO_ENABLED": true, "-trimpath": true, "-race": true, "-tags": true,
	"-ldflags": true, "GOAMD64": true, "GOARM64": true, "GOEXPERIMENT": true,
}

// Read reads the running binary's build information.
func Read() Info {
	info := Info{Version: "(devel)", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		if v := bi.Main.Version; v != "" {
			info.Version = v
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision":
				info.Commit = s.Value
			case s.Key == "vcs.time":
				info.CommitTime = s.Value
			case s.Key == "vcs.modified":
				info.Modified = s.Value == "true"
			case settingsShown[s.Key]:
				info.Settings = append(info.Settings, Setting{s.Key, s.Value})
			}
		}
	}
	if Version != "" {
		info.Version = Version
	}
	return info
}

// ShortCommit is the commit's first 12 hex digits, or "unknown".
func (i Info) ShortCommit() string {
	if i.Commit == "" {
		return "unknown"
	}
	return i.Commit[:min(12, len(i.Commit))]
}

// Flags are the build settings as one line: "CGO_ENABLED=0 -trimpath=true".
func (i Info) Flags() string {
	parts := make([]string, 0, len(i.Settings))
	for _, s := range i.Settings {
		parts = append(parts, s.Key+"="+s.Value)
	}
	return strings.Join(parts, " ")
}
