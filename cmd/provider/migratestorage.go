package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/smallsso/provider/keys"
	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/bolt"
	"github.com/smallsso/provider/storage/owner"
	"github.com/smallsso/provider/storage/postgres"
	"github.com/smallsso/provider/storage/transfer"
)

func newMigrateStorageCmd(e *env) *cobra.Command {
	var fromPath, toPath string
	c := &cobra.Command{
		Use:   "migrate-storage --from-config OLD --to-config NEW",
		Short: "Copy an installation between bbolt and PostgreSQL: records and keys; the servers must be stopped",
		Long: `Copy everything the installation of config OLD keeps to the storage of
config NEW: clients, users, trusted issuers, every token record (live and
rotated ones, so reuse is still detected), browser sessions, consents,
JTIs, and the signing keys with the provider secret (without which opaque
tokens stop verifying). Either side may be a bbolt file or a PostgreSQL
database; a PostgreSQL target gets its schema first.

Stop every server of OLD first: a bbolt file in use is refused, a
PostgreSQL database cannot be guarded (what servers write during the copy
is lost). NEW must be empty: no records, no keys. Nothing is changed on
OLD. A copy that fails leaves NEW incomplete: remove it (the bbolt file and
key directory, or drop and recreate the database) and run the command
again.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if fromPath == "" || toPath == "" {
				return usageError{errors.New("--from-config and --to-config are required")}
			}
			from, err := loadConfig(fromPath)
			if err != nil {
				return err
			}
			to, err := loadConfig(toPath)
			if err != nil {
				return err
			}
			return migrateStorage(cmd.Context(), from, to, e)
		},
	}
	c.Flags().StringVar(&fromPath, "from-config", "", "config of the installation to copy (OLD)")
	c.Flags().StringVar(&toPath, "to-config", "", "config of the new, empty storage (NEW)")
	return c
}

// side is one end of a migration: its config and its open store.
type side struct {
	cfg   *fileConfig
	store storage.Store
	pg    *postgres.Store // nil on bbolt
}

func (s *side) close() {
	if s.store != nil {
		s.store.Close()
	}
}

func migrateStorage(ctx context.Context, fromCfg, toCfg *fileConfig, e *env) error {
	if err := distinct(fromCfg, toCfg); err != nil {
		return err
	}
	if fromCfg.usesPostgres() {
		fmt.Fprintf(e.stdout, "OLD is %s: nothing keeps servers off it during the copy; stop every server on it first (what they write meanwhile is not copied)\n", fromCfg.describeStorage())
	}
	from, err := openSource(ctx, fromCfg)
	if err != nil {
		return err
	}
	defer from.close()
	// The keys are checked before anything is written to NEW.
	keyCopy, err := planKeyCopy(fromCfg, toCfg)
	if err != nil {
		return err
	}
	to, err := openTarget(ctx, toCfg)
	if err != nil {
		return err
	}
	defer to.close()
	what, err := transfer.Empty(ctx, to.store)
	if err != nil {
		return err
	}
	if what != "" {
		return fmt.Errorf("NEW (%s) already holds data (%s): migrate-storage copies into empty storage only; point NEW at a new bbolt file or an empty database", toCfg.describeStorage(), what)
	}
	counts, err := transfer.Copy(ctx, from.store, to.store)
	if err != nil {
		return fmt.Errorf("copying the records failed: %w; NEW (%s) is incomplete: %s", err, toCfg.describeStorage(), retryAdvice(toCfg))
	}
	keysDone, err := keyCopy(ctx, from, to)
	if err != nil {
		return fmt.Errorf("copying the keys failed: %w; NEW (%s) is incomplete: %s", err, toCfg.describeStorage(), retryAdvice(toCfg))
	}
	w := e.stdout
	fmt.Fprintf(w, "copied %s to %s:\n", fromCfg.describeStorage(), toCfg.describeStorage())
	fmt.Fprintf(w, "  %s, %s, %s\n", plural(counts.Clients, "client"), plural(counts.Users, "user"), plural(counts.TrustedIssuers, "trusted issuer"))
	kinds := make([]string, 0, len(storage.TokenKinds))
	for _, k := range storage.TokenKinds {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, counts.Tokens[k]))
	}
	fmt.Fprintf(w, "  %s (%s)\n", plural(counts.TokensTotal(), "token record"), strings.Join(kinds, ", "))
	fmt.Fprintf(w, "  %s, %s, %s\n", plural(counts.BrowserSessions, "browser session"), plural(counts.Consents, "consent"), plural(counts.JTIs, "JTI"))
	fmt.Fprintf(w, "  keys: %s\n", keysDone)
	fmt.Fprintf(w, "start the servers on NEW; OLD is unchanged, keep it until NEW serves well\n")
	return nil
}

// retryAdvice says how to start over after a failed copy.
func retryAdvice(cfg *fileConfig) string {
	if cfg.usesPostgres() {
		return "drop and recreate the database, then run migrate-storage again"
	}
	return fmt.Sprintf("remove %s and %s, then run migrate-storage again", cfg.Storage.Bolt, cfg.Keys.Dir)
}

// distinct refuses OLD and NEW that name the same storage or keys.
func distinct(from, to *fileConfig) error {
	switch {
	case from.usesPostgres() && to.usesPostgres():
		if dsnTarget(string(from.Storage.Postgres.DSN)) == dsnTarget(string(to.Storage.Postgres.DSN)) {
			return fmt.Errorf("OLD and NEW name the same database (%s)", from.describeStorage())
		}
	case !from.usesPostgres() && !to.usesPostgres():
		if samePath(from.Storage.Bolt, to.Storage.Bolt) {
			return fmt.Errorf("OLD and NEW name the same database file %s", from.Storage.Bolt)
		}
		if samePath(from.Keys.Dir, to.Keys.Dir) {
			return fmt.Errorf("OLD and NEW name the same key directory %s", from.Keys.Dir)
		}
	}
	return nil
}

func samePath(a, b string) bool {
	if ra, err := filepath.EvalSymlinks(a); err == nil {
		a = ra
	}
	if rb, err := filepath.EvalSymlinks(b); err == nil {
		b = rb
	}
	return filepath.Clean(a) == filepath.Clean(b)
}

// openSource opens OLD, which must exist and not be in use.
func openSource(ctx context.Context, cfg *fileConfig) (*side, error) {
	if cfg.usesPostgres() {
		pg, store, err := openPostgres(ctx, cfg, false, nil)
		if err != nil {
			return nil, fmt.Errorf("OLD: %w", err)
		}
		return &side{cfg: cfg, store: store, pg: pg}, nil
	}
	if _, err := os.Stat(cfg.Storage.Bolt); err != nil {
		return nil, fmt.Errorf("OLD: no database at %s (%v)", cfg.Storage.Bolt, errors.Unwrap(err))
	}
	store, err := bolt.Open(cfg.Storage.Bolt, bolt.Options{Timeout: lockWait})
	if errors.Is(err, bolt.ErrLocked) {
		return nil, fmt.Errorf("OLD: database %s is in use (is a server running on it? stop it first)", cfg.Storage.Bolt)
	}
	if err != nil {
		return nil, fmt.Errorf("OLD: %w", err)
	}
	return &side{cfg: cfg, store: store}, nil
}

// openTarget opens NEW: a PostgreSQL database gets this binary's schema.
func openTarget(ctx context.Context, cfg *fileConfig) (*side, error) {
	if cfg.usesPostgres() {
		pg, store, err := openPostgres(ctx, cfg, true, nil)
		if err != nil {
			return nil, fmt.Errorf("NEW: %w", err)
		}
		return &side{cfg: cfg, store: store, pg: pg}, nil
	}
	store, err := bolt.Open(cfg.Storage.Bolt, bolt.Options{Timeout: lockWait})
	if errors.Is(err, bolt.ErrLocked) {
		return nil, fmt.Errorf("NEW: database %s is in use (is a server running on it? stop it first)", cfg.Storage.Bolt)
	}
	if err != nil {
		return nil, fmt.Errorf("NEW: %w", err)
	}
	return &side{cfg: cfg, store: store}, nil
}

// keyCopier copies the keys once the records are copied and says what
// it copied.
type keyCopier func(ctx context.Context, from, to *side) (string, error)

// planKeyCopy checks that the keys can be copied from OLD to NEW (NEW
// holds none) and returns the copier.
func planKeyCopy(from, to *fileConfig) (keyCopier, error) {
	if from.usesPostgres() || to.usesPostgres() {
		// TODO(lead): with the keyring, every pair goes through the vaults:
		//	src := vault of from (pg.Keyring(encKey) on PostgreSQL, the key directory on bbolt)
		//	dst := vault of to, checked empty here
		//	n, err := keys.Copy(ctx, src, dst)
		// The provider secret must be among what is copied.
		return nil, fmt.Errorf("copying keys to or from PostgreSQL: %w", errDBKeysNotYet)
	}
	if files, err := keyDirFiles(to.Keys.Dir); err != nil {
		return nil, fmt.Errorf("NEW: %w", err)
	} else if len(files) > 0 {
		return nil, fmt.Errorf("NEW: the key directory %s already holds keys (%s): migrate-storage copies into an empty one", to.Keys.Dir, strings.Join(files, ", "))
	}
	return func(ctx context.Context, _, _ *side) (string, error) {
		n, err := copyKeyDir(from.Keys.Dir, to.Keys.Dir)
		if err != nil {
			return "", err
		}
		if n == 0 {
			return fmt.Sprintf("none in %s; NEW makes its own at start (tokens OLD signed will not verify)", from.Keys.Dir), nil
		}
		return fmt.Sprintf("%s from %s to %s (signing keys and the provider secret)", plural(n, "file"), from.Keys.Dir, to.Keys.Dir), nil
	}, nil
}

// keyDirFiles names the files of a key directory a snapshot would hold;
// none when it does not exist.
func keyDirFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if keys.SnapshotName(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// manifestFile is the key directory's manifest (keys/state.go): written
// last, so a copy cut short leaves no manifest naming missing keys.
const manifestFile = "keys.json"

// copyKeyDir copies the key directory from into to, which must hold no
// keys, file by file (mode 0600, directory 0700, owned like the parent
// directory when run as root), and returns how many files it copied.
//
// TODO(lead): keys.Copy may do this too once the keyring lands; then this
// goes.
func copyKeyDir(from, to string) (int, error) {
	files, err := keys.Snapshot(from) // under the directory's lock
	if err != nil {
		return 0, err
	}
	if len(files) == 0 {
		return 0, nil
	}
	slices.SortStableFunc(files, func(a, b keys.File) int {
		switch {
		case a.Name == manifestFile && b.Name != manifestFile:
			return 1
		case b.Name == manifestFile && a.Name != manifestFile:
			return -1
		}
		return 0
	})
	_, statErr := os.Lstat(to)
	if err := os.MkdirAll(to, 0o700); err != nil {
		return 0, err
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		if err := owner.Like(to, filepath.Dir(to)); err != nil {
			return 0, err
		}
	}
	for _, f := range files {
		path := filepath.Join(to, f.Name)
		if err := writeNewFile(path, f.Data); err != nil {
			return 0, err
		}
		if err := owner.Like(path, to); err != nil {
			return 0, err
		}
	}
	d, err := os.Open(to)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	return len(files), d.Sync()
}

// writeNewFile writes data to a file that must not exist yet, and syncs it.
func writeNewFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
