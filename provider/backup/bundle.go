package backup

// A bundle (backup --with-keys) is an age file (age-encryption.org/v1,
// one scrypt passphrase recipient) whose plaintext is a tar of:
//
//	bundle.json     {"format": "smallsso-provider-bundle", "version": 1, ...}
//	provider.db     the database backup
//	keys/NAME       every file of the key directory (keys.Snapshot)
//
// age authenticates every 64 KiB chunk and the end of the stream, so a
// wrong passphrase, a changed byte or a truncated file is refused before
// anything is replaced.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/smallsso/provider/keys"
	"github.com/smallsso/provider/storage/bolt"
)

const (
	bundleFormat  = "smallsso-provider-bundle"
	bundleVersion = 1
	bundleMeta    = "bundle.json"
	bundleDB      = "provider.db"
	bundleKeys    = "keys/"
	// ageMagic starts every (binary) age file.
	ageMagic = "age-encryption.org/"
	// MinPassphrase is the shortest passphrase a bundle accepts: it is all
	// that protects the signing keys and the provider secret.
	MinPassphrase = 12
	// maxKeyFile and maxKeyFiles bound what a bundle may put in the key
	// directory.
	maxKeyFile  = 1 << 20
	maxKeyFiles = 10000
)

// ErrWrongPassphrase means the passphrase does not open the bundle.
var ErrWrongPassphrase = errors.New("wrong passphrase")

type bundleHeader struct {
	Format  string    `json:"format"`
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	Schema  string    `json:"schema"`
}

// BundleOptions tunes Bundle.
type BundleOptions struct {
	// WorkFactor is scrypt's log2(N); zero means age's default, 18
	// (about a second). Tests lower it.
	WorkFactor int
	// StageDir is where the plain copy of the database waits, checked,
	// while the bundle is encrypted: the database's own directory, as
	// protected as the database. Never beside out, where an interrupted
	// run would leave the whole database, password hashes and all, in the
	// backup directory. Required.
	StageDir string
}

// Bundle writes the database and the key directory to out, encrypted with
// passphrase, as Database writes a database backup: whole or not at all,
// mode 0600, an existing out kept unless force.
func Bundle(ctx context.Context, out string, force bool, copyDB CopyDB, keysDir, passphrase string, opts BundleOptions) (int64, error) {
	if len(passphrase) < MinPassphrase {
		return 0, fmt.Errorf("the passphrase must be at least %d characters", MinPassphrase)
	}
	if !force {
		if _, err := os.Lstat(out); err == nil {
			return 0, fmt.Errorf("%s %w (--force replaces it)", out, ErrExists)
		}
	}
	files, err := keys.Snapshot(keysDir)
	if err != nil {
		return 0, err
	}
	if len(files) == 0 {
		return 0, fmt.Errorf("key directory %s holds no keys", keysDir)
	}
	recipient, err := age.NewScryptRecipient(passphrase)
	if err != nil {
		return 0, err
	}
	if opts.WorkFactor > 0 {
		recipient.SetWorkFactor(opts.WorkFactor)
	}

	// The database goes to a verified temporary file first: the tar
	// header needs its size, and a bad copy must not be bundled. It is
	// plain, so it goes in StageDir, not beside out; only the encrypted
	// file ever appears there.
	if opts.StageDir == "" {
		return 0, errors.New("bundle: no directory to stage the database copy in")
	}
	dbTmp, err := os.CreateTemp(opts.StageDir, ".bundle-stage-*.tmp")
	if err != nil {
		return 0, fmt.Errorf("stage the database copy in the database's directory (run the backup as the server's user or root): %w", err)
	}
	if err := dbTmp.Chmod(0o600); err != nil {
		dbTmp.Close()
		os.Remove(dbTmp.Name())
		return 0, err
	}
	defer os.Remove(dbTmp.Name())
	defer dbTmp.Close()
	if _, err := copyDB(ctx, dbTmp); err != nil {
		return 0, err
	}
	if err := dbTmp.Sync(); err != nil {
		return 0, err
	}
	info, err := bolt.Verify(dbTmp.Name())
	if err != nil {
		return 0, fmt.Errorf("the copy does not verify: %w", err)
	}

	return writeFile(out, force, func(f *os.File) error {
		enc, err := age.Encrypt(f, recipient)
		if err != nil {
			return err
		}
		tw := tar.NewWriter(enc)
		meta, _ := json.Marshal(bundleHeader{Format: bundleFormat, Version: bundleVersion, Created: time.Now().UTC(), Schema: info.Schema})
		if err := addFile(tw, bundleMeta, int64(len(meta)), bytes.NewReader(meta)); err != nil {
			return err
		}
		if _, err := dbTmp.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := addFile(tw, bundleDB, info.Size, dbTmp); err != nil {
			return err
		}
		for _, kf := range files {
			if err := addFile(tw, bundleKeys+kf.Name, int64(len(kf.Data)), bytes.NewReader(kf.Data)); err != nil {
				return err
			}
		}
		if err := tw.Close(); err != nil {
			return err
		}
		return enc.Close()
	}, nil)
}

func addFile(tw *tar.Writer, name string, size int64, r io.Reader) error {
	err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o600, ModTime: time.Now().UTC().Truncate(time.Second), Format: tar.FormatPAX})
	if err != nil {
		return err
	}
	n, err := io.CopyN(tw, r, size)
	if err != nil {
		return fmt.Errorf("bundle %s: %d of %d bytes: %w", name, n, size, err)
	}
	return nil
}

// isBundle reports whether the file starts like an age file.
func isBundle(r io.ReaderAt) bool {
	buf := make([]byte, len(ageMagic))
	n, _ := r.ReadAt(buf, 0)
	return n == len(buf) && string(buf) == ageMagic
}

// unbundle decrypts the bundle from r, writing the database to dbPath and
// the key files into keysDir (which exists and is empty). It reads r to
// its end, so a truncated or altered bundle fails here.
func unbundle(r io.Reader, passphrase, dbPath, keysDir string) error {
	id, err := age.NewScryptIdentity(passphrase)
	if err != nil {
		return err
	}
	plain, err := age.Decrypt(r, id)
	var nomatch *age.NoIdentityMatchError
	if errors.As(err, &nomatch) {
		return ErrWrongPassphrase
	}
	if err != nil {
		return fmt.Errorf("not a readable bundle: %w", err)
	}
	tr := tar.NewReader(plain)
	var sawDB bool
	nkeys := 0
	for i := 0; ; i++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return damaged(err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return fmt.Errorf("bundle entry %q is not a regular file", hdr.Name)
		}
		switch name := hdr.Name; {
		case i == 0:
			if name != bundleMeta || hdr.Size > 64<<10 {
				return fmt.Errorf("not a provider bundle (first entry %q)", name)
			}
			var h bundleHeader
			if err := json.NewDecoder(tr).Decode(&h); err != nil {
				return damaged(err)
			}
			if h.Format != bundleFormat || h.Version != bundleVersion {
				return fmt.Errorf("bundle format %q version %d, this build reads %q version %d", h.Format, h.Version, bundleFormat, bundleVersion)
			}
		case name == bundleDB && !sawDB:
			sawDB = true
			if err := copyTo(dbPath, tr); err != nil {
				return damaged(err)
			}
		case strings.HasPrefix(name, bundleKeys) && keys.SnapshotName(strings.TrimPrefix(name, bundleKeys)):
			nkeys++
			if hdr.Size > maxKeyFile || nkeys > maxKeyFiles {
				return fmt.Errorf("bundle entry %q is too large", name)
			}
			if err := copyTo(filepath.Join(keysDir, strings.TrimPrefix(name, bundleKeys)), tr); err != nil {
				return damaged(err)
			}
		default:
			return fmt.Errorf("unexpected bundle entry %q", name)
		}
	}
	// The tar ends before the stream does: age checks the last chunk
	// only when read to its end.
	if _, err := io.Copy(io.Discard, plain); err != nil {
		return damaged(err)
	}
	if !sawDB || nkeys == 0 {
		return errors.New("the bundle lacks the database or the keys")
	}
	return nil
}

func damaged(err error) error {
	return fmt.Errorf("the bundle is damaged or truncated: %w", err)
}

// copyTo writes r to a new 0600 file at path and syncs it.
func copyTo(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
