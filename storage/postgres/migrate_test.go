package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/smallsso/provider/storage/postgres"
	"github.com/smallsso/provider/storage/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// openFresh opens a migrated store on a fresh database of the shared
// server.
func openFresh(t testing.TB) (*postgres.Store, string) {
	t.Helper()
	dsn := pgtest.Shared(t).NewDatabase(t)
	s, err := postgres.Open(t.Context(), postgres.Options{DSN: dsn, Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	return s, dsn
}

func TestMigrations(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := pgtest.Shared(t).NewDatabase(t)

	_, err := postgres.Open(ctx, postgres.Options{DSN: dsn})
	if !errors.Is(err, postgres.ErrSchemaBehind) {
		t.Fatalf("open of an empty database without migrating: %v, want ErrSchemaBehind", err)
	}
	s, err := postgres.Open(ctx, postgres.Options{DSN: dsn, Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Migrate(ctx)
	if err != nil || len(again) != 0 {
		t.Fatalf("second migrate applied %v, err %v; want nothing", again, err)
	}
	s.Close()
	if s, err = postgres.Open(ctx, postgres.Options{DSN: dsn}); err != nil {
		t.Fatalf("open of a migrated database: %v", err)
	}
	s.Close()

	// A newer binary migrated the database: this one refuses it.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, 'from_the_future.sql')", postgres.SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	for _, migrate := range []bool{false, true} {
		_, err = postgres.Open(ctx, postgres.Options{DSN: dsn, Migrate: migrate})
		if !errors.Is(err, postgres.ErrSchemaNewer) {
			t.Fatalf("open (migrate=%v) of a newer database: %v, want ErrSchemaNewer", migrate, err)
		}
	}
}

func TestConcurrentMigrationsApplyOnce(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).NewDatabase(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := postgres.Open(context.Background(), postgres.Options{DSN: dsn, Migrate: true})
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("replicas migrating together: %v", err)
		}
	}
}

func TestBadDSNHidesPassword(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{
		"postgres://u:sekrit-pw@127.0.0.1:1/db?sslmode=bogus",
		"host=127.0.0.1 port=notaport password=sekrit-pw",
	} {
		_, err := postgres.Open(t.Context(), postgres.Options{DSN: dsn})
		if err == nil {
			t.Fatalf("open %q succeeded", dsn)
		}
		if containsPW(err.Error()) {
			t.Fatalf("error shows the password: %v", err)
		}
	}
}

func containsPW(s string) bool {
	for i := 0; i+9 <= len(s); i++ {
		if s[i:i+9] == "sekrit-pw" {
			return true
		}
	}
	return false
}
