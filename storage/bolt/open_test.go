package bolt_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/bolt"
)

// Serial: it bounds how long a locked open takes, which the load of
// parallel tests would make flaky.
func TestOpenLockedFailsFast(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		within  time.Duration
	}{
		{"short timeout", 100 * time.Millisecond, time.Second},
		{"default timeout", 0, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "provider.db")
			first := open(t, path)

			start := time.Now()
			second, err := bolt.Open(path, bolt.Options{Timeout: tc.timeout})
			if elapsed := time.Since(start); elapsed > tc.within {
				t.Errorf("second open took %v, want under %v", elapsed, tc.within)
			}
			if !errors.Is(err, bolt.ErrLocked) {
				if second != nil {
					_ = second.Close()
				}
				t.Fatalf("second open: got error %v, want one matching ErrLocked", err)
			}

			if err := first.Close(); err != nil {
				t.Fatal(err)
			}
			third := open(t, path)
			if err := third.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestOpenCreatesPrivateDirAndFile(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state", "provider")
	path := filepath.Join(dir, "provider.db")
	s := open(t, path)
	defer s.Close()

	for _, tc := range []struct {
		path string
		want os.FileMode
	}{
		{dir, 0o700},
		{path, 0o600},
	} {
		fi, err := os.Stat(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != tc.want {
			t.Errorf("%s: mode %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestOpenRefusesUnknownSchema(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "provider.db")
	if err := open(t, path).Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("99"))
	})
	if err := errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}

	s, err := bolt.Open(path, bolt.Options{})
	if err == nil {
		_ = s.Close()
		t.Fatal("open of a file with schema 99: got no error")
	}
	if !strings.Contains(err.Error(), "schema") {
		t.Errorf("open of a file with schema 99: error %q does not mention the schema", err)
	}
}

// A file of schema 1 (before the subject index) opens, is marked 2, and
// its tokens are found by subject.
func TestOpenUpgradesSchema1(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "provider.db")
	s := open(t, path)
	ctx := context.Background()
	r := storage.TokenRequest{Kind: storage.KindRefreshToken, Signature: "sig", RequestID: "req", ClientID: "c", Subject: "alice", Active: true, ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.CreateToken(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// As a build of schema 1 left it: no subject index, schema "1".
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket([]byte("meta"))
		if err := tx.DeleteBucket([]byte("token_subjects")); err != nil {
			return err
		}
		if err := meta.Delete([]byte("token_subjects")); err != nil {
			return err
		}
		return meta.Put([]byte("schema"), []byte("1"))
	})
	if err := errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	defer s.Close()
	got, err := s.ListSubjectTokens(ctx, storage.KindRefreshToken, "alice")
	if err != nil || len(got) != 1 || got[0].Signature != "sig" {
		t.Errorf("alice's tokens after the upgrade: %v, %v", got, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bbolt.Tx) error {
		if v := string(tx.Bucket([]byte("meta")).Get([]byte("schema"))); v != "2" {
			t.Errorf("schema after the upgrade: %q, want 2", v)
		}
		return nil
	})
}
