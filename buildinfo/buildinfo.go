// Package buildinfo says which build of the provider is running: version,
// VCS revision, Go version and build settings, as the Go toolchain
// recorded them (runtime/debug.ReadBuildInfo). `provider version` prints
// it and the metrics export it as provider_build_info.
//
// It is a leaf: it imports nothing of this module.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// version may be set at link time, for builds from a source archive that
// carry no VCS information:
//
//	go build -ldflags "-X github.com/smallsso/provider/buildinfo.version=v1.2.3" -o provider ./cmd/provider
var version string

// Info is what the binary knows of its own build.
type Info struct {
	// Version is the module version (v1.2.3 for `go install
	// ...@v1.2.3`), the -X version, or "(devel)" for a build from a
	// checkout.
	Version string `json:"version"`
	// Revision is the VCS commit, with Modified set when the work tree
	// had uncommitted changes; both empty when built with -buildvcs=false.
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"` // the commit's time (RFC 3339)
	Modified bool   `json:"modified,omitempty"`
	// GoVersion is the toolchain that built the binary.
	GoVersion string `json:"go_version"`
	// Settings are the build flags: -tags, -ldflags, CGO_ENABLED, GOOS,
	// GOARCH... (debug.BuildSetting keys, vcs.* left out).
	Settings [][2]string `json:"settings,omitempty"`
}

// Read returns the running binary's build information.
func Read() Info {
	info := Info{Version: "(devel)", GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		if v := bi.Main.Version; v != "" {
			info.Version = v
		}
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Revision = s.Value
			case "vcs.time":
				info.Time = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			case "vcs":
			default:
				info.Settings = append(info.Settings, [2]string{s.Key, s.Value})
			}
		}
	}
	if version != "" {
		info.Version = version
	}
	return info
}
