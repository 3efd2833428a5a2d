// Command provider runs and administers the OpenID provider.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is what a command may touch of the outside world, so tests can run
// every command in memory.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// usageError marks a mistake in how the command was called (exit 2).
type usageError struct{ error }

// run executes one command line and returns the exit code. Every failure is
// one line on stderr: "provider: <command>: <what is wrong>"; a config file
// with several problems gets one such line for each.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCmd(e)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	name := strings.TrimPrefix(cmd.CommandPath(), "provider")
	name = strings.TrimSpace(name)
	prefix := "provider: "
	if name != "" {
		prefix += name + ": "
	}
	var ce *configError
	if errors.As(err, &ce) {
		// One line per problem of the config file, each with its key
		// path and line.
		for _, l := range ce.lines() {
			fmt.Fprintln(stderr, prefix+oneLine(l))
		}
		return 1
	}
	fmt.Fprintln(stderr, prefix+oneLine(err.Error()))
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		return 2
	}
	return 1
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "provider",
		Short:         "A small OpenID Connect provider",
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          noArgs,
		// A mistyped command followed by flags (`provider user list
		// --config F`) is reported as the unknown command, not as an
		// unknown --config.
		FParseErrWhitelist: cobra.FParseErrWhitelist{UnknownFlags: true},
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError{errors.New("missing command (serve, config, users, clients, trust, keys, backup, restore, compact, migrate, migrate-storage, version); see provider --help")}
		},
	}
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetIn(e.stdin)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServeCmd(e), newConfigCmd(e), newUsersCmd(e), newClientsCmd(e), newTrustCmd(e), newKeysCmd(e), newVersionCmd(e))
	root.AddCommand(newBackupCmd(e), newRestoreCmd(e), newCompactCmd(e))
	root.AddCommand(newMigrateCmd(e), newMigrateStorageCmd(e)) // migrate.go, migratestorage.go
	return root
}

// group is a noun command (users, clients, keys) that needs a verb.
func group(use, short string, verbs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:                use,
		Short:              short,
		Args:               noArgs,
		FParseErrWhitelist: cobra.FParseErrWhitelist{UnknownFlags: true}, // see newRootCmd
		RunE: func(cmd *cobra.Command, args []string) error {
			names := make([]string, 0, len(verbs))
			for _, v := range verbs {
				names = append(names, v.Name())
			}
			return usageError{fmt.Errorf("missing command (%s)", strings.Join(names, ", "))}
		},
	}
	c.AddCommand(verbs...)
	return c
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("unknown command or argument %q", args[0])}
	}
	return nil
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("expects %s", what)}
		}
		return nil
	}
}

// readSecret reads one secret from stdin: the first line, without its
// line ending. Secrets never come from flags, which leak into shell
// history and `ps`.
func readSecret(r io.Reader, what string) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return "", fmt.Errorf("read %s from stdin: %w", what, err)
	}
	s, _, _ := strings.Cut(string(b), "\n")
	s = strings.TrimSuffix(s, "\r")
	if s == "" {
		return "", usageError{fmt.Errorf("%s on stdin is empty", what)}
	}
	return s, nil
}
