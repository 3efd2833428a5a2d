package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// childServeEnv, set to a config file's path, makes this test binary run
// `provider serve --config` instead of the tests: a test that must kill a
// server (SIGKILL) runs it as a child process.
const childServeEnv = "PROVIDER_TEST_CHILD_SERVE"

func TestMain(m *testing.M) {
	// Set before any test runs, so parallel tests only read it: servers
	// check their key manifest on every read, and a test sees a rotation
	// or a broken manifest at its next request, with nothing to wait for.
	keysReloadInterval = -1
	if config := os.Getenv(childServeEnv); config != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, []string{"serve", "--config", config}, os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}
