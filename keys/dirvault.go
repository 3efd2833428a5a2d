package keys

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/smallsso/provider/storage/owner"
)

// dirVault keeps the keys as files in one directory (see the package
// comment): a flock'd keys.lock serialises writers, files are replaced by
// atomic renames followed by a directory fsync, and files holding secrets
// must be mode 0600.
type dirVault struct {
	dir string
	log *slog.Logger // nil: discard
}

// DirVault is the vault of the key directory dir, as Open uses it. The
// directory is created (0700, owned like its parent) when a Manager
// opens it or Copy writes into it.
func DirVault(dir string) Vault { return &dirVault{dir: dir} }

// prepare creates the directory if needed.
func (d *dirVault) prepare() error {
	if d.dir == "" {
		return errors.New("keys: empty directory")
	}
	_, statErr := os.Lstat(d.dir)
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return fmt.Errorf("keys: create %s: %w", d.dir, err)
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		// Made by root (the CLI while the server is stopped), the
		// directory gets its parent's owner, the server's user.
		if err := owner.Like(d.dir, filepath.Dir(d.dir)); err != nil {
			return fmt.Errorf("keys: %w", err)
		}
	}
	return nil
}

func (d *dirVault) logger() *slog.Logger {
	if d.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.log
}

// Stamp identifies the manifest file by device, inode, modification time
// and size. Every write renames a new file into place, so the inode
// changes too, which catches two writes within one mtime tick that happen
// to produce the same size.
func (d *dirVault) Stamp() (string, error) {
	info, err := os.Stat(filepath.Join(d.dir, manifestName))
	if err != nil {
		return "", err
	}
	return fileStamp(info), nil
}

func fileStamp(info os.FileInfo) string {
	if info == nil {
		return ""
	}
	return fmt.Sprintf("%s/%d/%d", fileID(info), info.ModTime().UnixNano(), info.Size())
}

// ReadManifest returns the content and the stamp of the same open file,
// so the stamp recorded for a manifest matches the bytes that were parsed.
func (d *dirVault) ReadManifest() ([]byte, string, error) {
	data, info, err := readFile(filepath.Join(d.dir, manifestName))
	return data, fileStamp(info), err
}

func (d *dirVault) ReadKey(kid string) ([]byte, error) {
	if !validName(kid) {
		return nil, fmt.Errorf("keys: invalid kid %q", kid)
	}
	data, _, err := readPrivateFile(filepath.Join(d.dir, keyFileName(kid)))
	return data, err
}

// Update holds the directory lock. Files are ordered for crash safety:
// new key files before the manifest that names them, and deletions after
// the manifest that drops them (a failed deletion only leaves an orphan
// behind, so it is logged, not returned).
func (d *dirVault) Update(fn func([]byte, func(string) ([]byte, error)) ([]byte, map[string][]byte, []string, error)) (string, error) {
	if d.dir == "" {
		return "", errors.New("keys: empty directory")
	}
	unlock, err := lockDir(d.dir)
	if err != nil {
		return "", err
	}
	defer unlock()

	data, stamp, err := d.ReadManifest()
	if errors.Is(err, fs.ErrNotExist) {
		data, stamp, err = nil, "", nil
	}
	if err != nil {
		return "", err
	}
	next, put, remove, err := fn(data, d.ReadKey)
	if err != nil {
		return "", err
	}
	if next == nil {
		return stamp, nil
	}
	if err := d.persist(next, put); err != nil {
		return "", err
	}
	for _, kid := range remove {
		if err := os.Remove(filepath.Join(d.dir, keyFileName(kid))); err != nil && !errors.Is(err, os.ErrNotExist) {
			d.logger().Warn("keys: remove pruned key", "kid", kid, "err", err)
		}
	}
	info, err := os.Stat(filepath.Join(d.dir, manifestName))
	if err != nil {
		// An empty stamp makes the next read reload from disk.
		return "", nil
	}
	return fileStamp(info), nil
}

// persist writes the new key files, then the manifest. If that fails the
// key files are removed again, since nothing names them.
func (d *dirVault) persist(manifest []byte, put map[string][]byte) error {
	var written []string
	err := func() error {
		for _, kid := range slices.Sorted(maps.Keys(put)) {
			if !validName(kid) {
				return fmt.Errorf("keys: invalid kid %q", kid)
			}
			if err := writeFileAtomic(d.dir, keyFileName(kid), put[kid]); err != nil {
				return err
			}
			written = append(written, filepath.Join(d.dir, keyFileName(kid)))
		}
		return writeFileAtomic(d.dir, manifestName, manifest)
	}()
	if err != nil {
		for _, path := range written {
			os.Remove(path)
		}
	}
	return err
}

func secretFileName(name string) string { return name + ".secret" }

func (d *dirVault) ReadSecret(name string) ([]byte, error) {
	if !validName(name) {
		return nil, fmt.Errorf("keys: invalid secret name %q", name)
	}
	data, _, err := readPrivateFile(filepath.Join(d.dir, secretFileName(name)))
	return data, err
}

func (d *dirVault) CreateSecret(name string, value []byte) ([]byte, error) {
	if !validName(name) {
		return nil, fmt.Errorf("keys: invalid secret name %q", name)
	}
	err := createExclusive(d.dir, secretFileName(name), value)
	if errors.Is(err, fs.ErrExist) {
		// Another process won the race; its value is the one to use.
		return d.ReadSecret(name)
	}
	if err != nil {
		return nil, err
	}
	return value, nil
}

// SecretNames lists the <name>.secret files. A missing directory has
// none.
func (d *dirVault) SecretNames() ([]string, error) {
	if d.dir == "" {
		return nil, errors.New("keys: empty directory")
	}
	entries, err := os.ReadDir(d.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	var out []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".secret")
		if ok && validName(name) {
			out = append(out, name)
		}
	}
	return out, nil
}
