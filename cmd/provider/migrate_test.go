package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/smallsso/provider/storage/postgres"
	"github.com/smallsso/provider/storage/postgres/pgtest"
)

// dsnPasswordOf is the password in a DSN URL.
func dsnPasswordOf(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	if pw == "" {
		t.Fatal("the test DSN has no password")
	}
	return pw
}

func TestMigrateFreshDatabase(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).NewDatabase(t)
	key := newEncryptionKey()
	c := writePGConfig(t, freePort(t), dsn, key, "")
	target := dsnTarget(dsn)
	want := postgres.SchemaVersion()

	out := runCLI(t, "", "migrate", "--config", c.path).ok(t)
	var applied []string
	for v := 1; v <= want; v++ {
		applied = append(applied, fmt.Sprint(v))
	}
	if exp := fmt.Sprintf("database %s at schema version %d (applied %s)\n", target, want, strings.Join(applied, ", ")); out != exp {
		t.Errorf("first migrate: %q, want %q", out, exp)
	}
	if v, err := schemaVersionOf(t.Context(), dsn); err != nil || v != want {
		t.Errorf("schema version after migrate: %d, %v; want %d", v, err, want)
	}
	again := runCLI(t, "", "migrate", "--config", c.path).ok(t)
	if exp := fmt.Sprintf("database %s already at schema version %d\n", target, want); again != exp {
		t.Errorf("second migrate: %q, want %q", again, exp)
	}
	noSecrets(t, "migrate", out+again, dsnPasswordOf(t, dsn), key)
}

// A database a newer binary migrated is refused by migrate and by serve,
// in one line, without the DSN's password.
func TestMigrateRefusesNewerDatabase(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).NewDatabase(t)
	key := newEncryptionKey()
	c := writePGConfig(t, freePort(t), dsn, key, "")
	runCLI(t, "", "migrate", "--config", c.path).ok(t)
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), "INSERT INTO schema_migrations (version, name) VALUES ($1, '9999_future.sql')", postgres.SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"migrate", "serve"} {
		line := runCLI(t, "", cmd, "--config", c.path).fails(t, 1)
		if !strings.Contains(line, "the database schema is newer than this binary") || !strings.Contains(line, "upgrade the binary") {
			t.Errorf("%s on a newer database: %q", cmd, line)
		}
		noSecrets(t, cmd, line, dsnPasswordOf(t, dsn), key)
	}
}

func TestMigrateOnBolt(t *testing.T) {
	t.Parallel()
	c := writeConfig(t, freePort(t), "")
	out := runCLI(t, "", "migrate", "--config", c.path).ok(t)
	if out != "storage is bbolt ("+c.bolt+"): nothing to migrate; the file's schema is upgraded when it is opened\n" {
		t.Errorf("migrate on bbolt: %q", out)
	}
}

// A wrong password: serve and the CLI fail in one line that names the
// server, never the password tried.
func TestPostgresWrongPassword(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).NewDatabase(t)
	u, _ := url.Parse(dsn)
	const wrong = "wrong-s3cret-password"
	u.User = url.UserPassword("postgres", wrong)
	key := newEncryptionKey()
	c := writePGConfig(t, freePort(t), u.String(), key, "")
	for _, args := range [][]string{
		{"serve", "--config", c.path},
		{"migrate", "--config", c.path},
		{"users", "list", "--config", c.path},
		{"keys", "list", "--config", c.path},
	} {
		line := runCLI(t, "", args...).fails(t, 1)
		if !strings.Contains(line, "password authentication failed") {
			t.Errorf("%s with a wrong password: %q", args[0], line)
		}
		noSecrets(t, args[0], line, wrong, dsnPasswordOf(t, dsn), key)
	}
}

// serve on PostgreSQL applies the migrations at start, names the
// database in its log without the password, and opens no admin socket.
func TestServeMigratesPostgres(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).NewDatabase(t)
	key := newEncryptionKey()
	c := writePGConfig(t, freePort(t), dsn, key, appConfig)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	log := &syncBuffer{}
	done := make(chan int, 1)
	exited := make(chan struct{})
	go func() {
		done <- run(ctx, []string{"serve", "--config", c.path}, strings.NewReader(""), io.Discard, log)
		close(exited)
	}()
	// Until the store and the key vault land, serve stops after the
	// migrations; with them it listens. Either way the schema is there.
	listening := log.waitFor("msg=listening", exited, 30*time.Second)
	if v, err := schemaVersionOf(t.Context(), dsn); err != nil || v != postgres.SchemaVersion() {
		t.Errorf("schema version after serve: %d, %v; want %d", v, err, postgres.SchemaVersion())
	}
	if listening {
		if !strings.Contains(log.String(), `msg="storage: PostgreSQL" database=`+dsnTarget(dsn)) {
			t.Errorf("serve does not name its database:\n%s", log.String())
		}
		if strings.Contains(log.String(), "admin_socket") {
			t.Errorf("serve on PostgreSQL opened an admin socket:\n%s", log.String())
		}
		cancel()
	}
	<-exited
	noSecrets(t, "serve's log", log.String(), dsnPasswordOf(t, dsn), key)
	// Nothing of bbolt's: no database file, key directory or socket.
	if _, err := os.Stat(filepath.Join(c.dir, "data")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("serve on PostgreSQL made %s/data: %v", c.dir, err)
	}
}

// The CLI works on the database directly, with the same validation and
// audit entries as on a bbolt file without a server.
func TestCLIOnPostgres(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).NewDatabase(t)
	key := newEncryptionKey()
	c := writePGConfig(t, freePort(t), dsn, key, "audit:\n  file: audit.log\n")
	line := runCLI(t, "", "users", "list", "--config", c.path).fails(t, 1)
	if !strings.Contains(line, "run `provider migrate`") {
		t.Errorf("users list on an unmigrated database: %q", line)
	}
	runCLI(t, "", "migrate", "--config", c.path).ok(t)
	runCLI(t, "erin-password-for-tests\n", "users", "add", "--config", c.path, "--username", "erin", "--password-stdin").ok(t)
	if out := runCLI(t, "", "users", "list", "--config", c.path).ok(t); !strings.Contains(out, "erin") {
		t.Errorf("users list: %q", out)
	}
	line = runCLI(t, "another-password-for-erin\n", "users", "add", "--config", c.path, "--username", "erin", "--password-stdin").fails(t, 1)
	if !strings.Contains(line, "already exists") {
		t.Errorf("adding erin twice: %q", line)
	}
	raw, _ := readAudit(t, c.dir+"/audit.log")
	if !strings.Contains(raw, `"outcome":"success","op":"user_add","object":"erin","actor":{"via":"cli"`) {
		t.Errorf("audit log lacks the CLI's user_add:\n%s", raw)
	}
	noSecrets(t, "audit log", raw, "erin-password-for-tests", dsnPasswordOf(t, dsn), key)
}
