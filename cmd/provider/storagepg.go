package main

// PostgreSQL storage as the config chooses it and the commands open it.
//
// The file decides the backend: a storage.postgres block selects
// PostgreSQL, otherwise the bbolt file is used. The environment only
// supplies values, and wins over the file when set:
// PROVIDER_POSTGRES_DSN replaces storage.postgres.dsn, and
// PROVIDER_KEYS_ENCRYPTION_KEY replaces keys.encryption_key. Neither
// variable switches a bbolt config to PostgreSQL (migrate-storage reads
// two configs in one environment). The DSN's password and the encryption
// key never appear in a message, a log line or a config problem.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/smallsso/provider/keys"
	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/bolt"
	"github.com/smallsso/provider/storage/postgres"
)

const (
	envPostgresDSN   = "PROVIDER_POSTGRES_DSN"
	envEncryptionKey = "PROVIDER_KEYS_ENCRYPTION_KEY"
	// maxPostgresConns bounds storage.postgres.max_conns: far above what
	// one replica uses, below what a server accepts by default times a
	// few replicas.
	maxPostgresConns = 1000
)

// postgresConfig is storage.postgres.
type postgresConfig struct {
	// DSN is a connection string (URL or key=value); PROVIDER_POSTGRES_DSN
	// replaces it.
	DSN secretString `yaml:"dsn"`
	// MaxConns bounds the connection pool; 0 is postgres.DefaultMaxConns.
	MaxConns int `yaml:"max_conns"`

	dsnFromEnv bool
}

// secretString is a config value that must never be printed: fmt and
// slog see it redacted. Code that needs the value converts it to string.
type secretString string

const redacted = "[redacted]"

func (secretString) String() string               { return redacted }
func (secretString) GoString() string             { return redacted }
func (secretString) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (secretString) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// usesPostgres says whether the config keeps its data in PostgreSQL.
func (c *fileConfig) usesPostgres() bool { return c.Storage.Postgres != nil }

// given reports whether the file has key (a key path), whatever its value.
func (s *configSource) given(key string) bool {
	if s == nil {
		return false
	}
	_, ok := s.lines[key]
	return ok
}

// validateStorage applies the environment's values and checks the
// storage.postgres block and keys.encryption_key.
func (c *fileConfig) validateStorage(add func(key, format string, args ...any)) {
	pg := c.Storage.Postgres
	if pg == nil {
		// (A storage.postgres the walk refused is reported already.)
		if c.Keys.EncryptionKey != "" && !c.src.given("storage.postgres") {
			add("keys.encryption_key", "is only used with storage.postgres (with bolt the keys are files in keys.dir); remove it")
		}
		return
	}
	if c.src.given("storage.bolt") {
		add("storage", "give bolt or postgres, not both")
	}
	if c.src.given("keys.dir") {
		add("keys.dir", "is not used with storage.postgres: the keys are kept in the database, encrypted with keys.encryption_key; remove it")
	}
	if v := os.Getenv(envPostgresDSN); v != "" {
		pg.DSN, pg.dsnFromEnv = secretString(v), true
	}
	if pg.DSN == "" {
		add("storage.postgres.dsn", "is required: a PostgreSQL connection string such as postgres://provider@db.example.org:5432/provider?sslmode=verify-full, here or in %s", envPostgresDSN)
	} else if problem := dsnProblem(string(pg.DSN)); problem != "" {
		if pg.dsnFromEnv {
			problem = "(from " + envPostgresDSN + ") " + problem
		}
		add("storage.postgres.dsn", "%s", problem)
	}
	if pg.MaxConns < 0 || pg.MaxConns > maxPostgresConns {
		add("storage.postgres.max_conns", "must be between 1 and %d (0 or absent: %d)", maxPostgresConns, postgres.DefaultMaxConns)
	}
	fromEnv := ""
	if v := os.Getenv(envEncryptionKey); v != "" {
		c.Keys.EncryptionKey, fromEnv = secretString(v), "(from "+envEncryptionKey+") "
	}
	if c.Keys.EncryptionKey == "" {
		add("keys.encryption_key", "is required with storage.postgres: the base64 of 32 random bytes (openssl rand -base64 32), here or in %s; it encrypts the signing keys and the provider secret in the database", envEncryptionKey)
	} else if _, err := parseEncryptionKey(string(c.Keys.EncryptionKey)); err != nil {
		add("keys.encryption_key", "%s%v", fromEnv, err)
	}
}

// parseEncryptionKey is keys.ParseEncryptionKey, the vault's parser, with
// its errors worded for a config problem. They never hold the value.
func parseEncryptionKey(s string) ([]byte, error) {
	key, err := keys.ParseEncryptionKey(s)
	var size *keys.EncryptionKeySizeError
	switch {
	case err == nil:
		return key, nil
	case errors.As(err, &size):
		return nil, fmt.Errorf("decodes to %d bytes: it must be the base64 of exactly %d random bytes (openssl rand -base64 32)", size.Got, keys.EncryptionKeySize)
	}
	return nil, errors.New("is not base64: it must be the base64 of 32 random bytes (openssl rand -base64 32)")
}

// dsnProblem says what is wrong with a connection string, without a
// word of the string itself; "" when pgx can use it.
func dsnProblem(dsn string) string {
	_, err := pgconn.ParseConfig(dsn)
	if err == nil {
		return ""
	}
	msg := "is not a valid PostgreSQL connection string (a URL like postgres://user@host:5432/db?sslmode=verify-full, or key=value pairs like host=db.example.org dbname=provider)"
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		if reason := parseConfigReason(pe); reason != "" && !mayLeak(reason, dsn) {
			msg += ": " + reason
		}
	}
	return msg
}

// parseConfigReason is pgx's own words for a ParseConfigError, without
// the connection string it quotes (redacted on a best-effort basis only)
// and without the wrapped error, which may quote it whole (a URL parse
// error does), except for TLS files and service files, which name a path.
func parseConfigReason(pe *pgconn.ParseConfigError) string {
	cp := *pe
	cp.ConnString = ""
	text := strings.TrimPrefix(cp.Error(), "cannot parse ``: ")
	if inner := pe.Unwrap(); inner != nil {
		text = strings.TrimSuffix(text, " ("+inner.Error()+")")
		if text == "failed to configure TLS" || text == "failed to read service" {
			text += " (" + inner.Error() + ")"
		}
	}
	return text
}

var (
	urlPassword = regexp.MustCompile(`://[^/@]*:([^@/]*)@`)
	kvPassword  = regexp.MustCompile(`password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)
)

// mayLeak reports whether text holds the DSN, or what looks like its
// password.
func mayLeak(text, dsn string) bool {
	if strings.Contains(text, dsn) {
		return true
	}
	for _, re := range []*regexp.Regexp{urlPassword, kvPassword} {
		for _, m := range re.FindAllStringSubmatch(dsn, -1) {
			if pw := strings.Trim(m[1], "'"); pw != "" && strings.Contains(text, pw) {
				return true
			}
		}
	}
	return false
}

// dsnTarget names the server and database of a DSN for logs and
// messages: host:port/database, never the user's password.
func dsnTarget(dsn string) string {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "(an unusable connection string)"
	}
	return fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
}

// describeStorage names the config's database for the operator: the bbolt
// file, or the PostgreSQL server and database.
func (c *fileConfig) describeStorage() string {
	if c.usesPostgres() {
		return "PostgreSQL " + dsnTarget(string(c.Storage.Postgres.DSN))
	}
	return "bbolt " + c.Storage.Bolt
}

func (c *fileConfig) postgresOptions(migrate bool, log *slog.Logger) postgres.Options {
	return postgres.Options{
		DSN:      string(c.Storage.Postgres.DSN),
		MaxConns: int32(c.Storage.Postgres.MaxConns),
		Migrate:  migrate,
		Logger:   log,
	}
}

// openPostgres opens the config's database, applying the migrations it
// lacks when migrate is set (serve, migrate-storage's target); without
// it, a database behind this binary is refused with a hint to run
// `provider migrate`. A database newer than the binary is always refused.
func openPostgres(ctx context.Context, cfg *fileConfig, migrate bool, log *slog.Logger) (*postgres.Store, storage.Store, error) {
	pg, err := postgres.Open(ctx, cfg.postgresOptions(migrate, log))
	if err != nil {
		return nil, nil, err
	}
	return pg, pg, nil
}

// openServeStore opens the store serve runs on: the bbolt file, or the
// PostgreSQL database, brought up to this binary's schema first (the
// migration runner holds an advisory lock, so replicas may start
// together). pg is nil on bbolt.
func openServeStore(ctx context.Context, cfg *fileConfig, log *slog.Logger) (storage.Store, *postgres.Store, error) {
	if cfg.usesPostgres() {
		pg, store, err := openPostgres(ctx, cfg, true, log)
		if err != nil {
			return nil, nil, err
		}
		log.Info("storage: PostgreSQL", "database", dsnTarget(string(cfg.Storage.Postgres.DSN)), "schema_version", postgres.SchemaVersion())
		return store, pg, nil
	}
	if os.Getenv(envPostgresDSN) != "" {
		log.Warn(envPostgresDSN+" is set but the config has no storage.postgres block: using the bbolt file", "bolt", cfg.Storage.Bolt)
	}
	store, err := bolt.Open(cfg.Storage.Bolt, bolt.Options{})
	if errors.Is(err, bolt.ErrLocked) {
		return nil, nil, fmt.Errorf("database %s is in use by another process (is a server already running?)", cfg.Storage.Bolt)
	}
	if err != nil {
		return nil, nil, err
	}
	return store, nil, nil
}

// openKeysOn opens the signing keys and the provider secret: the key
// directory on bbolt (pg nil), the database's encrypted vault on
// PostgreSQL.
func openKeysOn(cfg *fileConfig, pg *postgres.Store, log *slog.Logger) (*keys.Manager, error) {
	if pg == nil {
		return openKeys(cfg, log)
	}
	encKey, err := keys.ParseEncryptionKey(string(cfg.Keys.EncryptionKey))
	if err != nil {
		return nil, fmt.Errorf("keys.encryption_key: %v", err) // checked by validate; never the value
	}
	kr, err := pg.Keyring(encKey)
	if err != nil {
		return nil, err
	}
	return keys.OpenVault(kr, keyOptions(cfg, log))
}

// refuseOnPostgres is the one-line refusal of a command that works on the
// bbolt file only.
func refuseOnPostgres(cfg *fileConfig, command string) error {
	if !cfg.usesPostgres() {
		return nil
	}
	switch command {
	case "compact":
		return errors.New("storage is PostgreSQL: compact rewrites a bbolt file; PostgreSQL reclaims space itself (autovacuum)")
	default:
		return fmt.Errorf("storage is PostgreSQL: %s works on a bbolt file; use pg_dump and pg_restore (the keys are in the database, encrypted: keep keys.encryption_key apart from the dumps), or copy the installation to a bbolt file with provider migrate-storage", command)
	}
}
