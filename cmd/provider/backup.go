package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/smallsso/provider/provider/admin"
	"github.com/smallsso/provider/provider/backup"
	"github.com/smallsso/provider/storage/bolt"
)

// bundleWorkFactor is backup.BundleOptions.WorkFactor: zero (age's
// default) in the command; the tests lower it.
var bundleWorkFactor int

func newBackupCmd(e *env) *cobra.Command {
	var (
		configPath, out string
		withKeys, force bool
	)
	c := &cobra.Command{
		Use:   "backup --config FILE --out FILE [--with-keys] [--force]",
		Short: "Write a consistent copy of the database, while the server runs or not",
		Long: `Write a consistent copy of the database to --out: through the running
server's admin socket, or from the file when no server runs. --out appears
whole or not at all (mode 0600); an existing one is kept unless --force.

--with-keys writes one file encrypted with a passphrase read from stdin
(age, scrypt): the database and the key directory, signing keys and the
provider secret that opaque tokens depend on. Without it, back up the
key directory yourself.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{errors.New("--out is required")}
			}
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			if err := refuseOnPostgres(cfg, "backup"); err != nil {
				return err
			}
			out, err = filepath.Abs(out)
			if err != nil {
				return err
			}
			copyDB := dbCopier(cfg)
			var n int64
			what := "database"
			if withKeys {
				pass, err := readSecret(e.stdin, "passphrase")
				if err != nil {
					return err
				}
				n, err = backup.Bundle(cmd.Context(), out, force, copyDB, cfg.Keys.Dir, pass, backup.BundleOptions{
					WorkFactor: bundleWorkFactor,
					StageDir:   filepath.Dir(cfg.Storage.Bolt),
				})
				if err != nil {
					return err
				}
				what = "database and keys, encrypted"
			} else if n, err = backup.Database(cmd.Context(), out, force, copyDB); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "wrote %d bytes (%s) to %s\n", n, what, out)
			return nil
		},
	}
	c.Flags().StringVar(&configPath, "config", "", "config file")
	c.Flags().StringVar(&out, "out", "", "backup file to write")
	c.Flags().BoolVar(&withKeys, "with-keys", false, "also bundle the key directory, encrypted with a passphrase read from stdin")
	c.Flags().BoolVar(&force, "force", false, "replace an existing --out")
	return c
}

// dbCopier copies the database from the file when no server holds it,
// else through the running server's admin socket.
func dbCopier(cfg *fileConfig) backup.CopyDB {
	return func(ctx context.Context, w io.Writer) (int64, error) {
		n, err := bolt.BackupFile(ctx, cfg.Storage.Bolt, w, lockWait)
		if !errors.Is(err, bolt.ErrLocked) {
			return n, err
		}
		n, err = admin.Dial(cfg.adminSocket()).Backup(ctx, w)
		if err != nil && n == 0 && !serverAnswers(ctx, cfg) {
			return n, fmt.Errorf("database %s is locked by another process and its admin socket does not answer (%v)", cfg.Storage.Bolt, err)
		}
		return n, err
	}
}

// serverAnswers reports whether a server answers on the config's admin
// socket.
func serverAnswers(ctx context.Context, cfg *fileConfig) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := admin.Dial(cfg.adminSocket()).ListClients(ctx)
	return err == nil
}

func newRestoreCmd(e *env) *cobra.Command {
	var (
		configPath, from string
		force            bool
	)
	c := &cobra.Command{
		Use:   "restore --config FILE --from FILE [--force]",
		Short: "Replace the database (and keys, from a bundle) with a backup; the server must be stopped",
		Long: `Replace the database with the backup in --from, a file written by
provider backup, with or without --with-keys (a bundle asks for its
passphrase on stdin). Refused while a server runs on the database. The
backup is checked first (it must open, be consistent and have a schema
this build reads); the current database is kept as
<database>.before-restore-<time>. A bundle also restores the key
directory; one that holds other keys is replaced only with --force (and
kept as <keys>.before-restore-<time>).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if from == "" {
				return usageError{errors.New("--from is required")}
			}
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			if err := refuseOnPostgres(cfg, "restore"); err != nil {
				return err
			}
			res, err := backup.Restore(backup.RestoreOptions{
				From: from, DB: cfg.Storage.Bolt, KeysDir: cfg.Keys.Dir, Force: force,
				Passphrase:    func() (string, error) { return readSecret(e.stdin, "passphrase") },
				LockTimeout:   lockWait,
				ServerAnswers: func() bool { return serverAnswers(cmd.Context(), cfg) },
			})
			if errors.Is(err, backup.ErrWrongPassphrase) {
				return fmt.Errorf("wrong passphrase for %s; nothing was changed", from)
			}
			if err != nil && res.Changed {
				return fmt.Errorf("%w; the restore may be half done: check %s and %s", err, cfg.Storage.Bolt, cfg.Keys.Dir)
			}
			if err != nil {
				return fmt.Errorf("%w; nothing was changed", err)
			}
			schema := "schema " + res.Info.Schema
			if res.Info.Schema != "2" {
				schema += ", upgraded when the server starts"
			}
			fmt.Fprintf(e.stdout, "restored %s from %s (%d bytes, %s, %d users, %d clients)\n",
				cfg.Storage.Bolt, from, res.Info.Size, schema, res.Info.Users, res.Info.Clients)
			if res.KeptDB != "" {
				fmt.Fprintf(e.stdout, "previous database kept as %s\n", res.KeptDB)
			}
			switch res.Keys {
			case backup.KeysUntouched:
				fmt.Fprintf(e.stdout, "keys: a database backup holds none; %s must hold the keys and provider secret it was used with\n", cfg.Keys.Dir)
			case backup.KeysSame:
				fmt.Fprintf(e.stdout, "keys: %s already holds the bundle's keys\n", cfg.Keys.Dir)
			case backup.KeysInstalled:
				fmt.Fprintf(e.stdout, "keys: restored to %s\n", cfg.Keys.Dir)
			case backup.KeysReplaced:
				fmt.Fprintf(e.stdout, "keys: restored to %s; previous keys kept as %s\n", cfg.Keys.Dir, res.KeptKeys)
			}
			return nil
		},
	}
	c.Flags().StringVar(&configPath, "config", "", "config file")
	c.Flags().StringVar(&from, "from", "", "backup file to restore")
	c.Flags().BoolVar(&force, "force", false, "let a bundle replace a key directory holding other keys")
	return c
}

func newCompactCmd(e *env) *cobra.Command {
	var configPath string
	c := &cobra.Command{
		Use:   "compact --config FILE",
		Short: "Rewrite the database file without its free pages; the server must be stopped",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			if err := refuseOnPostgres(cfg, "compact"); err != nil {
				return err
			}
			before, after, err := bolt.Compact(cfg.Storage.Bolt, lockWait)
			if errors.Is(err, bolt.ErrLocked) {
				if serverAnswers(cmd.Context(), cfg) {
					return fmt.Errorf("a server is running on %s; compact works offline: stop it first", cfg.Storage.Bolt)
				}
				return fmt.Errorf("database %s is locked by another process; compact works offline", cfg.Storage.Bolt)
			}
			if err != nil {
				return err
			}
			if after == before {
				fmt.Fprintf(e.stdout, "%s is already compact (%d bytes); left as it was\n", cfg.Storage.Bolt, before)
				return nil
			}
			fmt.Fprintf(e.stdout, "compacted %s: %d bytes before, %d after\n", cfg.Storage.Bolt, before, after)
			return nil
		},
	}
	c.Flags().StringVar(&configPath, "config", "", "config file")
	return c
}
