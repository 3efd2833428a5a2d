// Package postgres is the PostgreSQL storage backend (github.com/jackc/pgx/v5),
// for installations that run several replicas on one shared database. It
// implements storage.Store with the same guarantees as the bbolt backend,
// and keeps what replicas must share beside it: the signing keys and the
// provider secret (keyring.go, encrypted), and the throttles' budgets.
//
// The schema is in migrations/, embedded, applied in order, versioned and
// forward-only (migrate.go). It must not import the provider's protocol
// packages (provider/...): it stores records, it does not interpret them.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Options configure Open.
type Options struct {
	// DSN is a PostgreSQL connection string (URL or key=value form). It
	// may hold a password: it never appears in errors or logs from here.
	DSN string
	// MaxConns bounds the connection pool; zero is DefaultMaxConns.
	MaxConns int32
	// Migrate applies missing migrations at open. Without it, Open fails
	// when the database is behind the binary (run `provider migrate`).
	Migrate bool
	// Logger receives what the backend reports on its own; nil discards.
	Logger *slog.Logger
}

// DefaultMaxConns is the pool size when Options.MaxConns is zero. pgx's
// own default (the larger of 4 and the CPUs) is too few for a server: a
// request holds a connection for its transaction, and one that needs a
// second one meanwhile would wait for a free one. Two replicas with 20
// each stay well inside PostgreSQL's default max_connections of 100.
const DefaultMaxConns = 20

// Store is a storage.Store on a PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
	log  *slog.Logger

	probe   writeProbe  // CheckWritable (ready.go)
	clients clientCache // GetClient (clientcache.go)

	closersMu sync.Mutex
	closers   []func()
	// now, gcBatchOverride and gcAfterBatch are set by tests
	// (export_test.go).
	now             func() time.Time
	gcBatchOverride int
	gcAfterBatch    func()
}

// Open connects to the database, checks (or, with opts.Migrate, brings
// up to date) its schema version, and returns the store. A database newer
// than this binary is refused with ErrSchemaNewer.
func Open(ctx context.Context, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(opts.DSN)
	if err != nil {
		// pgx masks the password in its parse errors; say no more than
		// that the string is malformed.
		return nil, errors.New("postgres: the DSN is not a valid connection string (see https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING)")
	}
	cfg.MaxConns = DefaultMaxConns
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s", safeErr(err))
	}
	s := &Store{pool: pool, log: log}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: cannot reach the database at %s: %s", describeTarget(cfg), safeErr(err))
	}
	if opts.Migrate {
		if _, err := s.Migrate(ctx); err != nil {
			pool.Close()
			return nil, err
		}
	} else if err := s.checkSchema(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Pool is the connection pool, for the parts of the backend that live in
// other files and for tests.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the pool.
func (s *Store) Close() error {
	s.pool.Close()
	s.closersMu.Lock()
	defer s.closersMu.Unlock()
	for _, c := range s.closers {
		c()
	}
	s.closers = nil
	return nil
}

// closeWith has Close call fn: for the pools of the parts that live
// beside the store (the keyring's).
func (s *Store) closeWith(fn func()) {
	s.closersMu.Lock()
	defer s.closersMu.Unlock()
	s.closers = append(s.closers, fn)
}

// describeTarget names the server and database of cfg, without the user's
// password, for error messages.
func describeTarget(cfg *pgxpool.Config) string {
	return fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
}

// safeErr is err's text for an operator. pgx's connection errors name the
// host and the user, never the password.
func safeErr(err error) string { return err.Error() }
