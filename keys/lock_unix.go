//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package keys

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/smallsso/provider/storage/owner"
)

const lockName = "keys.lock"

// lockDir takes an exclusive flock on the directory's lock file, so a CLI
// rotation and a server filling in a missing algorithm cannot overwrite
// each other's manifest. Writers hold it for milliseconds: keys are
// generated before it is taken.
func lockDir(dir string) (func(), error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("keys: open %s: %w", path, err)
	}
	if err := owner.Like(path, dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("keys: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("keys: lock %s: %w", path, err)
	}
	// Closing the descriptor releases the lock.
	return func() { f.Close() }, nil
}

func checkPrivate(path string, info os.FileInfo) error {
	if info.Mode().Perm()&0o077 != 0 {
		return &PermissionError{Path: path, Mode: info.Mode()}
	}
	return nil
}
