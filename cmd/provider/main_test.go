package main

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	serveChildIfAsked() // child_test.go: a test's server in another process
	// Set before any test runs, so parallel tests only read it: servers
	// check their key manifest on every read, and a test sees a rotation
	// or a broken manifest at its next request, with nothing to wait for.
	keysReloadInterval = -1
	os.Exit(m.Run())
}
