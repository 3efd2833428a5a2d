//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package keys

import (
	"fmt"
	"os"
	"syscall"
)

// fileID is what os.SameFile compares: the device and the inode.
func fileID(info os.FileInfo) string {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	}
	return ""
}
