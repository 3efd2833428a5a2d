package bolt

// Backups, verification and compaction of the database file. A backup is
// a plain bbolt file, the state after one commit, written by a read
// transaction (Tx.WriteTo) while writers go on; it opens like the live file.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"

	bberrors "go.etcd.io/bbolt/errors"

	"github.com/smallsso/provider/storage/owner"
)

// readableSchemas are the layout versions Open reads (and upgrades to
// schemaVersion): a backup of one of them may be restored.
var readableSchemas = []string{"1", schemaVersion}

// Backup writes a consistent copy of the database to w: every commit made
// before it began, none made after. Writers are not held up, except a
// commit that must grow the file, which waits for the copy to finish
// (bbolt remaps the file only between read transactions). It returns the
// number of bytes written; ctx ends the copy early.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	return backup(ctx, s.db, w)
}

func backup(ctx context.Context, db *bbolt.DB, w io.Writer) (int64, error) {
	var n int64
	err := db.View(func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(ctxWriter{ctx, w})
		return err
	})
	return n, wrap("backup", err)
}

// BackupFile writes a backup of the database file at path to w without a
// server: it opens the file read-only (no schema upgrade, so a backup
// taken before an upgrade stays readable by the old build) with a shared
// lock, which fails with ErrLocked while a server holds the file.
func BackupFile(ctx context.Context, path string, w io.Writer, timeout time.Duration) (int64, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("database %s: %w", path, err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: lockTimeout(timeout)})
	if errors.Is(err, bberrors.ErrTimeout) {
		return 0, fmt.Errorf("open bolt %s: %w", path, ErrLocked)
	}
	if err != nil {
		return 0, fmt.Errorf("open bolt %s: %w", path, err)
	}
	defer db.Close()
	return backup(ctx, db, w)
}

// ctxWriter stops a copy once its context ends.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// FileInfo describes a database file that Verify accepted.
type FileInfo struct {
	// Schema is the file's layout version; Open upgrades an older one.
	Schema string
	// Size is the file's size in bytes.
	Size int64
	// Users and Clients count the records, for the operator to recognise
	// the backup.
	Users, Clients int
}

// Verify checks that path is a whole, consistent database file of a
// schema this build reads, without changing it: a backup to restore, or a
// compacted copy before it replaces the original. It never panics on a
// damaged file.
func Verify(path string) (FileInfo, error) {
	info := FileInfo{}
	st, err := os.Stat(path)
	if err != nil {
		return info, err
	}
	if !st.Mode().IsRegular() {
		return info, fmt.Errorf("%s is not a regular file", path)
	}
	info.Size = st.Size()
	if info.Size == 0 {
		return info, errors.New("the file is empty")
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: defaultTimeout})
	if err != nil {
		return info, fmt.Errorf("not a database file: %w", err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		// A truncated copy keeps its header: pages past the end of the
		// file would fault when read, so compare before reading any.
		if tx.Size() > info.Size {
			return fmt.Errorf("truncated: %d bytes, its header says %d", info.Size, tx.Size())
		}
		for err := range tx.Check() {
			return fmt.Errorf("damaged: %w", err)
		}
		meta := tx.Bucket([]byte(bucketMeta))
		if meta == nil {
			return errors.New("not a provider database (no meta bucket)")
		}
		info.Schema = string(meta.Get([]byte(keySchema)))
		if !readable(info.Schema) {
			return fmt.Errorf("schema version %q, this build reads %q", info.Schema, readableSchemas)
		}
		if b := tx.Bucket([]byte(bucketUsers)); b != nil {
			info.Users = b.Stats().KeyN
		}
		if b := tx.Bucket([]byte(bucketClients)); b != nil {
			info.Clients = b.Stats().KeyN
		}
		return nil
	})
	return info, err
}

func readable(schema string) bool {
	for _, s := range readableSchemas {
		if schema == s {
			return true
		}
	}
	return false
}

// Compact rewrites the database file at path without the free pages the
// janitor left: into a new file beside it, which is verified, synced and
// renamed over the original. It holds the file's lock throughout, so it
// fails with ErrLocked while a server runs, and a server started
// meanwhile waits, then opens the new file (Open). It returns the sizes
// before and after; when the rewrite would not be smaller, the file is
// left as it was and both are its size.
func Compact(path string, timeout time.Duration) (before, after int64, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, 0, fmt.Errorf("database %s: %w", path, err)
	}
	before = st.Size()
	// Not read-only: the exclusive lock keeps servers out until the new
	// file is in place. NoFreelistSync: opening must not write.
	src, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: lockTimeout(timeout), NoFreelistSync: true, FreelistType: bbolt.FreelistMapType})
	if errors.Is(err, bberrors.ErrTimeout) {
		return before, 0, fmt.Errorf("open bolt %s: %w", path, ErrLocked)
	}
	if err != nil {
		return before, 0, fmt.Errorf("open bolt %s: %w", path, err)
	}
	defer src.Close()
	err = src.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket([]byte(bucketMeta))
		if meta == nil {
			return errors.New("not a provider database (no meta bucket)")
		}
		if v := string(meta.Get([]byte(keySchema))); !readable(v) {
			return fmt.Errorf("schema version %q, this build reads %q", v, readableSchemas)
		}
		return nil
	})
	if err != nil {
		return before, 0, fmt.Errorf("compact %s: %w", path, err)
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".compact-*.tmp")
	if err != nil {
		return before, 0, fmt.Errorf("compact: %w", err)
	}
	tmpPath := tmp.Name()
	tmp.Close()
	done := false
	defer func() {
		if !done {
			os.Remove(tmpPath)
		}
	}()
	dst, err := bbolt.Open(tmpPath, 0o600, &bbolt.Options{Timeout: defaultTimeout})
	if err != nil {
		return before, 0, fmt.Errorf("compact: %w", err)
	}
	// Commits every 64 MiB of records bound the memory a large file needs.
	err = bbolt.Compact(dst, src, 64<<20)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return before, 0, fmt.Errorf("compact: %w", err)
	}
	info, err := Verify(tmpPath)
	if err != nil {
		return before, 0, fmt.Errorf("compact: the new file does not verify: %w", err)
	}
	if info.Size >= before {
		// Nothing to gain (a small or already compact file): keep it.
		return before, before, nil
	}
	// Run as root, the new file gets the old one's owner, so that a
	// server running as another user can open it.
	if err := owner.Like(tmpPath, path); err != nil {
		return before, 0, fmt.Errorf("compact: %w", err)
	}
	if err := os.Rename(tmpPath, path); err != nil {
		return before, 0, fmt.Errorf("compact: %w", err)
	}
	done = true
	return before, info.Size, SyncDir(filepath.Dir(path))
}

// SyncDir makes a rename in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func lockTimeout(t time.Duration) time.Duration {
	if t <= 0 {
		return defaultTimeout
	}
	return t
}

// openLocked is bbolt.Open, again if the file at path was replaced (a
// restore or compaction renamed a new one over it) while this open waited
// for the lock: the lock it got is then the old file's, whose writes
// nobody would ever read.
func openLocked(path string, opts *bbolt.Options) (*bbolt.DB, error) {
	for range 3 {
		before, _ := os.Stat(path)
		db, err := bbolt.Open(path, 0o600, opts)
		if err != nil {
			return nil, err
		}
		after, err := os.Stat(path)
		if before == nil || err == nil && os.SameFile(before, after) {
			return db, nil
		}
		_ = db.Close()
	}
	return nil, errors.New("the file kept being replaced while this open waited for its lock")
}
