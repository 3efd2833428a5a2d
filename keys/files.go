package keys

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/smallsso/provider/storage/owner"
)

// PermissionError reports a key or secret file that group or others may
// access. Such a file is refused, not silently fixed: the key may already
// have leaked, and only the operator can decide whether to rotate.
type PermissionError struct {
	Path string
	Mode fs.FileMode
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("keys: %s has mode %#o, want 0600 (chmod 600 it, and rotate if it may have leaked)", e.Path, e.Mode.Perm())
}

// writeFileAtomic replaces dir/name so that every process sees either the
// old or the new content, never a torn file, and the new content survives a
// crash once this returns.
func writeFileAtomic(dir, name string, data []byte) error {
	tmp, err := writeTemp(dir, name, data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("keys: write %s: %w", name, err)
	}
	return syncDir(dir)
}

// createExclusive creates dir/name only if it does not exist yet, failing
// with an error matching fs.ErrExist otherwise. A hard link, unlike
// O_EXCL, never exposes a half-written file to a racing reader.
func createExclusive(dir, name string, data []byte) error {
	tmp, err := writeTemp(dir, name, data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("keys: create %s: %w", name, err)
	}
	return syncDir(dir)
}

// writeTemp writes data to a synced, 0600 temporary file beside its final
// name, so the rename or link that follows stays within one file system.
func writeTemp(dir, name string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("keys: write %s: %w", name, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// Written by root (the CLI while the server is stopped), the
		// file gets the directory's owner, the server's user.
		err = owner.Like(f.Name(), dir)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("keys: write %s: %w", name, err)
	}
	return f.Name(), nil
}

// syncDir makes a rename or link durable: without it a crash can lose the
// directory entry even though the file's data reached the disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("keys: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("keys: sync %s: %w", dir, err)
	}
	return nil
}
