//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package owner

import "errors"

// Of is not implemented here; Like and TreeLike never call it, as no
// process runs with euid 0 (os.Geteuid is -1 on Windows).
func Of(ref string) (uid, gid int, err error) {
	return 0, 0, errors.New("file owners are not supported on this system")
}
