package keys

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// File is one file of a key directory, as a backup keeps it.
type File struct {
	Name string
	Data []byte
}

// Snapshot reads every file of the key directory that a backup must keep
// (the manifest, the key files, the secrets such as provider.secret), under
// the directory lock, so a rotation in another process is seen whole or
// not at all. The lock file and writers' temporary files are left out. A
// missing directory is an empty snapshot. Files are sorted by name.
func Snapshot(dir string) ([]File, error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	var out []File
	for _, e := range entries {
		if !SnapshotName(e.Name()) {
			continue
		}
		if !e.Type().IsRegular() {
			return nil, fmt.Errorf("keys: %s is not a regular file", filepath.Join(dir, e.Name()))
		}
		data, _, err := readPrivateFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, File{Name: e.Name(), Data: data})
	}
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// SnapshotName reports whether a file called name belongs in a snapshot
// of the key directory: not the lock file, not a writer's temporary file
// (".name.*.tmp"), and a plain file name.
func SnapshotName(name string) bool {
	return name != "keys.lock" && // lockName, which only flock platforms define
		!strings.HasPrefix(name, ".") && name != "" &&
		!strings.ContainsAny(name, `/\`) && filepath.Base(name) == name
}
