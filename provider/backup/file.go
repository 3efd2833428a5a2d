package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/smallsso/provider/storage/bolt"
)

// CopyDB writes a consistent copy of the database to w and returns its
// size: bolt.Store.Backup in a server, bolt.BackupFile without one.
type CopyDB func(ctx context.Context, w io.Writer) (int64, error)

// ErrExists means the output file exists and was not to be overwritten.
var ErrExists = errors.New("already exists")

// Database writes a backup of the database to out: into a temporary file
// beside it (mode 0600), which is synced and verified (bolt.Verify), then
// put in place in one step, so out is never a half-written file. An
// existing out is kept, with an error matching ErrExists, unless force.
func Database(ctx context.Context, out string, force bool, copyDB CopyDB) (int64, error) {
	return writeFile(out, force, func(f *os.File) error {
		_, err := copyDB(ctx, f)
		return err
	}, func(path string) error {
		_, err := bolt.Verify(path)
		if err != nil {
			return fmt.Errorf("the copy does not verify: %w", err)
		}
		return nil
	})
}

// writeFile fills a synced temporary file beside out, checks it, and
// links it to out (renames over out when force). It returns the size.
func writeFile(out string, force bool, fill func(*os.File) error, check func(path string) error) (int64, error) {
	if !force {
		if _, err := os.Lstat(out); err == nil {
			return 0, fmt.Errorf("%s %w (--force replaces it)", out, ErrExists)
		}
	}
	tmp, err := createTemp(out)
	if err != nil {
		return 0, err
	}
	path := tmp.Name()
	defer os.Remove(path)
	err = fill(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	if check != nil {
		if err := check(path); err != nil {
			return 0, err
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	if force {
		err = os.Rename(path, out)
	} else {
		// A link, unlike a rename, never replaces a file that appeared
		// meanwhile.
		err = os.Link(path, out)
		if errors.Is(err, fs.ErrExist) {
			return 0, fmt.Errorf("%s %w (--force replaces it)", out, ErrExists)
		}
	}
	if err != nil {
		return 0, err
	}
	return st.Size(), bolt.SyncDir(filepath.Dir(out))
}

// createTemp makes a 0600 temporary file beside path, so that renaming it
// to path stays within one file system.
func createTemp(path string) (*os.File, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, err
	}
	// CreateTemp already makes 0600; say so for umask-proof clarity.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}
