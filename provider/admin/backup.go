package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// backuper is a store that can copy itself consistently while serving
// (storage/bolt's Store).
type backuper interface {
	Backup(ctx context.Context, w io.Writer) (int64, error)
}

// Backup writes a consistent copy of the database to w (bolt's
// Tx.WriteTo in one read transaction) and returns its size.
func (a *Local) Backup(ctx context.Context, w io.Writer) (int64, error) {
	b, ok := a.Store.(backuper)
	if !ok {
		return 0, errors.New("this store cannot be backed up online")
	}
	return b.Backup(ctx, w)
}

// backupTrailer carries the outcome of a backup after its body: "ok
// <bytes>", or the error that cut it short. A body without it is
// incomplete.
const backupTrailer = "Backup-Result"

// serveBackup streams a backup as the response body.
func serveBackup(a Admin) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Trailer", backupTrailer)
		w.WriteHeader(http.StatusOK)
		n, err := a.Backup(r.Context(), &stallGuard{w: w, rc: http.NewResponseController(w)})
		if err != nil {
			w.Header().Set(backupTrailer, "error: "+err.Error())
			return
		}
		w.Header().Set(backupTrailer, "ok "+strconv.FormatInt(n, 10))
	}
}

// BackupIdleTimeout is how long a backup waits for its reader to take the
// next bytes. A reader that stops (a suspended CLI, a stuck pipe) would
// otherwise hold the backup's read transaction open, and with it every
// commit that must grow the database file.
var BackupIdleTimeout = 30 * time.Second

// stallGuard fails a write the reader has not taken within
// BackupIdleTimeout, which ends the backup and its transaction.
type stallGuard struct {
	w  io.Writer
	rc *http.ResponseController
}

func (g *stallGuard) Write(p []byte) (int, error) {
	// A deadline the connection cannot take (a test's recorder) leaves
	// the write unbounded, as before.
	_ = g.rc.SetWriteDeadline(time.Now().Add(BackupIdleTimeout))
	return g.w.Write(p)
}

// Backup asks the server for a backup and writes it to w. It fails unless
// the whole backup arrived; the caller verifies the copy as well.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://admin/backup", nil)
	if err != nil {
		return 0, err
	}
	// No overall timeout: a large database takes as long as it takes;
	// ctx bounds it.
	hc := *c.hc
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("admin socket: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e adminError
		if json.NewDecoder(resp.Body).Decode(&e) != nil || e.Error == "" {
			return 0, fmt.Errorf("admin socket: HTTP %d", resp.StatusCode)
		}
		return 0, errors.New(e.Error)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("backup through the admin socket: %w", err)
	}
	switch res := resp.Trailer.Get(backupTrailer); {
	case res == "ok "+strconv.FormatInt(n, 10):
		return n, nil
	case res == "":
		return n, fmt.Errorf("backup through the admin socket: incomplete (%d bytes)", n)
	default:
		return n, fmt.Errorf("backup through the admin socket: %s", res)
	}
}
