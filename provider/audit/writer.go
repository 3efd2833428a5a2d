package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/smallsso/provider/storage/owner"
)

// Writer writes events to w as JSON lines, one object per event. It is
// safe for concurrent use; lines never interleave.
type Writer struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
	// failing is set while writes fail, so OnError hears of a failure
	// once, not once per event.
	failing bool
	// OnError, if set, is told when writing starts failing (a full disk)
	// and nil when it works again. Events that fail to write are lost:
	// the audit log does not stop the server.
	OnError func(error)
}

// NewWriter writes events to w; now stamps events without a time (nil
// means time.Now).
func NewWriter(w io.Writer, now func() time.Time) *Writer {
	if now == nil {
		now = time.Now
	}
	return &Writer{w: w, now: now}
}

// Record implements Sink.
func (w *Writer) Record(_ context.Context, e Event) {
	if e.Time.IsZero() {
		e.Time = w.now()
	}
	e.Time = e.Time.UTC()
	line, err := json.Marshal(e.bounded())
	if err != nil {
		return // cannot happen: Event is strings and ints
	}
	line = append(line, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err = w.w.Write(line)
	switch {
	case err != nil && !w.failing:
		w.failing = true
		if w.OnError != nil {
			w.OnError(err)
		}
	case err == nil && w.failing:
		w.failing = false
		if w.OnError != nil {
			w.OnError(nil)
		}
	}
}

// File is an audit log file, opened for appending with mode 0600. When
// the file at its path is no longer the one open (logrotate moved it
// away) it is reopened, so rotation needs no signal; copytruncate works
// as well, as every write appends.
type File struct {
	path string
	// checkEvery bounds how often the path is compared with the open
	// file: a stat per event is cheap, but not free.
	checkEvery time.Duration

	mu      sync.Mutex
	f       *os.File
	checked time.Time
}

// OpenFile opens (creating it, mode 0600) the audit log at path. Its
// directory must exist.
func OpenFile(path string) (*File, error) {
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	return &File{path: path, checkEvery: time.Second, f: f, checked: time.Now()}, nil
}

// OpenFileLike is OpenFile for a command that may run as root while the
// server, running as another user, is stopped: a file it creates gets the
// owner of the first of refs that exists (the database file, the log's
// directory), so that the server can open it later. It changes nothing
// unless the process runs as root.
func OpenFileLike(path string, refs ...string) (*File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case errors.Is(err, fs.ErrExist):
		return OpenFile(path)
	case err != nil:
		return nil, fmt.Errorf("audit log: %w", err)
	}
	if err := owner.Like(path, refs...); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return &File{path: path, checkEvery: time.Second, f: f, checked: time.Now()}, nil
}

func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return f, nil
}

// Write appends p, first reopening the file if it was rotated away.
func (f *File) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.f == nil {
		return 0, errors.New("audit log: closed")
	}
	if now := time.Now(); now.Sub(f.checked) >= f.checkEvery {
		f.checked = now
		if !f.current() {
			_ = f.reopenLocked() // on failure, keep writing to the old file
		}
	}
	return f.f.Write(p)
}

// current says whether the path still names the open file.
func (f *File) current() bool {
	onDisk, err := os.Stat(f.path)
	if err != nil {
		return false
	}
	open, err := f.f.Stat()
	return err == nil && os.SameFile(onDisk, open)
}

// Reopen closes the file and opens the path again (for a rotation the
// automatic check has not seen yet, e.g. on SIGHUP).
func (f *File) Reopen() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.f == nil {
		return errors.New("audit log: closed")
	}
	return f.reopenLocked()
}

func (f *File) reopenLocked() error {
	nf, err := openAppend(f.path)
	if err != nil {
		return err
	}
	f.f.Close()
	f.f = nf
	return nil
}

// Close closes the file; later writes fail.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.f == nil {
		return nil
	}
	err := f.f.Close()
	f.f = nil
	return err
}
