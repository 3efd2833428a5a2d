package bolt_test

import (
	"path/filepath"
	"testing"

	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/bolt"
	"github.com/smallsso/provider/storage/storagetest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return open(t, filepath.Join(t.TempDir(), "provider.db"))
	})
}

func TestReopen(t *testing.T) {
	t.Parallel()
	storagetest.RunReopen(t, func(t *testing.T) storagetest.Opener {
		path := filepath.Join(t.TempDir(), "provider.db")
		return func() storage.Store { return open(t, path) }
	})
}

func open(t testing.TB, path string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
