package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrSchemaNewer means the database was migrated by a newer binary: this
// one would misread what it does not know, so it refuses to run.
var ErrSchemaNewer = errors.New("postgres: the database schema is newer than this binary")

// ErrSchemaBehind means the database lacks migrations this binary needs.
var ErrSchemaBehind = errors.New("postgres: the database schema is older than this binary")

// migration is one file of migrations/, named NNNN_what.sql. A migration
// must be additive (new tables, new columns with defaults, new indexes):
// replicas are upgraded one at a time, and the old binary keeps serving
// against the migrated schema until its turn comes.
type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("postgres: migration file %s is not named NNNN_what.sql", e.Name())
		}
		data, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(data)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("postgres: migrations are not numbered 1, 2, 3...: %s", m.name)
		}
	}
	return out, nil
}

// SchemaVersion is the newest migration this binary carries.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// migrationLock is the advisory lock key that serialises migrations of
// replicas starting together.
const migrationLock = 0x70726f76 // "prov"

// Migrate applies every migration the database lacks, each in its own
// transaction, under an advisory lock so replicas starting together
// apply each once. It returns the versions applied. A database newer than
// the binary is refused with ErrSchemaNewer.
func (s *Store) Migrate(ctx context.Context) ([]int, error) {
	ms, err := migrations()
	if err != nil {
		return nil, err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: %s", safeErr(err))
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return nil, fmt.Errorf("postgres: migrate: %s", safeErr(err))
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock); err != nil {
			// Never back to the pool holding the lock: closing the
			// connection releases it on the server.
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY,
		name text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("postgres: migrate: %s", safeErr(err))
	}
	have, err := currentVersion(ctx, conn.Conn())
	if err != nil {
		return nil, err
	}
	if have > len(ms) {
		return nil, fmt.Errorf("%w (database at version %d, this binary knows up to %d): upgrade the binary", ErrSchemaNewer, have, len(ms))
	}
	var applied []int
	for _, m := range ms[have:] {
		err := pgx.BeginFunc(ctx, conn.Conn(), func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("postgres: migration %s: %s", m.name, safeErr(err))
		}
		applied = append(applied, m.version)
	}
	return applied, nil
}

// checkSchema refuses a database that is not at this binary's version.
func (s *Store) checkSchema(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: %s", safeErr(err))
	}
	defer conn.Release()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		return fmt.Errorf("postgres: %s", safeErr(err))
	}
	have := 0
	if exists {
		if have, err = currentVersion(ctx, conn.Conn()); err != nil {
			return err
		}
	}
	want := SchemaVersion()
	switch {
	case have > want:
		return fmt.Errorf("%w (database at version %d, this binary knows up to %d): upgrade the binary", ErrSchemaNewer, have, want)
	case have < want:
		return fmt.Errorf("%w (database at version %d, binary at %d): run `provider migrate`", ErrSchemaBehind, have, want)
	}
	return nil
}

func currentVersion(ctx context.Context, conn *pgx.Conn) (int, error) {
	var v int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("postgres: read schema version: %s", safeErr(err))
	}
	return v, nil
}
