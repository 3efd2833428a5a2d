package postgres_test

import (
	"testing"

	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/postgres"
	"github.com/smallsso/provider/storage/postgres/pgtest"
	"github.com/smallsso/provider/storage/storagetest"
)

var _ storage.Store = (*postgres.Store)(nil)

// TestConformance runs the storage conformance suite, every subtest on a
// fresh database.
func TestConformance(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, _ := openFresh(t)
		return s
	})
}

func TestReopen(t *testing.T) {
	t.Parallel()
	storagetest.RunReopen(t, func(t *testing.T) storagetest.Opener {
		dsn := pgtest.Shared(t).NewDatabase(t)
		return func() storage.Store {
			s, err := postgres.Open(t.Context(), postgres.Options{DSN: dsn, Migrate: true})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}
