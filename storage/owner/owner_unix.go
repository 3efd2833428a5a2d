//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package owner

import (
	"fmt"
	"os"
	"syscall"
)

// Of returns the uid and gid of the file or directory at ref (not
// following a symbolic link at ref itself).
func Of(ref string) (uid, gid int, err error) {
	st, err := os.Lstat(ref)
	if err != nil {
		return 0, 0, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, fmt.Errorf("%s: no owner on this system", ref)
	}
	return int(sys.Uid), int(sys.Gid), nil
}
