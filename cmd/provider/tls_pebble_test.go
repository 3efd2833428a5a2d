package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ACME against a real (test) CA on loopback: Pebble, Let's Encrypt's test
// server (Debian package pebble), with pebble-challtestsrv answering its
// DNS lookups with 127.0.0.1. The provider's TLS setup gets a certificate
// for a listed domain through the TLS-ALPN-01 challenge on its HTTPS
// listener and serves it. .ci/run installs pebble.
func TestACMEWithPebble(t *testing.T) {
	t.Parallel()
	pebble := requireTool(t, "pebble", "pebble")
	challsrv := requireTool(t, "pebble-challtestsrv", "pebble")
	dir := t.TempDir()
	ca := newTestCA(t) // for Pebble's own HTTPS
	pebbleCert, pebbleKey := ca.leaf(t, 7)
	writeFile(t, filepath.Join(dir, "pebble-cert.pem"), string(pebbleCert))
	writeFile(t, filepath.Join(dir, "pebble-key.pem"), string(pebbleKey))
	acmePort, mgmtPort, dnsPort, dnsMgmtPort, port := freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)
	writeFile(t, filepath.Join(dir, "pebble.json"), fmt.Sprintf(`{"pebble": {
  "listenAddress": "127.0.0.1:%d", "managementListenAddress": "127.0.0.1:%d",
  "certificate": %q, "privateKey": %q,
  "httpPort": 1, "tlsPort": %d, "ocspResponderURL": "", "externalAccountBindingRequired": false}}`,
		acmePort, mgmtPort, filepath.Join(dir, "pebble-cert.pem"), filepath.Join(dir, "pebble-key.pem"), port))

	startProcess(t, challsrv, nil, "-dns01", fmt.Sprintf("127.0.0.1:%d", dnsPort), "-management", fmt.Sprintf("127.0.0.1:%d", dnsMgmtPort),
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	startProcess(t, pebble, []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"},
		"-config", filepath.Join(dir, "pebble.json"), "-dnsserver", fmt.Sprintf("127.0.0.1:%d", dnsPort))

	trustCA := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
	defer trustCA.CloseIdleConnections()
	directory := fmt.Sprintf("https://127.0.0.1:%d/dir", acmePort)
	pollUntil(t, "pebble does not answer "+directory, func() bool {
		resp, err := trustCA.Get(directory)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	path := filepath.Join(dir, "config.yaml")
	writeFile(t, path, fmt.Sprintf(`issuer: https://sso.example.org
listen: 127.0.0.1:%d
storage:
  bolt: %s/provider.db
tls:
  acme:
    domains: [sso.example.org]
    email: admin@example.org
    directory_url: %s
`, port, dir, directory))
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	ts, err := newTLSServing(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ts.acme.Client.HTTPClient = trustCA // Pebble's HTTPS certificate is the test CA's
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: ts.handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))}
	go srv.Serve(ts.listener(ln))
	t.Cleanup(func() { srv.Close() })

	// Pebble's root changes at every start; the management API hands it out.
	resp, err := trustCA.Get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmtPort))
	if err != nil {
		t.Fatal(err)
	}
	rootPEM, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble root: %q", rootPEM)
	}
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "sso.example.org"},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, cfg.Listen)
		},
	}}
	defer client.CloseIdleConnections()
	resp, err = client.Get("https://sso.example.org/")
	if err != nil {
		t.Fatalf("HTTPS with a certificate from Pebble: %v\nlog: %s", err, logs.String())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	leaf := resp.TLS.PeerCertificates[0]
	if string(body) != "hello" || leaf.VerifyHostname("sso.example.org") != nil || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Errorf("%s %q, certificate for %q, HSTS %q", resp.Status, body, leaf.DNSNames, resp.Header.Get("Strict-Transport-Security"))
	}
	// The certificate and the account key are in the cache dir.
	entries, _ := os.ReadDir(cfg.TLS.ACME.CacheDir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !strings.Contains(strings.Join(names, " "), "sso.example.org") || !strings.Contains(strings.Join(names, " "), "acme_account") {
		t.Errorf("cache dir %s holds %q", cfg.TLS.ACME.CacheDir, names)
	}
}

// startProcess runs a helper program for one test and stops it (this one
// process, by its handle) when the test ends.
func startProcess(t *testing.T, path string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s:\n%s", filepath.Base(path), out.String())
		}
	})
}
