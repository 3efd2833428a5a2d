package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "provider test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// leaf issues a certificate for 127.0.0.1, ::1 and localhost with the
// given serial, and returns it and its key as PEM.
func (ca *testCA) leaf(t *testing.T, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// replaceFile writes content beside path and renames it over path, as
// certbot's symlink switch or an atomic deploy does.
func replaceFile(t *testing.T, path string, content []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// startHTTPSServer runs `provider serve` like startServer, for an https
// issuer: it waits for the listening line and checks /healthz with
// client.
func startHTTPSServer(t *testing.T, c *testConfig, client *http.Client) *server {
	t.Helper()
	s := launchServer(t, c, context.Background())
	if client != nil {
		resp, err := client.Get(c.issuer + "/healthz")
		if err != nil {
			t.Fatalf("server at %s: %v", c.issuer, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("server at %s: /healthz answered %s", c.issuer, resp.Status)
		}
	}
	return s
}

// httpsClient trusts only pool; each client has its own connections.
func httpsClient(t *testing.T, pool *x509.CertPool, keepAlive bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true, DisableKeepAlives: !keepAlive}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// servedSerial is the serial of the certificate a new connection gets.
func servedSerial(t *testing.T, addr string, pool *x509.CertPool) int64 {
	t.Helper()
	d := &tls.Dialer{Config: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("tls dial %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// pollUntil calls cond every 50ms until it returns true, for at most
// 20s: the server notices changed files at its next check, a few seconds
// at most.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(20 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("after 20s: %s", what)
		}
	}
}

// HTTPS from cert_file/key_file: discovery over TLS with HSTS, the files
// replaced while serving (the new certificate is served to new
// connections, an open connection keeps working), a broken replacement
// leaves the previous certificate serving, and the plain-HTTP listener
// redirects to the issuer whatever Host the request names.
func TestServeTLSFromFiles(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	port, httpPort := freePort(t), freePort(t)
	c := writeConfig(t, port, fmt.Sprintf("tls:\n  cert_file: tls/cert.pem\n  key_file: tls/key.pem\n  redirect_http: 127.0.0.1:%d\n", httpPort)+
		"clients:\n  - id: app\n    public: true\n    redirect_uris: [http://127.0.0.1:1/callback]\n")
	c.issuer = fmt.Sprintf("https://127.0.0.1:%d", port)
	raw, _ := os.ReadFile(c.path)
	writeFile(t, c.path, strings.Replace(string(raw), "issuer: http://", "issuer: https://", 1))
	certFile, keyFile := filepath.Join(c.dir, "tls", "cert.pem"), filepath.Join(c.dir, "tls", "key.pem")
	if err := os.Mkdir(filepath.Dir(certFile), 0o700); err != nil {
		t.Fatal(err)
	}
	cert1, key1 := ca.leaf(t, 1001)
	writeFile(t, certFile, string(cert1))
	writeFile(t, keyFile, string(key1))

	held := httpsClient(t, ca.pool, true)
	s := startHTTPSServer(t, c, held)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if !strings.Contains(s.stderr.String(), "scheme=https") || !strings.Contains(s.stderr.String(), "Try it: open "+c.issuer+"/authorize?") {
		t.Errorf("the listening line or the Try it URL does not say https: %s", s.stderr.String())
	}

	resp, err := held.Get(c.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var disc struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	err = json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || disc.Issuer != c.issuer || disc.TokenEndpoint != c.issuer+"/token" {
		t.Fatalf("discovery over https: %s %+v %v", resp.Status, disc, err)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("Strict-Transport-Security = %q, want max-age=31536000", got)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2 (h2 over ALPN)", resp.Proto)
	}
	if v := resp.TLS.Version; v < tls.VersionTLS12 {
		t.Errorf("TLS version %x", v)
	}
	old := &tls.Config{RootCAs: ca.pool, MaxVersion: tls.VersionTLS11}
	if conn, err := tls.Dial("tcp", addr, old); err == nil {
		conn.Close()
		t.Errorf("a TLS 1.1 handshake succeeded")
	}

	// Renewal: both files replaced, one after the other, as certbot does.
	cert2, key2 := ca.leaf(t, 1002)
	replaceFile(t, certFile, cert2)
	replaceFile(t, keyFile, key2)
	pollUntil(t, "the new certificate (serial 1002) is not served", func() bool { return servedSerial(t, addr, ca.pool) == 1002 })
	resp, err = held.Get(c.issuer + "/healthz")
	if err != nil {
		t.Fatalf("the connection opened before the renewal: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS.PeerCertificates[0].SerialNumber.Int64() != 1001 {
		t.Errorf("the connection opened before the renewal: %s, serial %d; want 200 on the same connection (serial 1001)",
			resp.Status, resp.TLS.PeerCertificates[0].SerialNumber)
	}

	// A broken replacement: a certificate whose key is not key.pem. (The
	// renewal above may have logged one refusal already, if a check fell
	// between the two renames.)
	refused := strings.Count(s.stderr.String(), "tls certificate not reloaded")
	cert3, _ := ca.leaf(t, 1003)
	replaceFile(t, certFile, cert3)
	pollUntil(t, "the broken pair was not reported", func() bool {
		servedSerial(t, addr, ca.pool)
		return strings.Count(s.stderr.String(), "tls certificate not reloaded") > refused
	})
	if got := servedSerial(t, addr, ca.pool); got != 1002 {
		t.Errorf("after a broken replacement, serial %d is served; want the previous one, 1002", got)
	}
	if !strings.Contains(s.stderr.String(), "is not the private key of the certificate") {
		t.Errorf("the log does not say why the pair was refused: %s", s.stderr.String())
	}

	// The redirect listener: 308 to the issuer's origin, path and query
	// kept, the Host header ignored; no HSTS over plain HTTP.
	for _, tt := range []struct{ method, target, host, want string }{
		{"GET", "/authorize?client_id=app&state=x%20y", "127.0.0.1", c.issuer + "/authorize?client_id=app&state=x%20y"},
		{"GET", "/authorize?a=1", "evil.example", c.issuer + "/authorize?a=1"},
		{"POST", "/token", "evil.example:443", c.issuer + "/token"},
		{"GET", "//evil.example/x", "evil.example", c.issuer + "//evil.example/x"},
		{"GET", "http://evil.example/y?q=1", "evil.example", c.issuer + "/y?q=1"},
		{"GET", "/", "", c.issuer + "/"},
	} {
		resp := rawRequest(t, fmt.Sprintf("127.0.0.1:%d", httpPort), tt.method, tt.target, tt.host)
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != tt.want {
			t.Errorf("%s %s (Host %q) on the redirect listener: %s to %q, want 308 to %q", tt.method, tt.target, tt.host, resp.Status, resp.Header.Get("Location"), tt.want)
		}
		if h := resp.Header.Get("Strict-Transport-Security"); h != "" {
			t.Errorf("HSTS %q over plain HTTP", h)
		}
		u, _ := url.Parse(resp.Header.Get("Location"))
		if u == nil || u.Host != fmt.Sprintf("127.0.0.1:%d", port) {
			t.Errorf("redirect leaves the issuer's host: %v", u)
		}
	}
	plain := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// The ACME challenge path is a redirect too when ACME is off.
	resp, err = plain.Get(fmt.Sprintf("http://127.0.0.1:%d/.well-known/acme-challenge/x", httpPort))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect {
		t.Errorf("challenge path without ACME: %s, want 308", resp.Status)
	}
	s.stop(t)
}

// rawRequest sends one request line and Host header exactly as given
// (http.Client would normalise them) and reads the response.
func rawRequest(t *testing.T, addr, method, target, host string) *http.Response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", method, target, host)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// lockedBuffer is a log destination for a certHolder under test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The certificate holder's change detection, with an injected clock: it
// looks at the files at most every certCheckEvery, picks up a new pair,
// keeps the previous one (and says so once) when the new one is broken,
// and Reload reads the files at once.
func TestCertHolderReload(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert1, key1 := ca.leaf(t, 1)
	writeFile(t, certFile, string(cert1))
	writeFile(t, keyFile, string(key1))

	var logs lockedBuffer
	h, err := newCertHolder(certFile, keyFile, "127.0.0.1", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	h.mu.Lock()
	h.now = func() time.Time { return now }
	h.checked = now
	h.mu.Unlock()
	serial := func() int64 {
		t.Helper()
		c, err := h.GetCertificate(&tls.ClientHelloInfo{ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.SerialNumber.Int64()
	}
	if got := serial(); got != 1 {
		t.Fatalf("serial %d, want 1", got)
	}
	if strings.Contains(logs.String(), "does not cover") {
		t.Errorf("warned about a certificate that covers the host: %s", logs.String())
	}

	cert2, key2 := ca.leaf(t, 2)
	replaceFile(t, certFile, cert2)
	replaceFile(t, keyFile, key2)
	if got := serial(); got != 1 {
		t.Errorf("files looked at again before certCheckEvery: serial %d", got)
	}
	now = now.Add(certCheckEvery)
	if got := serial(); got != 2 {
		t.Errorf("after certCheckEvery: serial %d, want 2", got)
	}

	// Written in place (same file, new content and size).
	cert3, key3 := ca.leaf(t, 3)
	writeFile(t, certFile, string(cert3)+"\n")
	writeFile(t, keyFile, string(key3))
	now = now.Add(certCheckEvery)
	if got := serial(); got != 3 {
		t.Errorf("after an in-place write: serial %d, want 3", got)
	}

	// Broken: not PEM. Reported once, not at every check.
	writeFile(t, certFile, "not a certificate")
	for range 3 {
		now = now.Add(certCheckEvery)
		if got := serial(); got != 3 {
			t.Errorf("after a broken write: serial %d, want the previous 3", got)
		}
	}
	if n := strings.Count(logs.String(), "tls certificate not reloaded"); n != 1 {
		t.Errorf("the broken file was reported %d times, want once: %s", n, logs.String())
	}
	if err := h.Reload(); err == nil || !strings.Contains(err.Error(), "tls.cert_file") {
		t.Errorf("Reload with a broken cert_file: %v", err)
	}
	if got := serial(); got != 3 {
		t.Errorf("after a failed Reload: serial %d, want 3", got)
	}

	// Reload picks the repaired files up at once, without waiting.
	cert4, key4 := ca.leaf(t, 4)
	writeFile(t, certFile, string(cert4))
	writeFile(t, keyFile, string(key4))
	if err := h.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got != 4 {
		t.Errorf("after Reload: serial %d, want 4", got)
	}
	if strings.Contains(logs.String(), "PRIVATE KEY") || strings.Contains(logs.String(), string(key4[40:80])) {
		t.Errorf("the log holds key material: %s", logs.String())
	}

	// A certificate that does not name the issuer's host is served, with
	// a warning.
	h.host = "sso.example.org"
	if err := h.Reload(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "does not cover the issuer's host") {
		t.Errorf("no warning for a certificate without the issuer's host: %s", logs.String())
	}
}

// Every problem of a tls: block, with its key path.
func TestTLSConfigErrors(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	dir := t.TempDir()
	cert1, key1 := ca.leaf(t, 1)
	_, key2 := ca.leaf(t, 2)
	writeFile(t, filepath.Join(dir, "cert.pem"), string(cert1))
	writeFile(t, filepath.Join(dir, "key.pem"), string(key1))
	writeFile(t, filepath.Join(dir, "other-key.pem"), string(key2))
	writeFile(t, filepath.Join(dir, "garbage.pem"), "hello")
	base := func(issuer string) string {
		return "issuer: " + issuer + "\nstorage:\n  bolt: " + dir + "/provider.db\nkeys:\n  dir: " + dir + "/keys\n"
	}
	const https = "https://sso.example.org"
	for _, tt := range []struct {
		name, issuer, tls string
		want              []string
	}{
		{"cert without key", https, "  cert_file: cert.pem\n", []string{"tls.key_file: is required with tls.cert_file"}},
		{"key without cert", https, "  key_file: key.pem\n", []string{"tls.cert_file: is required with tls.key_file"}},
		{"files and acme", https, "  cert_file: cert.pem\n  key_file: key.pem\n  acme:\n    domains: [sso.example.org]\n", []string{"tls: give cert_file and key_file, or acme, not both"}},
		{"acme without domains", https, "  acme:\n    email: admin@example.org\n", []string{"tls.acme.domains: is required"}},
		{"acme empty", https, "  acme: {}\n", []string{"tls.acme.domains: is required"}},
		{"issuer not https", "http://127.0.0.1:8443", "  cert_file: cert.pem\n  key_file: key.pem\n", []string{"issuer:", "must be https when tls is configured"}},
		{"issuer host not a domain", https, "  acme:\n    domains: [www.example.org]\n", []string{`tls.acme.domains: must include the issuer's host "sso.example.org"`}},
		{"wildcard", https, "  acme:\n    domains: [sso.example.org, \"*.example.org\"]\n", []string{"tls.acme.domains[1]:", "wildcard"}},
		{"ip domain", https, "  acme:\n    domains: [sso.example.org, 192.0.2.1]\n", []string{"tls.acme.domains[1]:", "IP address"}},
		{"domain with scheme", https, "  acme:\n    domains: [\"https://sso.example.org\"]\n", []string{"tls.acme.domains[0]:", "no scheme"}},
		{"domain twice", https, "  acme:\n    domains: [sso.example.org, SSO.example.org]\n", []string{"tls.acme.domains[1]:", "twice"}},
		{"bad email", https, "  acme:\n    domains: [sso.example.org]\n    email: admin\n", []string{"tls.acme.email:", `"admin"`}},
		{"directory over http", https, "  acme:\n    domains: [sso.example.org]\n    directory_url: http://ca.example.org/directory\n", []string{"tls.acme.directory_url:", "https"}},
		{"directory not a URL", https, "  acme:\n    domains: [sso.example.org]\n    directory_url: ca.example.org\n", []string{"tls.acme.directory_url:"}},
		{"missing cert file", https, "  cert_file: nope.pem\n  key_file: key.pem\n", []string{"tls.cert_file:", filepath.Join(dir, "nope.pem")}},
		{"missing key file", https, "  cert_file: cert.pem\n  key_file: nope.pem\n", []string{"tls.key_file:", filepath.Join(dir, "nope.pem")}},
		{"unparsable cert", https, "  cert_file: garbage.pem\n  key_file: key.pem\n", []string{"tls.cert_file:", "no PEM CERTIFICATE"}},
		{"unparsable key", https, "  cert_file: cert.pem\n  key_file: garbage.pem\n", []string{"tls.key_file:", filepath.Join(dir, "garbage.pem")}},
		{"mismatched key", https, "  cert_file: cert.pem\n  key_file: other-key.pem\n", []string{"tls.key_file:", "is not the private key of the certificate in " + filepath.Join(dir, "cert.pem")}},
		{"redirect without tls", https, "  redirect_http: \":80\"\n", []string{"tls.redirect_http: needs tls.cert_file"}},
		{"redirect not an address", https, "  acme:\n    domains: [sso.example.org]\n  redirect_http: \"80\"\n", []string{"tls.redirect_http:", "host:port"}},
		{"redirect on listen", https, "  acme:\n    domains: [sso.example.org]\n  redirect_http: 127.0.0.1:8080\n", []string{"tls.redirect_http:", "also listen"}},
		{"unknown key", https, "  hsts: true\n", []string{"hsts"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml")
			writeFile(t, path, base(tt.issuer)+"tls:\n"+tt.tls)
			msg := runCLI(t, "", "users", "list", "--config", path).fails(t, 1)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q does not contain %q", msg, w)
				}
			}
		})
	}

	// Valid blocks: paths relative to the config file; the ACME cache
	// beside the database by default.
	path := filepath.Join(dir, "ok.yaml")
	writeFile(t, path, base(https)+"tls:\n  cert_file: cert.pem\n  key_file: key.pem\n  redirect_http: \":80\"\n")
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS.CertFile != filepath.Join(dir, "cert.pem") || cfg.TLS.KeyFile != filepath.Join(dir, "key.pem") {
		t.Errorf("cert_file %q, key_file %q: not resolved against the config file", cfg.TLS.CertFile, cfg.TLS.KeyFile)
	}
	writeFile(t, path, base(https)+"tls:\n  acme:\n    domains: [SSO.example.org., www.example.org]\n")
	if cfg, err = loadConfig(path); err != nil {
		t.Fatal(err)
	}
	if a := cfg.TLS.ACME; a.CacheDir != filepath.Join(dir, "acme") || !slices.Equal(a.Domains, []string{"sso.example.org", "www.example.org"}) {
		t.Errorf("acme: cache_dir %q, domains %q", a.CacheDir, a.Domains)
	}
	writeFile(t, path, base(https)+"tls:\n  acme:\n    domains: [sso.example.org]\n    cache_dir: certs\n    directory_url: http://127.0.0.1:14000/dir\n")
	if cfg, err = loadConfig(path); err != nil {
		t.Fatal(err)
	}
	if a := cfg.TLS.ACME; a.CacheDir != filepath.Join(dir, "certs") {
		t.Errorf("acme.cache_dir %q, want it relative to the config file", a.CacheDir)
	}
}

// What ACME does that needs no CA: the manager's settings, its host
// policy, the TLS config (TLS-ALPN-01 offered, TLS 1.2 minimum), and the
// redirect listener answering HTTP-01 challenges from the cache for the
// listed domains only. No request leaves loopback: no handshake here
// names a listed domain, so the CA is never contacted.
func TestServeACMEOffline(t *testing.T) {
	t.Parallel()
	port, httpPort := freePort(t), freePort(t)
	c := writeConfig(t, port, fmt.Sprintf(`tls:
  acme:
    domains: [sso.example.org, login.example.org]
    email: admin@example.org
    directory_url: https://127.0.0.1:1/directory
  redirect_http: 127.0.0.1:%d
`, httpPort))
	raw, _ := os.ReadFile(c.path)
	writeFile(t, c.path, strings.Replace(string(raw), "issuer: "+c.issuer, "issuer: https://sso.example.org", 1))

	cfg, err := loadConfig(c.path)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := newTLSServing(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	m := ts.acme
	cacheDir := filepath.Join(c.dir, "acme") // beside provider.db
	if m == nil || m.Cache != autocert.DirCache(cacheDir) || m.Client == nil || m.Client.DirectoryURL != "https://127.0.0.1:1/directory" || m.Email != "admin@example.org" || m.Prompt == nil {
		t.Fatalf("manager: %+v", m)
	}
	for _, host := range []string{"sso.example.org", "login.example.org"} {
		if err := m.HostPolicy(t.Context(), host); err != nil {
			t.Errorf("host policy refuses %s: %v", host, err)
		}
	}
	for _, host := range []string{"example.org", "evil.example", "sso.example.org.evil.example", "127.0.0.1", ""} {
		if err := m.HostPolicy(t.Context(), host); err == nil {
			t.Errorf("host policy accepts %q", host)
		}
	}
	if !slices.Contains(ts.config.NextProtos, acme.ALPNProto) || !slices.Contains(ts.config.NextProtos, "h2") || ts.config.MinVersion != tls.VersionTLS12 || ts.config.CipherSuites != nil {
		t.Errorf("tls config: NextProtos %q, MinVersion %x, CipherSuites %v", ts.config.NextProtos, ts.config.MinVersion, ts.config.CipherSuites)
	}

	s := startHTTPSServer(t, c, nil)
	if !strings.Contains(s.stderr.String(), "scheme=https") {
		t.Errorf("listening line does not say https: %s", s.stderr.String())
	}
	// A challenge token as autocert keeps it while an order is pending.
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(cacheDir, "tok-123+http-01"), "tok-123.key-authorization")
	plain := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path, host string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d%s", httpPort, path), nil)
		req.Host = host
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Location"), string(body)
	}
	if code, _, body := get("/.well-known/acme-challenge/tok-123", "login.example.org"); code != 200 || body != "tok-123.key-authorization" {
		t.Errorf("HTTP-01 challenge for a listed domain: %d %q", code, body)
	}
	if code, _, body := get("/.well-known/acme-challenge/tok-123", "evil.example"); code != http.StatusForbidden || strings.Contains(body, "key-authorization") {
		t.Errorf("HTTP-01 challenge for another host: %d %q, want 403", code, body)
	}
	if code, _, _ := get("/.well-known/acme-challenge/unknown", "sso.example.org"); code != http.StatusNotFound {
		t.Errorf("unknown challenge token: %d, want 404", code)
	}
	if code, loc, _ := get("/authorize?a=1", "evil.example"); code != http.StatusPermanentRedirect || loc != "https://sso.example.org/authorize?a=1" {
		t.Errorf("redirect: %d to %q", code, loc)
	}

	// A handshake for a name that is not listed is refused without asking
	// the CA.
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{ServerName: "evil.example", InsecureSkipVerify: true})
	if err == nil {
		conn.Close()
		t.Errorf("handshake for evil.example succeeded")
	}
	if strings.Contains(s.stderr.String(), "acme certificate") {
		t.Errorf("a refused name was logged as an ACME failure: %s", s.stderr.String())
	}
	s.stop(t)
}

// HSTS only when the provider serves TLS itself.
func TestNoHSTSWithoutTLS(t *testing.T) {
	t.Parallel()
	var ts *tlsServing
	rec := httptest.NewRecorder()
	ts.handler(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if h := rec.Header().Get("Strict-Transport-Security"); h != "" || ts.scheme() != "http" || ts.Reload() != nil {
		t.Errorf("TLS off: HSTS %q, scheme %s", h, ts.scheme())
	}
}
