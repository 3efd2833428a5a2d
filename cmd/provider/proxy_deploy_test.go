//go:build unix

package main

import (
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
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/smallsso/provider/provider/providertest"
)

// The reverse-proxy configurations documented in docs/deploy, run here in
// the real nginx and Caddy from Debian's packages with the provider
// behind them. Every address is loopback: the proxy listens on 127.0.0.1
// and is the provider's only peer; the clients connect from other
// loopback addresses, so that the provider can tell them from the proxy.
const (
	nginxConfPath = "../../docs/deploy/nginx.conf"
	caddyfilePath = "../../docs/deploy/Caddyfile"

	attackerAddr = "127.0.0.2" // fails sign-ins, spoofing forwarding headers
	personAddr   = "127.0.0.3" // signs in as she should
)

// proxiedConfig is the provider's config behind the proxy: the documented
// trusted_proxies, one confidential client allowed the code and password
// grants, one user. parameter_bytes is raised so a state long enough to
// need nginx's larger proxy buffers is accepted.
const proxiedConfig = `trusted_proxies: [127.0.0.1/32, "::1"]
limits:
  parameter_bytes: 6000
clients:
  - id: app
    secret: ` + appSecret + `
    name: Test App
    redirect_uris: [` + appCallback + `]
    grant_types: [authorization_code, password]
    scopes: [openid, profile, email]
users:
  - username: alice
    password: alice-password-for-tests
    email: alice@example.org
    name: Alice Example
`

// proxied is one deployment: a proxy on 127.0.0.1:port ending TLS with a
// certificate made for the test, and the provider on 127.0.0.1:upstream.
type proxied struct {
	dir            string
	port, upstream int
	issuer         string // https://127.0.0.1:port
	certFile       string
	keyFile        string
	roots          *x509.CertPool
	provider       *server
}

func newProxied(t *testing.T) *proxied {
	t.Helper()
	d := &proxied{dir: t.TempDir(), port: freePort(t), upstream: freePort(t)}
	d.issuer = fmt.Sprintf("https://127.0.0.1:%d", d.port)
	d.certFile, d.keyFile = filepath.Join(d.dir, "cert.pem"), filepath.Join(d.dir, "key.pem")

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, d.certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, d.keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	d.roots = x509.NewCertPool()
	d.roots.AddCert(cert)
	return d
}

// substitute replaces old in a documented file exactly n times, and fails
// the test when the file no longer holds it that often: a changed file
// must change the test, not slip past it.
func substitute(t *testing.T, doc, old, new string, n int) string {
	t.Helper()
	if got := strings.Count(doc, old); got != n {
		t.Fatalf("the documented file holds %q %d times, want %d: update the test with it", old, got, n)
	}
	return strings.ReplaceAll(doc, old, new)
}

// startProxy runs a proxy program until the test ends, with its output in
// the returned buffer, and waits until its log says ready and its port
// accepts.
func (d *proxied) startProxy(t *testing.T, ready string, env []string, name string, args ...string) *syncBuffer {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = d.dir, env
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so nginx's workers can be killed with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			t.Errorf("%s did not stop on SIGTERM; killing it", filepath.Base(name))
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), out.String())
		}
	})
	if !out.waitFor(ready, exited, 30*time.Second) {
		t.Fatalf("%s did not start (no %q in its output):\n%s", filepath.Base(name), ready, out.String())
	}
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", d.port), 5*time.Second)
	if err != nil {
		t.Fatalf("%s logged %q but 127.0.0.1:%d does not accept: %v", filepath.Base(name), ready, d.port, err)
	}
	conn.Close()
	return out
}

// startProvider runs `provider serve` in this process behind the proxy,
// with the issuer at the proxy's URL, and checks /healthz through the
// proxy.
func (d *proxied) startProvider(t *testing.T) {
	t.Helper()
	c := writeConfig(t, d.upstream, proxiedConfig)
	raw, err := os.ReadFile(c.path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, c.path, substitute(t, string(raw), "issuer: "+c.issuer+"\n", "issuer: "+d.issuer+"\n", 1))

	s := launchServer(t, c, context.Background())
	d.provider = s
	resp, err := d.client(t, personAddr).Get(d.issuer + "/healthz")
	if err != nil {
		t.Fatalf("/healthz through the proxy: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz through the proxy: %s", resp.Status)
	}
}

// client is an HTTP client connecting from the loopback address from,
// trusting the test's certificate, speaking HTTP/2 where the proxy does,
// and not following redirects.
func (d *proxied) client(t *testing.T, from string, headers ...string) *http.Client {
	t.Helper()
	tr := &http.Transport{
		DialContext:       (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}).DialContext,
		TLSClientConfig:   &tls.Config{RootCAs: d.roots},
		ForceAttemptHTTP2: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     headerSetter{tr, headers},
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// headerSetter adds headers (name, value, name, value...) to every request:
// the spoofed forwarding headers, or the Origin an older browser sends.
type headerSetter struct {
	next    http.RoundTripper
	headers []string
}

func (h headerSetter) RoundTrip(r *http.Request) (*http.Response, error) {
	if len(h.headers) == 0 {
		return h.next.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	for i := 0; i+1 < len(h.headers); i += 2 {
		if h.headers[i] == "Origin" && r.Method != http.MethodPost {
			continue // browsers send it on posts
		}
		r.Header.Add(h.headers[i], h.headers[i+1])
	}
	return h.next.RoundTrip(r)
}

// grantAnswer is what the token endpoint said, without the tokens (a
// failing test prints it).
type grantAnswer struct {
	status    int
	err, desc string
	tokens    bool // an access token and an ID token
}

func (a grantAnswer) String() string {
	if a.tokens {
		return fmt.Sprintf("HTTP %d with tokens", a.status)
	}
	return fmt.Sprintf("HTTP %d %s %q", a.status, a.err, a.desc)
}

// passwordGrant asks for tokens with the password grant.
func (d *proxied) passwordGrant(t *testing.T, hc *http.Client, password string) grantAnswer {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {password}, "scope": {"openid"}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, d.issuer+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", appSecret)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("password grant through the proxy: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		AccessToken string `json:"access_token"`
		IDToken     string `json:"id_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("password grant: HTTP %d, not JSON: %v", resp.StatusCode, err)
	}
	return grantAnswer{status: resp.StatusCode, err: body.Error, desc: body.Description, tokens: body.AccessToken != "" && body.IDToken != ""}
}

// checkBehindProxy drives the provider through the proxy as its clients
// would.
func (d *proxied) checkBehindProxy(t *testing.T) {
	t.Helper()
	ctx := t.Context()

	// Discovery names the proxy's URL, and a relying party accepts it.
	person := d.client(t, personAddr)
	var disc map[string]any
	getJSON(t, person, d.issuer+"/.well-known/openid-configuration", &disc)
	for _, k := range []string{"authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"} {
		if v, _ := disc[k].(string); !strings.HasPrefix(v, d.issuer+"/") {
			t.Errorf("discovery %s = %q, want it below %s", k, disc[k], d.issuer)
		}
	}
	rpCtx := oidc.ClientContext(ctx, person)
	op, err := oidc.NewProvider(rpCtx, d.issuer) // checks the issuer it names
	if err != nil {
		t.Fatalf("discovery through the proxy: %v", err)
	}
	resp, err := person.Get(d.issuer + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if hsts := resp.Header.Values("Strict-Transport-Security"); len(hsts) != 1 || hsts[0] != "max-age=31536000" {
		t.Errorf("Strict-Transport-Security %q, want max-age=31536000 once", hsts)
	}

	// An attacker fails five sign-ins for alice, each with another
	// forwarding header made up; nginx appends its peer to
	// X-Forwarded-For, Caddy replaces it, and both drop Forwarded, so the
	// provider counts every attempt against the attacker's real address.
	spoofs := [][]string{
		{"X-Forwarded-For", "127.0.0.11"},
		{"X-Forwarded-For", "127.0.0.12, 127.0.0.13"},
		{"Forwarded", "for=127.0.0.14"},
		{"X-Forwarded-For", "127.0.0.1"}, // the trusted proxy's own address
		{"X-Forwarded-For", "127.0.0.15", "Forwarded", `for="127.0.0.16"`},
	}
	for i, spoof := range spoofs {
		got := d.passwordGrant(t, d.client(t, attackerAddr, spoof...), fmt.Sprintf("wrong-password-%d", i))
		if got.status != http.StatusBadRequest || got.err != "invalid_grant" || strings.Contains(got.desc, "Too many") {
			t.Fatalf("failed sign-in %d (%q): %v, want invalid_grant, not yet throttled", i+1, spoof, got)
		}
	}
	// The budget for alice from the attacker's address is spent: even the
	// right password, with yet another made-up address, is refused.
	got := d.passwordGrant(t, d.client(t, attackerAddr, "X-Forwarded-For", "127.0.0.17"), alicePassword)
	if got.status != http.StatusBadRequest || got.err != "invalid_grant" || !strings.Contains(got.desc, "Too many failed sign-ins") {
		t.Errorf("sixth sign-in from the attacker's address: %v, want throttled", got)
	}
	// So is the login page, from a browser there.
	attacker := providertest.NewBrowser(d.issuer)
	attacker.HTTP.Transport = d.client(t, attackerAddr, "X-Forwarded-For", "127.0.0.18").Transport
	oauth := oauth2.Config{ClientID: "app", ClientSecret: appSecret, Endpoint: op.Endpoint(), RedirectURL: appCallback, Scopes: []string{"openid", "email"}}
	page, err := attacker.SignInPage(ctx, oauth.AuthCodeURL("state-attacker"), "alice", alicePassword, "allow")
	if err != nil {
		t.Fatal(err)
	}
	if page.Status != http.StatusTooManyRequests {
		t.Errorf("login page from the attacker's address: HTTP %d, want 429", page.Status)
	}

	// Alice, from her own address, is not throttled: the password grant
	// works...
	if got := d.passwordGrant(t, person, alicePassword); got.status != http.StatusOK || !got.tokens {
		t.Errorf("password grant from another address: %v, want tokens", got)
	}
	// ...and so does the code flow in a browser that sends Origin (and no
	// Sec-Fetch-Site) with its form posts: the proxy passed the Host on,
	// so the provider sees them as same-origin. The sign-in cookies are
	// Secure (the issuer is https) though the provider itself speaks HTTP.
	browser := providertest.NewBrowser(d.issuer)
	browser.HTTP.Transport = d.client(t, personAddr, "Origin", d.issuer).Transport
	verifier := oauth2.GenerateVerifier()
	loc, err := browser.SignIn(ctx, oauth.AuthCodeURL("state-alice", oauth2.S256ChallengeOption(verifier)), "alice", alicePassword, "allow")
	if err != nil {
		t.Fatalf("sign in through the proxy: %v", err)
	}
	if loc.Query().Get("code") == "" || loc.Query().Get("state") != "state-alice" {
		t.Fatalf("redirect back to the client: error %q, state %q, a code: %v", loc.Query().Get("error"), loc.Query().Get("state"), loc.Query().Has("code"))
	}
	for _, c := range browser.HTTP.Jar.Cookies(&url.URL{Scheme: "https", Host: fmt.Sprintf("127.0.0.1:%d", d.port), Path: "/"}) {
		if !strings.HasPrefix(c.Name, "__Host-") {
			t.Errorf("cookie %s: want the __Host- prefix of a Secure cookie", c.Name)
		}
	}
	tok, err := oauth.Exchange(rpCtx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange the code through the proxy: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := op.Verifier(&oidc.Config{ClientID: "app"}).Verify(rpCtx, raw)
	if err != nil {
		t.Fatalf("verify the ID token: %v", err)
	}
	if idt.Issuer != d.issuer {
		t.Errorf("ID token iss %q, want %q", idt.Issuer, d.issuer)
	}

	// The provider's log names the addresses it keyed on: the attacker's
	// and alice's, never a made-up one or the proxy's.
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`client_ip=(\S+)`).FindAllStringSubmatch(d.provider.stderr.String(), -1) {
		seen[m[1]] = true
	}
	if !seen[attackerAddr] {
		t.Errorf("the log has no client_ip=%s line for the throttled sign-in", attackerAddr)
	}
	for ip := range seen {
		if ip != attackerAddr && ip != personAddr {
			t.Errorf("the log names client_ip=%s", ip)
		}
	}

	// A redirect back to the client with a long state (a Location header
	// over 5 KiB) comes through; nginx's default buffers answer 502.
	state := strings.Repeat("s", 5000)
	resp, err = person.Get(oauth.AuthCodeURL(state, oauth2.SetAuthURLParam("prompt", "none")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, err := resp.Location(); err != nil || loc.Query().Get("error") != "login_required" || loc.Query().Get("state") != state {
		t.Errorf("prompt=none with a 5000-byte state: HTTP %d (%v), want the login_required redirect with the state", resp.StatusCode, err)
	}

	// A body over limits.form_body_bytes is refused by the provider, in
	// its own words, not by the proxy.
	big := url.Values{"grant_type": {"password"}, "padding": {strings.Repeat("p", 100<<10)}}.Encode()
	resp, err = person.Post(d.issuer+"/token", "application/x-www-form-urlencoded", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	var refused map[string]string
	err = json.NewDecoder(resp.Body).Decode(&refused)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || err != nil || !strings.Contains(refused["error_description"], "larger than 65536 bytes") {
		t.Errorf("a 100 KiB form: HTTP %d %v (%v), want the provider's 413", resp.StatusCode, refused, err)
	}
}

// docs/deploy/nginx.conf, in the real nginx, with the provider behind it.
func TestBehindNginx(t *testing.T) {
	t.Parallel()
	nginx := requireSbinTool(t, "nginx", "nginx")
	raw, err := os.ReadFile(nginxConfPath)
	if err != nil {
		t.Fatal(err)
	}
	d := newProxied(t)
	httpPort := freePort(t)
	site := string(raw)
	site = substitute(t, site, "    listen 80;\n", fmt.Sprintf("    listen 127.0.0.1:%d;\n", httpPort), 1)
	site = substitute(t, site, "    listen 443 ssl http2;\n", fmt.Sprintf("    listen 127.0.0.1:%d ssl http2;\n", d.port), 1)
	site = substitute(t, site, "    listen [::]:80;\n", "", 1)
	site = substitute(t, site, "    listen [::]:443 ssl http2;\n", "", 1)
	site = substitute(t, site, "server_name sso.example.org;", "server_name 127.0.0.1;", 2)
	site = substitute(t, site, "/etc/letsencrypt/live/sso.example.org/fullchain.pem", d.certFile, 1)
	site = substitute(t, site, "/etc/letsencrypt/live/sso.example.org/privkey.pem", d.keyFile, 1)
	site = substitute(t, site, "server 127.0.0.1:8080;", fmt.Sprintf("server 127.0.0.1:%d;", d.upstream), 1)
	writeFile(t, filepath.Join(d.dir, "provider.conf"), site)

	// Everything nginx writes stays in the test's directory. The directory
	// is the test user's alone: a root nginx runs its workers as root too,
	// rather than as nobody, who could not write its temp files there.
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n"
	}
	writeFile(t, filepath.Join(d.dir, "nginx.conf"), fmt.Sprintf(`daemon off;
%sworker_processes 1;
pid %[2]s/nginx.pid;
error_log stderr notice;
events { worker_connections 64; }
http {
    access_log %[2]s/access.log;
    client_body_temp_path %[2]s/client_body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    include %[2]s/provider.conf;
}
`, user, d.dir))
	out := d.startProxy(t, "start worker processes", os.Environ(), nginx, "-p", d.dir+"/", "-c", filepath.Join(d.dir, "nginx.conf"), "-e", "stderr")
	d.startProvider(t)
	d.checkBehindProxy(t)

	// Plain HTTP is redirected to https.
	resp, err := d.client(t, personAddr).Get(fmt.Sprintf("http://127.0.0.1:%d/.well-known/openid-configuration", httpPort))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusMovedPermanently || loc != "https://127.0.0.1/.well-known/openid-configuration" {
		t.Errorf("plain HTTP: %s to %q, want 301 to https", resp.Status, loc)
	}
	for _, bad := range []string{"[emerg]", "[alert]", "[crit]", "[error]"} {
		if strings.Contains(out.String(), bad) {
			t.Errorf("nginx logged %s:\n%s", bad, out.String())
		}
	}
}

// requireSbinTool is requireTool for a program in /usr/sbin, which is not
// in every user's PATH.
func requireSbinTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if path, err := exec.LookPath("/usr/sbin/" + name); err == nil {
			return path
		}
	}
	return requireTool(t, name, debianPackage)
}

// docs/deploy/Caddyfile, in the real Caddy, with the provider behind it.
func TestBehindCaddy(t *testing.T) {
	t.Parallel()
	caddy := requireTool(t, "caddy", "caddy")
	raw, err := os.ReadFile(caddyfilePath)
	if err != nil {
		t.Fatal(err)
	}
	d := newProxied(t)
	conf := string(raw)
	// No admin endpoint, no certificate management (the test's certificate
	// is given), HTTP/1.1 and 2 only (no UDP listener for HTTP/3), and the
	// site on a loopback port.
	conf = substitute(t, conf, "{\n\tservers {\n", "{\n\tadmin off\n\tauto_https off\n\tservers {\n\t\tprotocols h1 h2\n", 1)
	conf = substitute(t, conf, "\nsso.example.org {\n", fmt.Sprintf("\nhttps://127.0.0.1:%d {\n\tbind 127.0.0.1\n\ttls %s %s\n", d.port, d.certFile, d.keyFile), 1)
	conf = substitute(t, conf, "reverse_proxy 127.0.0.1:8080 {", fmt.Sprintf("reverse_proxy 127.0.0.1:%d {", d.upstream), 1)
	path := filepath.Join(d.dir, "Caddyfile")
	writeFile(t, path, conf)

	// Caddy keeps its state under HOME and the XDG directories: the test's.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "XDG_")
	})
	env = append(env, "HOME="+d.dir, "XDG_CONFIG_HOME="+filepath.Join(d.dir, "config"), "XDG_DATA_HOME="+filepath.Join(d.dir, "data"))
	d.startProxy(t, "serving initial configuration", env, caddy, "run", "--config", path, "--adapter", "caddyfile")
	d.startProvider(t)
	d.checkBehindProxy(t)
}
