//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package keys

import "os"

// lockDir is a no-op where flock is unavailable: writers in one process are
// still serialised, but a CLI and a server may race on the manifest.
func lockDir(string) (func(), error) { return func() {}, nil }

// checkPrivate accepts everything where Unix permission bits do not
// describe who can read a file.
func checkPrivate(string, os.FileInfo) error { return nil }
