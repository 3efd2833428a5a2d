//go:build !linux

package admin

import "net"

// peerCred is Linux only (SO_PEERCRED); elsewhere the peer is unknown.
func peerCred(*net.UnixConn) (uid, pid int, ok bool) { return 0, 0, false }
