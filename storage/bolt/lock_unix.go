//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package bolt

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// Lock takes the lock a server holds on the database file at path (the
// same flock bbolt takes), without reading the file, which may be
// damaged: a restore holds it while it replaces the file. It fails with
// ErrLocked after timeout, and with an error matching fs.ErrNotExist when
// there is no file. unlock releases it.
func Lock(path string, timeout time.Duration) (unlock func(), err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(lockTimeout(timeout))
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return func() { f.Close() }, nil
		case errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EINTR):
			if time.Now().After(deadline) {
				f.Close()
				return nil, fmt.Errorf("lock %s: %w", path, ErrLocked)
			}
			time.Sleep(50 * time.Millisecond)
		default:
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
	}
}
