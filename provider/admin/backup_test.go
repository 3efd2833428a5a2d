package admin_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smallsso/provider/provider/admin"
	"github.com/smallsso/provider/storage/bolt"
)

// serveAdmin serves a on an admin socket in dir and dials it.
func serveAdmin(t *testing.T, dir string, a admin.Admin) *admin.Client {
	t.Helper()
	ln, err := admin.Listen(filepath.Join(dir, "p.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: admin.Handler(a), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return admin.Dial(filepath.Join(dir, "p.sock"))
}

// A backup through the socket is the store's own, byte for byte.
func TestBackupThroughSocket(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := openStore(t, dir)
	remote := serveAdmin(t, dir, &admin.Local{Store: store})
	ctx := context.Background()

	var local, viaSocket bytes.Buffer
	if _, err := (&admin.Local{Store: store}).Backup(ctx, &local); err != nil {
		t.Fatal(err)
	}
	n, err := remote.Backup(ctx, &viaSocket)
	if err != nil || n != int64(viaSocket.Len()) {
		t.Fatalf("backup through the socket: %d bytes (%d received), %v", n, viaSocket.Len(), err)
	}
	if !bytes.Equal(local.Bytes(), viaSocket.Bytes()) {
		t.Errorf("the socket's backup differs from the store's")
	}
	path := filepath.Join(dir, "copy.db")
	if err := os.WriteFile(path, viaSocket.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := bolt.Verify(path); err != nil {
		t.Errorf("verify the socket's backup: %v", err)
	}
}

// failingBackup starts a backup and fails half-way, as a disk error would.
type failingBackup struct{ admin.Admin }

func (failingBackup) Backup(_ context.Context, w io.Writer) (int64, error) {
	n, _ := w.Write(bytes.Repeat([]byte("page"), 4096))
	return int64(n), errors.New("read error on the database file")
}

// A backup that fails after its first bytes left is an error at the
// client, with the server's reason, never a short file taken for whole.
func TestBackupThroughSocketFailsWhole(t *testing.T) {
	t.Parallel()
	remote := serveAdmin(t, t.TempDir(), failingBackup{})
	_, err := remote.Backup(context.Background(), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "read error on the database file") {
		t.Errorf("backup that failed half-way: %v", err)
	}
}

// endlessBackup writes until a write fails, and says how it ended.
type endlessBackup struct {
	admin.Admin
	ended chan error
}

func (b endlessBackup) Backup(_ context.Context, w io.Writer) (int64, error) {
	page := make([]byte, 64<<10)
	var n int64
	for {
		m, err := w.Write(page)
		n += int64(m)
		if err != nil {
			b.ended <- err
			return n, err
		}
	}
}

// A reader that stops taking the backup ends it (and its read
// transaction) after the idle timeout, instead of holding it open.
func TestBackupOfAStalledReaderEnds(t *testing.T) {
	old := admin.BackupIdleTimeout
	admin.BackupIdleTimeout = 200 * time.Millisecond
	t.Cleanup(func() { admin.BackupIdleTimeout = old })
	dir := t.TempDir()
	b := endlessBackup{ended: make(chan error, 1)}
	serveAdmin(t, dir, b)
	conn, err := net.Dial("unix", filepath.Join(dir, "p.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Ask, then read nothing.
	if _, err := io.WriteString(conn, "GET /backup HTTP/1.1\r\nHost: admin\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-b.ended:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("the stalled backup ended with %v, want the write deadline", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a backup nobody reads is still running after 20s")
	}
}
