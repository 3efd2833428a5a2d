package main

import (
	"testing"

	"github.com/smallsso/provider/storage/postgres/pgtest"
)

func TestMain(m *testing.M) {
	serveChildIfAsked() // child_test.go: a test's server in another process
	// Set before any test runs, so parallel tests only read it: servers
	// check their key manifest on every read, and a test sees a rotation
	// or a broken manifest at its next request, with nothing to wait for.
	keysReloadInterval = -1
	// Runs the tests, then stops the PostgreSQL server they shared (if
	// one started) and exits.
	pgtest.Main(m)
}
