package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/smallsso/provider/storage/postgres"
)

func newMigrateCmd(e *env) *cobra.Command {
	var configPath string
	c := &cobra.Command{
		Use:   "migrate --config FILE",
		Short: "Bring the PostgreSQL database's schema up to this binary's version",
		Long: `Apply the schema migrations this binary carries that the PostgreSQL
database lacks, in order, each in its own transaction, under an advisory
lock (servers starting meanwhile wait for it). provider serve does the same
at start; this command lets an upgrade migrate first, before the servers
are replaced one at a time. Migrations are forward-only: a database a newer
binary migrated is refused. With a bbolt file there is nothing to do (its
schema is upgraded when it is opened).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			if !cfg.usesPostgres() {
				fmt.Fprintf(e.stdout, "storage is bbolt (%s): nothing to migrate; the file's schema is upgraded when it is opened\n", cfg.Storage.Bolt)
				return nil
			}
			return migrateDatabase(cmd.Context(), cfg, e)
		},
	}
	c.Flags().StringVar(&configPath, "config", "", "config file")
	return c
}

// migrateDatabase applies the missing migrations and says which.
func migrateDatabase(ctx context.Context, cfg *fileConfig, e *env) error {
	target := dsnTarget(string(cfg.Storage.Postgres.DSN))
	want := postgres.SchemaVersion()
	pg, err := postgres.Open(ctx, cfg.postgresOptions(false, nil))
	if err == nil {
		pg.Close()
		fmt.Fprintf(e.stdout, "database %s already at schema version %d\n", target, want)
		return nil
	}
	if !errors.Is(err, postgres.ErrSchemaBehind) {
		return err
	}
	before, err := schemaVersionOf(ctx, string(cfg.Storage.Postgres.DSN))
	if err != nil {
		return err
	}
	if pg, err = postgres.Open(ctx, cfg.postgresOptions(true, nil)); err != nil {
		return err
	}
	pg.Close()
	// What was missing is now applied: by this command, or by a server
	// that started meanwhile and took the lock first.
	var applied []string
	for v := before + 1; v <= want; v++ {
		applied = append(applied, strconv.Itoa(v))
	}
	fmt.Fprintf(e.stdout, "database %s at schema version %d (applied %s)\n", target, want, strings.Join(applied, ", "))
	return nil
}

// schemaVersionOf reads the database's schema version (0 when it has
// never been migrated).
func schemaVersionOf(ctx context.Context, dsn string) (int, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, fmt.Errorf("postgres: %v", err) // pgx names host and user, never the password
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists); err != nil || !exists {
		return 0, err
	}
	var v int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("postgres: read the schema version: %v", err)
	}
	return v, nil
}
