// Package pgtest runs throw-away PostgreSQL servers for tests: initdb into
// a directory under the test's temp dir, the server on a loopback port with
// its own socket directory, never a system service. It uses the programs
// of Debian's postgresql package (found on PATH or under
// /usr/lib/postgresql/*/bin). It must not import the provider's packages:
// it is only a harness.
//
// Without those programs a test fails under CI (the CI variable set) and
// skips with a loud reason elsewhere.
//
// A package shares one server between its tests: call Main from TestMain,
// then Shared(t).NewDatabase(t) in each test for a fresh, empty database.
package pgtest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is one running PostgreSQL server.
type Cluster struct {
	// Dir holds the data directory and the socket directory.
	Dir string
	// Port is the loopback TCP port the server listens on.
	Port int
	// Password is the superuser's (user "postgres") password.
	Password string

	bin  string
	cred *syscall.Credential

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// binDir finds the directory of initdb and postgres.
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(matches) == 0 {
		return "", fmt.Errorf("PostgreSQL is not installed (apt-get install postgresql; .ci/run does so)")
	}
	sort.Strings(matches)
	return filepath.Dir(matches[len(matches)-1]), nil
}

// Available says whether a server can be started here, and why not.
func Available() error {
	_, err := binDir()
	return err
}

// Require fails the test under CI, and skips it loudly elsewhere, when
// PostgreSQL is not installed.
func Require(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("pgtest: %v", err)
		}
		t.Skipf("SKIPPED, NOT TESTED: %v", err)
	}
}

// Start starts a server of the test's own, stopped when the test ends.
func Start(t testing.TB) *Cluster {
	t.Helper()
	Require(t)
	c, err := start(t.TempDir())
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { c.Stop() })
	return c
}

var shared struct {
	sync.Mutex
	c   *Cluster
	dir string
	err error
}

// Shared returns the package's shared server, starting it on first use.
// The package's TestMain must call Main, which stops it.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	Require(t)
	shared.Lock()
	defer shared.Unlock()
	if shared.c == nil && shared.err == nil {
		dir, err := os.MkdirTemp("", "pgtest-")
		if err == nil {
			shared.dir = dir
			shared.c, err = start(dir)
		}
		shared.err = err
	}
	if shared.err != nil {
		t.Fatalf("pgtest: %v", shared.err)
	}
	return shared.c
}

// Main runs the package's tests and stops the shared server after them.
func Main(m *testing.M) {
	code := m.Run()
	shared.Lock()
	if shared.c != nil {
		shared.c.Stop()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	shared.Unlock()
	os.Exit(code)
}

func start(parent string) (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: filepath.Join(parent, "pg"), bin: bin, Password: rand.Text()}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, err
	}
	// PostgreSQL refuses to run as root: as root, run it as an
	// unprivileged user that owns the directory.
	if os.Geteuid() == 0 {
		if err := c.dropPrivileges(parent); err != nil {
			return nil, err
		}
	}
	pwfile := filepath.Join(c.Dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(c.Password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if err := c.chown(pwfile); err != nil {
		return nil, err
	}
	out, err := c.command("initdb", "-D", c.data(), "-U", "postgres", "--pwfile="+pwfile,
		"--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	os.Remove(pwfile)
	if err := c.Restart(); err != nil {
		return nil, err
	}
	return c, nil
}

// dropPrivileges picks the user to run the server as and lets it reach
// the directory: the temp dirs on the way are root's and 0700.
func (c *Cluster) dropPrivileges(parent string) error {
	var u *user.User
	var err error
	for _, name := range []string{"postgres", "nobody"} {
		if u, err = user.Lookup(name); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("running as root and no postgres or nobody user to run the server as: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	for dir := parent; dir != "/" && dir != "." && dir != os.TempDir(); dir = filepath.Dir(dir) {
		info, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if err := os.Chmod(dir, info.Mode().Perm()|0o011); err != nil {
			return err
		}
	}
	return c.chown(c.Dir)
}

func (c *Cluster) chown(path string) error {
	if c.cred == nil {
		return nil
	}
	return os.Chown(path, int(c.cred.Uid), int(c.cred.Gid))
}

func (c *Cluster) data() string    { return filepath.Join(c.Dir, "data") }
func (c *Cluster) sockets() string { return c.Dir }

func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd
}

// Restart starts the server, after Stop or for the first time. It keeps
// the port it had, so DSNs handed out stay valid.
func (c *Cluster) Restart() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd != nil {
		return fmt.Errorf("pgtest: already running")
	}
	if c.log == nil {
		f, err := os.OpenFile(filepath.Join(c.Dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		c.log = f
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if c.Port == 0 || attempt > 0 {
			port, err := freePort()
			if err != nil {
				return err
			}
			c.Port = port
		}
		cmd := c.command("postgres", "-D", c.data(),
			"-c", "listen_addresses=127.0.0.1", "-c", "port="+strconv.Itoa(c.Port),
			"-c", "unix_socket_directories="+c.sockets(),
			// A throw-away server: durability against power loss is not
			// what the tests look at, speed is.
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
			"-c", "max_connections=300", "-c", "shared_buffers=32MB",
			"-c", "log_min_messages=warning")
		cmd.Stdout, cmd.Stderr = c.log, c.log
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("pgtest: start postgres: %w", err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		if err := c.waitReady(done); err != nil {
			cmd.Process.Kill()
			<-done
			lastErr = err
			continue
		}
		c.cmd, c.done = cmd, done
		return nil
	}
	return lastErr
}

// waitReady polls until the server accepts a connection, it exits, or
// 30 seconds pass.
func (c *Cluster) waitReady(exited <-chan struct{}) error {
	deadline := time.Now().Add(30 * time.Second)
	for delay := 5 * time.Millisecond; ; delay = min(delay*2, 100*time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, c.DSN("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("pgtest: postgres exited at start; see %s", filepath.Join(c.Dir, "server.log"))
		case <-time.After(delay):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgtest: postgres not ready after 30s: %v", err)
		}
	}
}

// Stop shuts the server down (fast shutdown: sessions are cut, what was
// committed stays) and waits for it to exit.
func (c *Cluster) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
	c.cmd, c.done = nil, nil
}

// DSN is the URL of database db as the superuser, over loopback TCP.
func (c *Cluster) DSN(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword("postgres", c.Password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// NewDatabase creates an empty database for the test, dropped when it
// ends, and returns its DSN.
func (c *Cluster) NewDatabase(t testing.TB) string {
	t.Helper()
	name := "t_" + strings.ToLower(rand.Text())
	if err := c.exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		c.mu.Lock()
		running := c.cmd != nil
		c.mu.Unlock()
		if running {
			c.exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		}
	})
	return c.DSN(name)
}

func (c *Cluster) exec(ctx context.Context, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
