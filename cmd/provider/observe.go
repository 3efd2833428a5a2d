package main

// The audit log (audit:) and the Prometheus metrics (metrics:) of a
// running server: config, validation, and what serve opens and closes.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/smallsso/provider/provider/audit"
	"github.com/smallsso/provider/provider/metrics"
)

// auditConfig is the audit: block.
type auditConfig struct {
	// File receives the audit log, one JSON object per line: a path
	// (relative to the config file; its directory must exist), or
	// "stderr". Empty: no audit log.
	File string `yaml:"file"`
}

// auditStderr is the audit.file value that writes to standard error.
const auditStderr = "stderr"

// check validates the block and resolves a relative file against the
// config file's directory.
func (a *auditConfig) check(c *fileConfig, add func(key, format string, args ...any)) {
	if a.File == "" || a.File == auditStderr {
		return
	}
	a.File = c.resolve(a.File)
	if st, err := os.Stat(a.File); err == nil && !st.Mode().IsRegular() {
		add("audit.file", "%s is not a regular file", a.File)
		return
	}
	dir := filepath.Dir(a.File)
	if st, err := os.Stat(dir); err != nil {
		add("audit.file", "directory %s: %v", dir, errors.Unwrap(err))
	} else if !st.IsDir() {
		add("audit.file", "%s is not a directory", dir)
	}
}

// metricsConfig is the metrics: block.
type metricsConfig struct {
	// Listen is the host:port of the metrics listener (/metrics); empty
	// (the default) serves no metrics.
	Listen string `yaml:"listen"`
}

func (m *metricsConfig) check(c *fileConfig, add func(key, format string, args ...any)) {
	if m.Listen == "" {
		return
	}
	host, port, err := net.SplitHostPort(m.Listen)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		add("metrics.listen", "%q must be host:port, like 127.0.0.1:9464", m.Listen)
		return
	}
	if m.Listen == c.Listen || (port != "0" && port == portOf(c.Listen) && (host == "" || hostOf(c.Listen) == "" || host == hostOf(c.Listen))) {
		add("metrics.listen", "%q is the address of listen; metrics need their own", m.Listen)
	}
}

func portOf(hostport string) string {
	_, p, _ := net.SplitHostPort(hostport)
	return p
}

func hostOf(hostport string) string {
	h, _, _ := net.SplitHostPort(hostport)
	return h
}

// openAuditLog opens the configured audit log; with none, the sink is
// nil. log hears of write failures (a full disk): the audit log never
// stops the server. file is the open file, nil for none or stderr.
func openAuditLog(cfg *fileConfig, stderr io.Writer, log *slog.Logger) (aw *audit.Writer, file *audit.File, err error) {
	var w io.Writer
	switch cfg.Audit.File {
	case "":
		return nil, nil, nil
	case auditStderr:
		w = stderr
	default:
		// Created by root (an admin command while the server is stopped),
		// the file gets the database's owner: the server's user.
		if file, err = audit.OpenFileLike(cfg.Audit.File, cfg.Storage.Bolt, filepath.Dir(cfg.Audit.File)); err != nil {
			return nil, nil, err
		}
		w = file
	}
	aw = audit.NewWriter(w, nil)
	if log != nil {
		aw.OnError = func(err error) {
			if err != nil {
				log.Error("audit log: writing failed; events are lost until it works again", "file", cfg.Audit.File, "err", err)
			} else {
				log.Info("audit log: writing works again", "file", cfg.Audit.File)
			}
		}
	}
	return aw, file, nil
}

// observer is a running server's audit log and metrics.
type observer struct {
	// events goes to the audit log and the metrics; never nil.
	events  audit.Sink
	metrics *metrics.Metrics // nil unless metrics.listen is set
	file    *audit.File      // nil unless audit.file names a file
	ln      net.Listener
	srv     *http.Server
}

// openObserver opens the audit log and the metrics listener (not yet
// serving: see start).
func openObserver(cfg *fileConfig, e *env, log *slog.Logger) (*observer, error) {
	aw, file, err := openAuditLog(cfg, e.stderr, log)
	if err != nil {
		return nil, err
	}
	o := &observer{file: file}
	var sinks []audit.Sink
	if aw != nil {
		sinks = append(sinks, aw)
	}
	if cfg.Metrics.Listen != "" {
		o.metrics = metrics.New()
		db := cfg.Storage.Bolt
		if !cfg.usesPostgres() { // the size of the bbolt file
			o.metrics.DBSize(func() float64 {
				st, err := os.Stat(db)
				if err != nil {
					return 0
				}
				return float64(st.Size())
			})
		}
		sinks = append(sinks, o.metrics)
		o.ln, err = net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			o.shutdown(context.Background())
			return nil, fmt.Errorf("metrics.listen %s: %w", cfg.Metrics.Listen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", o.metrics.Handler())
		o.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	}
	o.events = audit.Fanout(sinks...)
	return o, nil
}

// start serves the metrics, if any; errc hears when that stops.
func (o *observer) start(errc chan<- error, log *slog.Logger) {
	if o.srv == nil {
		return
	}
	go func() { errc <- o.srv.Serve(o.ln) }()
	log.Info("metrics listening", "addr", o.ln.Addr().String(), "path", "/metrics")
}

// shutdown stops the metrics listener (a scrape in flight gets a few
// seconds) and closes the audit log.
func (o *observer) shutdown(ctx context.Context) {
	if o.srv != nil {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if o.srv.Shutdown(ctx) != nil {
			o.srv.Close()
		}
	}
	if o.ln != nil {
		o.ln.Close() // if serve stopped before start (closing twice is harmless)
	}
	if o.file != nil {
		o.file.Close()
	}
}

// reopenAuditLog reopens the audit log file at its path (for a SIGHUP
// after a rotation; a moved file is also noticed on its own).
func (o *observer) reopenAuditLog() error {
	if o.file == nil {
		return nil
	}
	return o.file.Reopen()
}

// janitor records one garbage collection run.
func (o *observer) janitor(removed int, err error) {
	if o.metrics != nil {
		o.metrics.Janitor(removed, err)
	}
}

// configReloaded records a reload of the config (SIGHUP or a change of
// the file) in the audit log: err is nil when the new config serves. A
// refused one is recorded as "refused", not with err: the problems may
// quote the config, which holds secrets (the server log has them).
func (o *observer) configReloaded(ctx context.Context, err error) {
	reason := ""
	if err != nil {
		reason = "refused"
	}
	e := audit.Reloaded(reason)
	e.Time = time.Now().UTC()
	e.Actor = &audit.Actor{Via: "signal", UID: os.Getuid(), PID: os.Getpid()}
	o.events.Record(ctx, e)
}

// sinkOrNil keeps a nil *audit.Writer a nil Sink.
func sinkOrNil(w *audit.Writer) audit.Sink {
	if w == nil {
		return nil
	}
	return w
}
