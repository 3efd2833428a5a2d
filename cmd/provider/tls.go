package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/smallsso/provider/provider/clientspec"
)

// tlsConfig is the tls: block: HTTPS served by the provider itself, from
// certificate files or from an ACME CA. Absent, the server speaks plain
// HTTP (loopback, or behind a TLS-terminating proxy).
type tlsConfig struct {
	// CertFile and KeyFile are PEM files (the certificate chain, leaf
	// first, and its private key), relative to the config file. They are
	// read again when they change, so a renewal needs no restart.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ACME gets and renews certificates from an ACME CA (Let's Encrypt by
	// default).
	ACME *acmeConfig `yaml:"acme"`
	// RedirectHTTP is the address of a plain-HTTP listener (":80") that
	// redirects to the issuer and answers ACME HTTP-01 challenges.
	RedirectHTTP string `yaml:"redirect_http"`
}

// acmeConfig is tls.acme.
type acmeConfig struct {
	// Domains are the only names certificates are requested for; the
	// issuer's host must be one of them.
	Domains []string `yaml:"domains"`
	// CacheDir keeps the account key and the certificates; relative to the
	// config file. Default: "acme" beside the database file.
	CacheDir string `yaml:"cache_dir"`
	// Email is given to the CA for expiry notices; optional.
	Email string `yaml:"email"`
	// DirectoryURL is the CA's ACME directory; default Let's Encrypt's
	// production directory.
	DirectoryURL string `yaml:"directory_url"`
}

// on reports whether the provider serves HTTPS itself.
func (t *tlsConfig) on() bool {
	return t.CertFile != "" || t.KeyFile != "" || t.ACME != nil
}

// validateTLS checks the tls: block, resolves its paths, and reads the
// certificate files once so a broken pair is found by `config check`.
func (c *fileConfig) validateTLS(add func(key, format string, args ...any)) {
	t := &c.TLS
	if !t.on() {
		if t.RedirectHTTP != "" {
			add("tls.redirect_http", "needs tls.cert_file and tls.key_file, or tls.acme: there is no HTTPS to redirect to")
		}
		return
	}
	// An http issuer off loopback is refused by validate already.
	issuer, _ := url.Parse(c.Issuer)
	if issuer != nil && issuer.Scheme == "http" && clientspec.IsLoopbackHost(issuer.Hostname()) {
		add("issuer", "%q must be https when tls is configured: the server itself answers HTTPS", c.Issuer)
	}
	if t.RedirectHTTP != "" {
		if _, _, err := net.SplitHostPort(t.RedirectHTTP); err != nil {
			add("tls.redirect_http", "%q must be host:port, like :80", t.RedirectHTTP)
		} else if t.RedirectHTTP == c.Listen {
			add("tls.redirect_http", "%q is also listen: give the plain-HTTP listener its own port", t.RedirectHTTP)
		}
	}
	files := t.CertFile != "" || t.KeyFile != ""
	switch {
	case files && t.ACME != nil:
		add("tls", "give cert_file and key_file, or acme, not both")
	case files:
		if t.CertFile == "" {
			add("tls.cert_file", "is required with tls.key_file")
		}
		if t.KeyFile == "" {
			add("tls.key_file", "is required with tls.cert_file")
		}
		if t.CertFile == "" || t.KeyFile == "" {
			return
		}
		t.CertFile, t.KeyFile = c.resolve(t.CertFile), c.resolve(t.KeyFile)
		if _, err := loadKeyPair(t.CertFile, t.KeyFile); err != nil {
			var ke *keyPairError
			if errors.As(err, &ke) {
				add("tls."+ke.field, "%s", ke.problem)
			} else {
				add("tls", "%v", err)
			}
		}
	default:
		c.validateACME(issuer, add)
	}
}

func (c *fileConfig) validateACME(issuer *url.URL, add func(key, format string, args ...any)) {
	a := c.TLS.ACME
	if len(a.Domains) == 0 {
		add("tls.acme.domains", "is required: the host names to get certificates for, the issuer's among them")
	}
	seen, malformed := map[string]bool{}, false
	for i, d := range a.Domains {
		key := fmt.Sprintf("tls.acme.domains[%d]", i)
		d = strings.ToLower(strings.TrimSuffix(d, "."))
		if problem := acmeDomainProblem(d); problem != "" {
			add(key, "%q %s", a.Domains[i], problem)
			malformed = true
			continue
		}
		if seen[d] {
			add(key, "%q is listed twice", a.Domains[i])
		}
		seen[d] = true
		a.Domains[i] = d
	}
	// A malformed entry may be the issuer's host misspelt: one mistake,
	// one problem.
	if issuer != nil && issuer.Scheme == "https" && len(a.Domains) > 0 && !malformed && !seen[strings.ToLower(issuer.Hostname())] {
		add("tls.acme.domains", "must include the issuer's host %q", issuer.Hostname())
	}
	if a.CacheDir == "" {
		a.CacheDir = filepath.Join(filepath.Dir(c.Storage.Bolt), "acme")
	}
	a.CacheDir = c.resolve(a.CacheDir)
	if a.Email != "" {
		if addr, err := mail.ParseAddress(a.Email); err != nil || addr.Address != a.Email {
			add("tls.acme.email", "%q is not an email address like admin@example.org", a.Email)
		}
	}
	if a.DirectoryURL != "" {
		u, err := url.Parse(a.DirectoryURL)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			add("tls.acme.directory_url", "%q must be the CA's ACME directory URL, like https://acme-staging-v02.api.letsencrypt.org/directory", a.DirectoryURL)
		case u.Scheme == "http" && !clientspec.IsLoopbackHost(u.Hostname()):
			add("tls.acme.directory_url", "%q must use https unless the host is loopback", a.DirectoryURL)
		}
	}
}

// acmeDomainProblem says what keeps d from being a name an ACME CA issues
// a certificate for through TLS-ALPN-01 or HTTP-01, or "".
func acmeDomainProblem(d string) string {
	switch {
	case d == "":
		return "is empty"
	case strings.Contains(d, "*"):
		return "is a wildcard: ACME HTTP-01 and TLS-ALPN-01 challenges cannot prove one; list each name"
	case net.ParseIP(strings.Trim(d, "[]")) != nil:
		return "is an IP address: list host names"
	case strings.ContainsAny(d, "/:@ "):
		return "must be a host name like sso.example.org (no scheme, port or path)"
	case !strings.Contains(d, "."):
		return "must be a fully qualified host name like sso.example.org"
	}
	return ""
}

// keyPairError is a certificate or key file that cannot be served, with
// the config key (cert_file or key_file) it belongs to.
type keyPairError struct {
	field, problem string
}

func (e *keyPairError) Error() string { return e.field + ": " + e.problem }

// loadKeyPair reads a PEM certificate chain and its private key, saying
// which of the two files is at fault.
func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, &keyPairError{"cert_file", err.Error()}
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, &keyPairError{"key_file", err.Error()}
	}
	if b, _ := pem.Decode(certPEM); b == nil || b.Type != "CERTIFICATE" {
		return nil, &keyPairError{"cert_file", certFile + " holds no PEM CERTIFICATE block"}
	} else if _, err := x509.ParseCertificate(b.Bytes); err != nil {
		return nil, &keyPairError{"cert_file", certFile + ": " + err.Error()}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		problem := fmt.Sprintf("%s: %v", keyFile, err)
		if strings.Contains(err.Error(), "does not match") {
			problem = fmt.Sprintf("%s is not the private key of the certificate in %s", keyFile, certFile)
		}
		return nil, &keyPairError{"key_file", problem}
	}
	return &pair, nil
}

// certCheckEvery is how often, at most, a handshake looks whether the
// certificate files changed.
const certCheckEvery = 2 * time.Second

// certHolder serves a certificate from files and reads them again when
// they change (a stat at most every certCheckEvery, on a handshake) or
// when Reload is called. A pair that fails to load is logged and the
// previous one keeps serving.
type certHolder struct {
	certFile, keyFile string
	host              string // the issuer's, for a warning when not covered
	log               *slog.Logger
	now               func() time.Time
	every             time.Duration

	cert atomic.Pointer[tls.Certificate]

	mu      sync.Mutex // one check or load at a time
	checked time.Time
	seen    [2]os.FileInfo // the files when last loaded (or tried)
}

func newCertHolder(certFile, keyFile, host string, log *slog.Logger) (*certHolder, error) {
	h := &certHolder{certFile: certFile, keyFile: keyFile, host: host, log: log, now: time.Now, every: certCheckEvery}
	if err := h.load(); err != nil {
		return nil, err
	}
	h.checked = h.now()
	return h, nil
}

// GetCertificate is tls.Config.GetCertificate.
func (h *certHolder) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	h.maybeReload()
	return h.cert.Load(), nil
}

// maybeReload loads the files again if they changed since the last load;
// a handshake that finds another one checking goes on with the current
// certificate instead of waiting.
func (h *certHolder) maybeReload() {
	if !h.mu.TryLock() {
		return
	}
	defer h.mu.Unlock()
	now := h.now()
	if now.Sub(h.checked) < h.every {
		return
	}
	h.checked = now
	cert, _ := os.Stat(h.certFile)
	key, _ := os.Stat(h.keyFile)
	if sameStat(cert, h.seen[0]) && sameStat(key, h.seen[1]) {
		return
	}
	_ = h.load() // logged
}

// Reload reads the files now, changed or not (SIGHUP). On error the
// previous certificate keeps serving.
func (h *certHolder) Reload() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checked = h.now()
	return h.load()
}

// load reads the pair; h.mu is held, or h is not shared yet.
func (h *certHolder) load() error {
	// Stat before reading: a file replaced in between is seen as changed
	// at the next check and read again.
	h.seen[0], _ = os.Stat(h.certFile)
	h.seen[1], _ = os.Stat(h.keyFile)
	pair, err := loadKeyPair(h.certFile, h.keyFile)
	if err != nil {
		if h.cert.Load() != nil {
			h.log.Error("tls certificate not reloaded; the previous one keeps serving", "cert_file", h.certFile, "key_file", h.keyFile, "err", err)
		}
		return fmt.Errorf("tls.%w", err)
	}
	leaf := pair.Leaf
	h.log.Info("tls certificate loaded", "cert_file", h.certFile, "names", leaf.DNSNames, "ips", leaf.IPAddresses,
		"serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	if now := h.now(); now.After(leaf.NotAfter) {
		h.log.Warn("tls certificate has expired", "cert_file", h.certFile, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if h.host != "" && leaf.VerifyHostname(h.host) != nil {
		h.log.Warn("tls certificate does not cover the issuer's host", "cert_file", h.certFile, "host", h.host, "names", leaf.DNSNames)
	}
	h.cert.Store(pair)
	return nil
}

// sameStat reports whether a file looks unchanged: the same file (not
// replaced by a rename or a new symlink target), mtime and size.
func sameStat(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}

// hstsValue is sent on every response served over TLS: a year, for this
// host only (subdomains may be other people's services).
const hstsValue = "max-age=31536000"

// tlsServing is what serve needs of the tls: block. A nil *tlsServing is
// TLS off: plain HTTP, and every method is a no-op.
type tlsServing struct {
	config   *tls.Config
	certs    *certHolder       // cert_file/key_file
	acme     *autocert.Manager // tls.acme
	issuer   *url.URL
	redirect string // tls.redirect_http
	log      *slog.Logger

	redirectSrv *http.Server
	acmeLogged  atomic.Int64 // unix time of the last logged ACME failure
}

// newTLSServing reads the certificate files or prepares the ACME manager;
// it opens nothing. nil when TLS is off.
func newTLSServing(cfg *fileConfig, log *slog.Logger) (*tlsServing, error) {
	t := &cfg.TLS
	if !t.on() {
		return nil, nil
	}
	issuer, err := url.Parse(cfg.Issuer)
	if err != nil {
		return nil, err
	}
	s := &tlsServing{issuer: issuer, redirect: t.RedirectHTTP, log: log,
		config: &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}}
	if t.ACME != nil {
		s.acme = newACMEManager(t.ACME)
		s.config.GetCertificate = s.acmeCertificate
		s.config.NextProtos = append(s.config.NextProtos, acme.ALPNProto) // TLS-ALPN-01
		dir := t.ACME.DirectoryURL
		if dir == "" {
			dir = autocert.DefaultACMEDirectory
		}
		log.Info("tls certificates from ACME", "domains", t.ACME.Domains, "cache_dir", t.ACME.CacheDir, "directory_url", dir)
		return s, nil
	}
	s.certs, err = newCertHolder(t.CertFile, t.KeyFile, issuer.Hostname(), log)
	if err != nil {
		return nil, err
	}
	s.config.GetCertificate = s.certs.GetCertificate
	return s, nil
}

// newACMEManager is the autocert manager for tls.acme: certificates for
// the listed domains only, kept in the cache dir. Configuring tls.acme
// accepts the CA's terms of service.
func newACMEManager(a *acmeConfig) *autocert.Manager {
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(a.CacheDir),
		HostPolicy: autocert.HostWhitelist(a.Domains...),
		Email:      a.Email,
	}
	if a.DirectoryURL != "" {
		m.Client = &acme.Client{DirectoryURL: a.DirectoryURL}
	}
	return m
}

// acmeCertificate logs why a certificate for one of the domains could not
// be had (at most once a minute); other names (scanners, wrong DNS) are
// refused quietly.
func (s *tlsServing) acmeCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	cert, err := s.acme.GetCertificate(hello)
	if err != nil && s.acme.HostPolicy(hello.Context(), hello.ServerName) == nil {
		now := time.Now().Unix()
		if last := s.acmeLogged.Load(); now-last >= 60 && s.acmeLogged.CompareAndSwap(last, now) {
			s.log.Error("acme certificate", "domain", hello.ServerName, "err", err)
		}
	}
	return cert, err
}

// Reload reads the certificate files again now (SIGHUP); under ACME, or
// with TLS off, it does nothing. The previous certificate keeps serving
// when the new files are broken.
func (s *tlsServing) Reload() error {
	if s == nil || s.certs == nil {
		return nil
	}
	return s.certs.Reload()
}

// scheme is the listener's: https or http.
func (s *tlsServing) scheme() string {
	if s == nil {
		return "http"
	}
	return "https"
}

// listener wraps the main listener in TLS.
func (s *tlsServing) listener(ln net.Listener) net.Listener {
	if s == nil {
		return ln
	}
	return tls.NewListener(ln, s.config)
}

// handler adds HSTS to every response. Only when the provider itself
// serves TLS: behind a proxy, the proxy owns the host's transport policy.
func (s *tlsServing) handler(h http.Handler) http.Handler {
	if s == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", hstsValue)
		h.ServeHTTP(w, r)
	})
}

// listenRedirect opens tls.redirect_http; nil when there is none.
func (s *tlsServing) listenRedirect() (net.Listener, error) {
	if s == nil || s.redirect == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", s.redirect)
	if err != nil {
		return nil, fmt.Errorf("listen %s (tls.redirect_http): %w", s.redirect, err)
	}
	return ln, nil
}

// serveRedirect serves the plain-HTTP listener until shutdown: ACME
// HTTP-01 challenges, and a redirect to the issuer for everything else.
func (s *tlsServing) serveRedirect(ln net.Listener, errc chan<- error) {
	if ln == nil {
		return
	}
	h := redirectHandler(s.issuer)
	if s.acme != nil {
		h = s.acme.HTTPHandler(h)
	}
	s.redirectSrv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}
	s.log.Info("redirecting http to https", "addr", ln.Addr().String(), "to", s.issuer.Scheme+"://"+s.issuer.Host, "acme_http_01", s.acme != nil)
	go func() { errc <- s.redirectSrv.Serve(ln) }()
}

// servers are the HTTP servers TLS added (the redirect listener's), to
// be drained on shutdown with the main one.
func (s *tlsServing) servers() []*http.Server {
	if s == nil || s.redirectSrv == nil {
		return nil
	}
	return []*http.Server{s.redirectSrv}
}

// redirectHandler answers 308 to the same path and query on the issuer's
// origin. The request's Host header is not used: a redirect must not send
// a browser wherever the request claimed to be addressed.
func redirectHandler(issuer *url.URL) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := url.URL{Scheme: "https", Host: issuer.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
		if target.Path == "" {
			target.Path = "/"
		}
		http.Redirect(w, r, target.String(), http.StatusPermanentRedirect)
	})
}
