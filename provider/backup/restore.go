package backup

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/smallsso/provider/keys"
	"github.com/smallsso/provider/storage/bolt"
	"github.com/smallsso/provider/storage/owner"
)

// ErrServerRunning means a server holds the database: a restore never
// replaces a running server's file.
var ErrServerRunning = errors.New("a server is running on this database")

// RestoreOptions says what to restore where.
type RestoreOptions struct {
	From    string // a database backup or a bundle
	DB      string // the database file to replace
	KeysDir string // the key directory a bundle restores
	// Force lets a bundle replace a key directory that holds other keys
	// (they are kept beside it).
	Force bool
	// Passphrase is asked only when From is a bundle.
	Passphrase func() (string, error)
	// LockTimeout bounds the wait for the database lock.
	LockTimeout time.Duration
	// ServerAnswers, when set, reports whether a server answers for the
	// database; it tells a running server from another lock holder.
	ServerAnswers func() bool
	Now           func() time.Time
}

// KeysOutcome is what a restore did to the key directory.
type KeysOutcome int

const (
	KeysUntouched KeysOutcome = iota // a plain database backup has no keys
	KeysSame                         // the directory already held the bundle's keys
	KeysInstalled                    // the directory was empty or absent
	KeysReplaced                     // other keys were kept aside (Force)
)

// RestoreResult reports what Restore did.
type RestoreResult struct {
	Info bolt.FileInfo
	// KeptDB is where the previous database was kept; empty if there was
	// none.
	KeptDB string
	Keys   KeysOutcome
	// KeptKeys is where the previous key directory was kept (KeysReplaced).
	KeptKeys string
	// Changed reports that a file was moved: after an error, the restore
	// may be half done.
	Changed bool
}

// Restore puts the backup in From in place of the database (and, for a
// bundle, of the key directory). Everything is checked before anything is
// replaced: the database lock (ErrServerRunning while a server holds it),
// the passphrase and integrity of a bundle, and that the database opens,
// is consistent and has a schema this build reads (bolt.Verify). The
// previous database is kept as DB.before-restore-<time>; the new one
// replaces it with one rename.
func Restore(o RestoreOptions) (RestoreResult, error) {
	var res RestoreResult
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	stamp := now().UTC().Format("20060102T150405Z")

	unlock, err := bolt.Lock(o.DB, o.LockTimeout)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		unlock = func() {}
	case errors.Is(err, bolt.ErrLocked):
		if o.ServerAnswers != nil && o.ServerAnswers() {
			return res, fmt.Errorf("%w (%s); stop it first", ErrServerRunning, o.DB)
		}
		return res, fmt.Errorf("database %s is locked by another process; stop it first", o.DB)
	case err != nil:
		return res, err
	}
	defer unlock()

	from, err := os.Open(o.From)
	if err != nil {
		return res, err
	}
	defer from.Close()
	bundle := isBundle(from)

	dbDir := filepath.Dir(o.DB)
	if err := os.MkdirAll(dbDir, 0o700); err != nil {
		return res, err
	}
	stage, err := os.MkdirTemp(dbDir, "."+filepath.Base(o.DB)+".restore-*")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(stage)
	stagedDB := filepath.Join(stage, "provider.db")

	var stagedKeys string
	if bundle {
		if o.Passphrase == nil {
			return res, errors.New("the backup is an encrypted bundle and no passphrase was given")
		}
		pass, err := o.Passphrase()
		if err != nil {
			return res, err
		}
		if err := os.MkdirAll(filepath.Dir(o.KeysDir), 0o700); err != nil {
			return res, err
		}
		stagedKeys, err = os.MkdirTemp(filepath.Dir(o.KeysDir), "."+filepath.Base(o.KeysDir)+".restore-*")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(stagedKeys)
		if err := unbundle(from, pass, stagedDB, stagedKeys); err != nil {
			return res, err
		}
	} else if err := copyTo(stagedDB, from); err != nil {
		return res, err
	}

	res.Info, err = bolt.Verify(stagedDB)
	if err != nil {
		return res, fmt.Errorf("%s is not a database backup this build can restore: %w", o.From, err)
	}

	// Decide about the key directory before replacing anything.
	var current []keys.File
	if bundle {
		current, err = keys.Snapshot(o.KeysDir)
		if err != nil {
			return res, err
		}
		restored, err := keys.Snapshot(stagedKeys)
		if err != nil {
			return res, err
		}
		switch {
		case len(current) == 0:
			res.Keys = KeysInstalled
		case sameFiles(current, restored):
			res.Keys = KeysSame
		case !o.Force:
			return res, fmt.Errorf("key directory %s holds other keys than the bundle; --force keeps them as %s.before-restore-%s and restores the bundle's", o.KeysDir, o.KeysDir, stamp)
		default:
			res.Keys = KeysReplaced
		}
	}

	// Run as root, the new files get the owner of those they replace, so
	// that a server running as another user can open them.
	if res.Keys == KeysInstalled || res.Keys == KeysReplaced {
		if err := owner.TreeLike(stagedKeys, o.KeysDir, filepath.Dir(o.KeysDir)); err != nil {
			return res, err
		}
	}
	if err := owner.Like(stagedDB, o.DB, dbDir); err != nil {
		return res, err
	}

	switch res.Keys {
	case KeysInstalled:
		// An absent directory, or one with only the lock file left.
		if err := removeEmptyKeysDir(o.KeysDir); err != nil {
			return res, err
		}
		res.Changed = true
		if err := os.Rename(stagedKeys, o.KeysDir); err != nil {
			return res, err
		}
	case KeysReplaced:
		res.KeptKeys = keepName(o.KeysDir, stamp)
		if err := os.Rename(o.KeysDir, res.KeptKeys); err != nil {
			return res, err
		}
		res.Changed = true
		if err := os.Rename(stagedKeys, o.KeysDir); err != nil {
			// Put the old keys back: the database has not changed yet.
			_ = os.Rename(res.KeptKeys, o.KeysDir)
			return res, err
		}
	}
	if res.Keys == KeysInstalled || res.Keys == KeysReplaced {
		if err := bolt.SyncDir(filepath.Dir(o.KeysDir)); err != nil {
			return res, err
		}
	}

	if _, err := os.Lstat(o.DB); err == nil {
		// A second name for the old file, then one rename puts the new
		// one in place: the path never lacks a database.
		res.KeptDB = keepName(o.DB, stamp)
		if err := os.Link(o.DB, res.KeptDB); err != nil {
			return res, fmt.Errorf("keep the current database: %w", err)
		}
	}
	if err := os.Rename(stagedDB, o.DB); err != nil {
		if res.KeptDB != "" {
			os.Remove(res.KeptDB)
		}
		return res, err
	}
	res.Changed = true
	return res, bolt.SyncDir(dbDir)
}

// keepName is a free name for the file or directory at path that a
// restore keeps aside: path.before-restore-<stamp>, with "-2", "-3"...
// after it when restores follow each other within a second.
func keepName(path, stamp string) string {
	name := path + ".before-restore-" + stamp
	for i := 2; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			return name
		}
		name = fmt.Sprintf("%s.before-restore-%s-%d", path, stamp, i)
	}
}

func sameFiles(a, b []keys.File) bool {
	return slices.EqualFunc(a, b, func(x, y keys.File) bool {
		return x.Name == y.Name && bytes.Equal(x.Data, y.Data)
	})
}

// removeEmptyKeysDir removes a key directory that holds no keys (at most
// the lock file and temporary files), so the restored one can take its
// name. os.Remove refuses a directory that is not empty by then.
func removeEmptyKeysDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if keys.SnapshotName(e.Name()) {
			return fmt.Errorf("key directory %s is not empty", dir)
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return os.Remove(dir)
}
