package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/smallsso/provider/keys"
	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/bolt"
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
	// The keys are checked, like the records, before anything is
	// copied: the encryption keys decrypt, and a NEW keyring is empty.
	if err := checkKeyrings(from, to); err != nil {
		return err
	}
	if fromCfg.usesPostgres() {
		fmt.Fprintf(e.stdout, "OLD is %s: nothing keeps servers off it during the copy; stop every server on it first (what they write meanwhile is not copied)\n", fromCfg.describeStorage())
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
	fmt.Fprintf(w, "  second factors of %s\n", plural(counts.Factors, "user"))
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

// planKeyCopy checks that the keys can be copied from OLD to NEW (a NEW
// key directory must hold none; a NEW database's keyring is checked by
// keys.Copy, which refuses other keys or another secret) and returns the
// copier. Every pair goes through the vaults, so the signing keys keep
// their kids and dates and the provider secret, the key of every opaque
// token, comes along.
func planKeyCopy(from, to *fileConfig) (keyCopier, error) {
	if !to.usesPostgres() {
		if files, err := keyDirFiles(to.Keys.Dir); err != nil {
			return nil, fmt.Errorf("NEW: %w", err)
		} else if len(files) > 0 {
			return nil, fmt.Errorf("NEW: the key directory %s already holds keys (%s): migrate-storage copies into an empty one", to.Keys.Dir, strings.Join(files, ", "))
		}
	}
	return func(ctx context.Context, src, dst *side) (string, error) {
		if src.pg == nil {
			if files, err := keyDirFiles(src.cfg.Keys.Dir); err != nil {
				return "", fmt.Errorf("OLD: %w", err)
			} else if len(files) == 0 {
				return fmt.Sprintf("none in %s; NEW makes its own at start (tokens OLD signed will not verify)", src.cfg.Keys.Dir), nil
			}
		}
		sv, err := vaultOf(src)
		if err != nil {
			return "", fmt.Errorf("OLD: %w", err)
		}
		dv, err := vaultOf(dst)
		if err != nil {
			return "", fmt.Errorf("NEW: %w", err)
		}
		if err := keys.Copy(sv, dv); err != nil {
			return "", err
		}
		secrets, err := sv.SecretNames()
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("signing keys and %s from %s to %s", plural(len(secrets), "secret"), describeKeys(src.cfg), describeKeys(dst.cfg)), nil
	}, nil
}

// checkKeyrings opens the keyrings of the PostgreSQL sides, which checks
// their encryption keys, and refuses a NEW keyring that holds keys or
// secrets already.
func checkKeyrings(from, to *side) error {
	if from.pg != nil {
		if _, err := vaultOf(from); err != nil {
			return fmt.Errorf("OLD: %w", err)
		}
	}
	if to.pg == nil {
		return nil
	}
	dv, err := vaultOf(to)
	if err != nil {
		return fmt.Errorf("NEW: %w", err)
	}
	_, _, err = dv.ReadManifest()
	switch {
	case err == nil:
		return fmt.Errorf("NEW (%s) already holds signing keys: migrate-storage copies into an empty database only", to.cfg.describeStorage())
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("NEW: %w", err)
	}
	names, err := dv.SecretNames()
	if err != nil {
		return fmt.Errorf("NEW: %w", err)
	}
	if len(names) > 0 {
		return fmt.Errorf("NEW (%s) already holds secrets (%s): migrate-storage copies into an empty database only", to.cfg.describeStorage(), strings.Join(names, ", "))
	}
	return nil
}

// vaultOf is where a side keeps its keys: the key directory on bbolt, the
// database's encrypted keyring on PostgreSQL.
func vaultOf(s *side) (keys.Vault, error) {
	if s.pg == nil {
		return keys.DirVault(s.cfg.Keys.Dir), nil
	}
	encKey, err := keys.ParseEncryptionKey(string(s.cfg.Keys.EncryptionKey))
	if err != nil {
		return nil, err
	}
	return s.pg.Keyring(encKey)
}

func describeKeys(c *fileConfig) string {
	if c.usesPostgres() {
		return "the database's keyring"
	}
	return c.Keys.Dir
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
