package bolt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/bolt"
)

func token(sig string) storage.TokenRequest {
	return storage.TokenRequest{Kind: storage.KindAccessToken, Signature: sig, RequestID: "req-" + sig, ClientID: "c", Subject: "alice", Active: true, ExpiresAt: time.Now().Add(time.Hour)}
}

// A backup taken while writers commit holds every token committed before
// it began, and opens as a store.
func TestBackupWhileWriting(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, filepath.Join(dir, "provider.db"))
	defer s.Close()
	ctx := context.Background()

	var (
		committed sync.Map // signature → committed before the backup began
		started   atomic.Bool
		wg        sync.WaitGroup
		stop      = make(chan struct{})
		warm      = make(chan struct{}, 4)
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				select {
				case <-stop:
					return
				default:
				}
				sig := fmt.Sprintf("w%d-%d", w, i)
				if err := s.CreateToken(ctx, token(sig)); err != nil {
					t.Error(err)
					return
				}
				committed.Store(sig, !started.Load())
				if i == 10 {
					warm <- struct{}{}
				}
			}
		}()
	}
	for range 4 {
		<-warm
	}
	started.Store(true)
	var buf bytes.Buffer
	n, err := s.Backup(ctx, &buf)
	close(stop)
	wg.Wait()
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("backup: %d bytes (%d written), %v", n, buf.Len(), err)
	}
	copyPath := filepath.Join(dir, "copy.db")
	if err := os.WriteFile(copyPath, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := bolt.Verify(copyPath)
	if err != nil || info.Schema != "2" || info.Size != n {
		t.Fatalf("verify the copy: %+v, %v", info, err)
	}
	c := open(t, copyPath)
	defer c.Close()
	before := 0
	committed.Range(func(k, v any) bool {
		if v.(bool) {
			before++
			if _, err := c.GetToken(ctx, storage.KindAccessToken, k.(string)); err != nil {
				t.Errorf("token %s, committed before the backup: %v", k, err)
			}
		}
		return true
	})
	if before < 40 {
		t.Errorf("only %d tokens before the backup", before)
	}
}

func TestBackupFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "provider.db")
	var buf bytes.Buffer
	if _, err := bolt.BackupFile(context.Background(), path, &buf, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("backup of a missing file: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("backup of a missing file created it: %v", err)
	}
	s := open(t, path)
	if _, err := bolt.BackupFile(context.Background(), path, &buf, 50*time.Millisecond); !errors.Is(err, bolt.ErrLocked) {
		t.Errorf("backup while a store holds the file: %v, want ErrLocked", err)
	}
	if _, err := bolt.Lock(path, 50*time.Millisecond); !errors.Is(err, bolt.ErrLocked) {
		t.Errorf("lock while a store holds the file: %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	setSchema(t, path, "1")
	// Offline, the file is read as it is: a schema 1 file stays 1, in
	// the file and in its backup.
	n, err := bolt.BackupFile(context.Background(), path, &buf, 0)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("offline backup: %d, %v", n, err)
	}
	copyPath := path + ".copy"
	if err := os.WriteFile(copyPath, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, copyPath} {
		if info, err := bolt.Verify(p); err != nil || info.Schema != "1" {
			t.Errorf("%s: %+v, %v; want schema 1", p, info, err)
		}
	}
	unlock, err := bolt.Lock(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bolt.Open(path, bolt.Options{Timeout: 50 * time.Millisecond}); !errors.Is(err, bolt.ErrLocked) {
		t.Errorf("open while locked: %v, want ErrLocked", err)
	}
	unlock()
}

// setSchema writes a schema version into a closed file, as another build
// would have left it.
func setSchema(t *testing.T, path, v string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte(v))
	})
	if err := errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	s := open(t, good)
	for i := range 200 {
		if err := s.CreateToken(context.Background(), token(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A backup ends at the last page in use: the live file may have
	// room after it.
	var buf bytes.Buffer
	if _, err := bolt.BackupFile(context.Background(), good, &buf, 0); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	future := filepath.Join(dir, "future.db")
	if err := os.WriteFile(future, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	setSchema(t, future, "99")
	foreign := filepath.Join(dir, "foreign.db")
	db, err := bbolt.Open(foreign, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("other")); return err })
	db.Close()

	for name, want := range map[string]string{
		future:  `schema version "99"`,
		foreign: "not a provider database",
	} {
		if _, err := bolt.Verify(name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("verify %s: %v, want %q", filepath.Base(name), err, want)
		}
	}
	for name, data := range map[string][]byte{
		"empty":     nil,
		"short":     raw[:4096],
		"truncated": raw[:len(raw)-4096],
		"garbage":   bytes.Repeat([]byte{0xa5}, 64<<10),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if info, err := bolt.Verify(p); err == nil {
			t.Errorf("verify %s: %+v, want an error", name, info)
		}
	}
	if _, _, err := bolt.Compact(future, 0); err == nil || !strings.Contains(err.Error(), "schema") {
		t.Errorf("compact of schema 99: %v", err)
	}
}

func TestCompactKeepsRecords(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "provider.db")
	s := open(t, path)
	ctx := context.Background()
	txCtx, err := s.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3000 {
		if err := s.CreateToken(txCtx, token(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CommitTx(txCtx); err != nil {
		t.Fatal(err)
	}
	txCtx, err = s.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3000 {
		if i%30 != 0 {
			if err := s.DeleteToken(txCtx, storage.KindAccessToken, fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.CommitTx(txCtx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := bolt.Compact(path, 50*time.Millisecond); !errors.Is(err, bolt.ErrLocked) {
		t.Errorf("compact while open: %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before, after, err := bolt.Compact(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != after || after*2 > before {
		t.Errorf("compact: %d bytes before, %d after, file %v (%v)", before, after, st, err)
	}
	s = open(t, path)
	defer s.Close()
	for i := range 3000 {
		_, err := s.GetToken(ctx, storage.KindAccessToken, fmt.Sprint(i))
		if kept := i%30 == 0; kept != (err == nil) {
			t.Errorf("token %d after compact: %v", i, err)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("compact left files behind: %v", entries)
	}
}

// A store opened while a restore held the lock, and replaced the file,
// opens the new file, not the old one it was waiting on.
func TestOpenWaitingOnReplacedFile(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("watches /proc/self/fd")
	}
	dir := t.TempDir()
	path, next := filepath.Join(dir, "provider.db"), filepath.Join(dir, "next.db")
	ctx := context.Background()
	for p, sig := range map[string]string{path: "old", next: "new"} {
		s := open(t, p)
		if err := s.CreateToken(ctx, token(sig)); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	unlock, err := bolt.Lock(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	type opened struct {
		s   *bolt.Store
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		s, err := bolt.Open(path, bolt.Options{Timeout: 20 * time.Second})
		ch <- opened{s, err}
	}()
	// Wait (bounded) until the open holds a descriptor of the old file:
	// it then waits for the lock on it.
	for deadline := time.Now().Add(10 * time.Second); openFDs(t, path) < 2; {
		if time.Now().After(deadline) {
			t.Fatal("the open never opened the file")
		}
		runtime.Gosched()
	}
	if err := os.Link(path, path+".before"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, path); err != nil {
		t.Fatal(err)
	}
	unlock()
	got := <-ch
	if got.err != nil {
		t.Fatal(got.err)
	}
	defer got.s.Close()
	if _, err := got.s.GetToken(ctx, storage.KindAccessToken, "new"); err != nil {
		t.Errorf("the store opened is not the new file: %v", err)
	}
	if _, err := got.s.GetToken(ctx, storage.KindAccessToken, "old"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the store opened is the replaced file: %v", err)
	}
}

// openFDs counts this process's descriptors open on path.
func openFDs(t *testing.T, path string) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == path {
			n++
		}
	}
	return n
}
