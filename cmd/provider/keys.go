package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/smallsso/provider/keys"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/storage/postgres"
)

func newKeysCmd(e *env) *cobra.Command {
	return group("keys", "Manage the token signing keys",
		newKeysListCmd(e), newKeysRotateCmd(e))
}

// openKeys opens the key directory. It needs no database lock: a running
// server notices a rotation by itself within a second. log receives key
// events and reload failures; nil discards them (CLI commands).
func openKeys(cfg *fileConfig, log *slog.Logger) (*keys.Manager, error) {
	if cfg.usesPostgres() {
		// keys.dir is unused on PostgreSQL: never create it (openKeysOn).
		return nil, errors.New("internal error: the key directory opened with storage.postgres")
	}
	return keys.Open(cfg.Keys.Dir, keyOptions(cfg, log))
}

// keyOptions are the key manager's options, wherever the keys are kept.
func keyOptions(cfg *fileConfig, log *slog.Logger) keys.Options {
	return keys.Options{Algorithms: clientspec.SigningAlgorithms, VerifyFor: cfg.verifyFor(), Logger: log, ReloadInterval: keysReloadInterval}
}

// keysReloadInterval is keys.Options.ReloadInterval: zero (the default of
// one second) in the command; the tests set it negative, so a server sees
// a change to its key directory at its next read instead of a second later.
var keysReloadInterval time.Duration

// loadKeys opens the keys of the config at configPath: its key directory,
// or its database's vault (done closes the database).
func loadKeys(ctx context.Context, configPath string) (m *keys.Manager, done func(), err error) {
	cfg, err := loadConfig(configPath)
	if err != nil {
		return nil, nil, err
	}
	if !cfg.usesPostgres() {
		m, err = openKeys(cfg, nil)
		return m, func() {}, err
	}
	pg, err := postgres.Open(ctx, cfg.postgresOptions(false, nil))
	if err != nil {
		return nil, nil, err
	}
	if m, err = openKeysOn(cfg, pg, nil); err != nil {
		pg.Close()
		return nil, nil, err
	}
	return m, func() { pg.Close() }, nil
}

func newKeysListCmd(e *env) *cobra.Command {
	var configPath string
	c := &cobra.Command{
		Use:   "list --config FILE",
		Short: "List signing keys",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			m, done, err := loadKeys(cmd.Context(), configPath)
			if err != nil {
				return err
			}
			defer done()
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KID\tALG\tSTATE\tCREATED\tPUBLISHED UNTIL")
			var next []keys.KeyInfo
			for _, k := range m.List() {
				if k.State == keys.StateNext {
					next = append(next, k)
				}
				until := "-"
				if !k.VerifyUntil.IsZero() {
					until = k.VerifyUntil.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Alg, k.State, k.Created.UTC().Format(time.RFC3339), until)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			// Scheduled rotation (keyrotation.go) publishes the next keys
			// ahead of their use.
			for _, k := range next {
				fmt.Fprintf(e.stdout, "next %s key %s signs from %s\n", k.Alg, k.ID, k.ActivatesAt.UTC().Format(time.RFC3339))
			}
			return nil
		},
	}
	c.Flags().StringVar(&configPath, "config", "", "config file")
	return c
}

func newKeysRotateCmd(e *env) *cobra.Command {
	var (
		configPath string
		algs       []string
	)
	c := &cobra.Command{
		Use:   "rotate --config FILE [--alg ALG...]",
		Short: "Make new signing keys active; old keys stay published until their tokens expire",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			m, done, err := loadKeys(cmd.Context(), configPath)
			if err != nil {
				return err
			}
			defer done()
			fresh, err := m.Rotate(algs...)
			if err != nil {
				return err
			}
			for _, k := range fresh {
				fmt.Fprintf(e.stdout, "new active %s key %s\n", k.Alg, k.ID)
			}
			return nil
		},
	}
	c.Flags().StringVar(&configPath, "config", "", "config file")
	c.Flags().StringSliceVar(&algs, "alg", nil, "rotate only these algorithms ("+strings.Join(clientspec.SigningAlgorithms, ", ")+"; default all)")
	return c
}
