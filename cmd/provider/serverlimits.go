package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/smallsso/provider/provider"
)

// limitsConfig is the config's limits: block: what one request may carry
// (provider.Limits) and what the server as a whole allows (ServerLimits).
type limitsConfig struct {
	provider.Limits `yaml:",inline"`
	ServerLimits    `yaml:",inline"`
}

// ServerLimits bound the HTTP server: how long a client may take to send
// a request or read an answer, how long an idle connection is kept, and
// how many requests are worked on at once. Zero or absent is the default.
type ServerLimits struct {
	ReadHeaderTimeout     duration `yaml:"read_header_timeout"`
	ReadTimeout           duration `yaml:"read_timeout"`
	WriteTimeout          duration `yaml:"write_timeout"`
	IdleTimeout           duration `yaml:"idle_timeout"`
	MaxConcurrentRequests int      `yaml:"max_concurrent_requests"`
}

// Defaults of ServerLimits, documented in config.example.yaml.
const (
	defaultReadHeaderTimeout     = 10 * time.Second
	defaultReadTimeout           = 30 * time.Second
	defaultWriteTimeout          = 30 * time.Second
	defaultIdleTimeout           = 2 * time.Minute
	defaultMaxConcurrentRequests = 1024

	minServerTimeout         = time.Second
	maxServerTimeout         = time.Hour
	maxMaxConcurrentRequests = 1 << 20
)

// withDefaults fills zero limits with the defaults.
func (l ServerLimits) withDefaults() ServerLimits {
	set := func(d *duration, def time.Duration) {
		if *d == 0 {
			*d = duration(def)
		}
	}
	set(&l.ReadHeaderTimeout, defaultReadHeaderTimeout)
	set(&l.ReadTimeout, defaultReadTimeout)
	set(&l.WriteTimeout, defaultWriteTimeout)
	set(&l.IdleTimeout, defaultIdleTimeout)
	if l.MaxConcurrentRequests == 0 {
		l.MaxConcurrentRequests = defaultMaxConcurrentRequests
	}
	return l
}

// validate reports limits out of range, with the limits. key path.
func (l ServerLimits) validate(add func(key, format string, args ...any)) {
	for _, t := range []struct {
		key      string
		v        duration
		fallback time.Duration
	}{
		{"read_header_timeout", l.ReadHeaderTimeout, defaultReadHeaderTimeout},
		{"read_timeout", l.ReadTimeout, defaultReadTimeout},
		{"write_timeout", l.WriteTimeout, defaultWriteTimeout},
		{"idle_timeout", l.IdleTimeout, defaultIdleTimeout},
	} {
		if d := time.Duration(t.v); d != 0 && (d < minServerTimeout || d > maxServerTimeout) {
			add("limits."+t.key, "%s must be between %s and %s (0 or absent: the default, %s)", d, minServerTimeout, maxServerTimeout, t.fallback)
		}
	}
	if eff := l.withDefaults(); eff.ReadHeaderTimeout > eff.ReadTimeout {
		// read_timeout covers the headers too: a longer header timeout
		// would never be reached.
		add("limits.read_header_timeout", "%s must not exceed limits.read_timeout (%s)", time.Duration(eff.ReadHeaderTimeout), time.Duration(eff.ReadTimeout))
	}
	if n := l.MaxConcurrentRequests; n < 0 || n > maxMaxConcurrentRequests {
		add("limits.max_concurrent_requests", "%d must be between 1 and %d (0 or absent: the default, %d)", n, maxMaxConcurrentRequests, defaultMaxConcurrentRequests)
	}
}

// newHTTPServer is the provider's HTTP server with the config's limits:
// its timeouts, MaxHeaderBytes, and at most max_concurrent_requests
// requests in flight.
func newHTTPServer(cfg *fileConfig, h http.Handler, log *slog.Logger) *http.Server {
	l := cfg.Limits.ServerLimits.withDefaults()
	basePath := ""
	if u, err := url.Parse(cfg.Issuer); err == nil {
		basePath = strings.TrimSuffix(u.Path, "/")
	}
	return &http.Server{
		Handler:           limitConcurrency(h, l.MaxConcurrentRequests, basePath, log),
		ReadHeaderTimeout: time.Duration(l.ReadHeaderTimeout),
		ReadTimeout:       time.Duration(l.ReadTimeout),
		WriteTimeout:      time.Duration(l.WriteTimeout),
		IdleTimeout:       time.Duration(l.IdleTimeout),
		MaxHeaderBytes:    cfg.Limits.Limits.Defaults().HeaderBytes,
		// The server's own complaints (TLS handshakes of scanners, broken
		// connections) are noise at info level, and belong in the
		// structured log rather than on stderr in another format.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// busyLogEvery spaces out the warning that requests are being refused.
const busyLogEvery = 10 * time.Second

// limitConcurrency lets at most max requests through at once. One more is
// answered 503 with Retry-After: 1 straight away instead of waiting in a
// queue that would grow without bound. /healthz and /readyz are never
// refused: a busy server is alive, and a probe that fails under load would
// get a small deployment's only instance restarted or taken out of
// rotation.
func limitConcurrency(next http.Handler, max int, basePath string, log *slog.Logger) http.Handler {
	slots := make(chan struct{}, max)
	var refused atomic.Int64
	var lastLog atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch strings.TrimPrefix(r.URL.Path, basePath) {
		case "/healthz", "/readyz":
			next.ServeHTTP(w, r)
			return
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			next.ServeHTTP(w, r)
			return
		default:
		}
		n := refused.Add(1)
		now := time.Now().UnixNano()
		if last := lastLog.Load(); now-last >= int64(busyLogEvery) && lastLog.CompareAndSwap(last, now) {
			log.Warn("busy: requests refused with 503 (limits.max_concurrent_requests reached)",
				"max_concurrent_requests", max, "refused_since_start", n)
		}
		answerBusy(w, r)
	})
}

// answerBusy is the 503: a short page for browsers, a JSON error (RFC
// 6749's temporarily_unavailable) for everyone else.
func answerBusy(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Retry-After", "1")
	h.Set("Cache-Control", "no-store")
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "<!doctype html><title>Busy</title><p>The server is busy. Try again in a moment.</p>\n")
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	json.NewEncoder(w).Encode(map[string]string{
		"error":             "temporarily_unavailable",
		"error_description": "The server is busy; retry in a second.",
	})
}
