// Package owner gives the files a command run as root creates the owner
// of what they replace, so that a server running as another user (a
// systemd DynamicUser, nobody) can still open them after a restore, a
// compaction or an admin command run by root while it was stopped. Run
// as any other user it does nothing: the new files are that user's, as
// the old ones could only be if that user could replace them.
//
// It imports only the standard library; everything may import it.
package owner

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// geteuid is os.Geteuid; tests of the non-root path replace it.
var geteuid = os.Geteuid

// Like gives path the owner of the first of refs that exists (the file
// it replaces, then its directory...) when the process runs as root; else,
// or when none exists, it does nothing.
func Like(path string, refs ...string) error {
	uid, gid, ok, err := firstOwner(refs)
	if !ok || err != nil {
		return err
	}
	return chown(path, uid, gid)
}

// TreeLike gives dir and everything in it the owner of the first of refs
// that exists, when the process runs as root; else it does nothing.
func TreeLike(dir string, refs ...string) error {
	uid, gid, ok, err := firstOwner(refs)
	if !ok || err != nil {
		return err
	}
	return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return chown(path, uid, gid)
	})
}

// firstOwner is the owner of the first of refs that exists; ok is false
// when none does, or when the process is not root (it could give files
// to nobody else).
func firstOwner(refs []string) (uid, gid int, ok bool, err error) {
	if geteuid() != 0 {
		return 0, 0, false, nil
	}
	for _, ref := range refs {
		uid, gid, err := Of(ref)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		return uid, gid, err == nil, err
	}
	return 0, 0, false, nil
}

func chown(path string, uid, gid int) error {
	if err := os.Lchown(path, uid, gid); err != nil {
		return fmt.Errorf("give %s the owner of the file it replaces: %w", path, err)
	}
	return nil
}
