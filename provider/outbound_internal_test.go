package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/smallsso/provider/storage"
)

func TestClassifyAddr(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]addrClass{
		"8.8.8.8":                  addrPublic,
		"2001:4860:4860::8888":     addrPublic,
		"100.63.255.255":           addrPublic,
		"100.128.0.1":              addrPublic,
		"10.0.0.5":                 addrPrivate,
		"172.16.0.1":               addrPrivate,
		"172.31.255.255":           addrPrivate,
		"192.168.1.1":              addrPrivate,
		"100.64.0.1":               addrPrivate,
		"100.127.255.255":          addrPrivate,
		"fd00::1":                  addrPrivate,
		"fc00::1":                  addrPrivate,
		"fec0::1":                  addrPrivate,
		"::ffff:10.0.0.5":          addrPrivate,
		"64:ff9b::a00:5":           addrPrivate, // NAT64 of 10.0.0.5
		"127.0.0.1":                addrLoopback,
		"127.255.0.9":              addrLoopback,
		"::1":                      addrLoopback,
		"::ffff:127.0.0.1":         addrLoopback,
		"0.0.0.0":                  addrForbidden,
		"0.1.2.3":                  addrForbidden,
		"::":                       addrForbidden,
		"::ffff:0.0.0.0":           addrForbidden,
		"169.254.169.254":          addrForbidden,
		"::ffff:169.254.169.254":   addrForbidden,
		"64:ff9b::a9fe:a9fe":       addrForbidden, // NAT64 of 169.254.169.254
		"fe80::1":                  addrForbidden,
		"224.0.0.1":                addrForbidden,
		"239.255.255.250":          addrForbidden,
		"255.255.255.255":          addrForbidden,
		"ff02::1":                  addrForbidden,
		"ff05::2":                  addrForbidden,
		"fe80::a9fe:a9fe%eth0":     addrForbidden,
		"::ffff:255.255.255.255":   addrForbidden,
		"2606:4700:4700::1111":     addrPublic,
		"::ffff:8.8.8.8":           addrPublic,
		"64:ff9b::808:808":         addrPublic,
		"172.15.255.255":           addrPublic,
		"172.32.0.0":               addrPublic,
		"192.169.0.1":              addrPublic,
		"fe00::1":                  addrPublic,
		"2002:a00:5::1":            addrForbidden, // 6to4 tunnels to 10.0.0.5
		"2002:808:808::1":          addrForbidden, // 6to4, whatever it tunnels to
		"2001:0:4136:e378::1":      addrForbidden, // Teredo
		"2001:0::7f00:1":           addrForbidden,
		"2001:4860::1":             addrPublic,    // not Teredo: 2001::/32 only
		"::127.0.0.1":              addrForbidden, // IPv4-compatible, deprecated
		"::10.0.0.5":               addrForbidden,
		"::8.8.8.8":                addrForbidden,
		"::2":                      addrForbidden,
		"198.18.0.1":               addrPrivate, // benchmarking
		"198.19.255.255":           addrPrivate,
		"198.20.0.1":               addrPublic,
		"198.17.255.255":           addrPublic,
		"192.0.0.8":                addrPrivate, // IETF protocol assignments
		"192.0.1.1":                addrPublic,
		"::ffff:198.18.0.1":        addrPrivate,
		"240.0.0.1":                addrForbidden, // reserved
		"255.255.255.254":          addrForbidden,
		"::ffff:240.0.0.1":         addrForbidden,
		"64:ff9b::f000:1":          addrForbidden,
		"2002::1%eth0":             addrForbidden,
		"64:ff9b::7f00:1":          addrLoopback, // well-known NAT64 of 127.0.0.1
		"64:ff9b::c612:1":          addrPrivate,  // NAT64 of 198.18.0.1
		"fd12:3456:789a:1::1":      addrPrivate,
		"64:ff9b:1::a00:5":         addrForbidden, // local-use NAT64: not decoded, refused
		"64:ff9b:1:0:0:0:7f00:1":   addrForbidden,
		"64:ff9b:1:a00:5::":        addrForbidden, // 10.0.0.5 under a /48 local-use prefix
		"64:ff9b:1:808:808::":      addrForbidden,
		"::ffff:192.168.0.1":       addrPrivate,
		"::ffff:100.64.0.1":        addrPrivate,
		"::ffff:224.0.0.1":         addrForbidden,
		"0000:0000::0000:0000:0:0": addrForbidden,
	} {
		ip, err := netip.ParseAddr(addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := classifyAddr(ip); got != want {
			t.Errorf("classifyAddr(%s) = %v, want %v", addr, got, want)
		}
	}
	if got := classifyAddr(netip.Addr{}); got != addrForbidden {
		t.Errorf("the zero address is %v", got)
	}
}

func TestMatchHost(t *testing.T) {
	t.Parallel()
	list := []string{"rp.example.org", "*.apps.example.com", "10.0.0.5", "[fd00::1]"}
	for host, want := range map[string]bool{
		"rp.example.org":        true,
		"RP.Example.ORG.":       true,
		"x.rp.example.org":      false,
		"a.apps.example.com":    true,
		"a.b.apps.example.com":  true,
		"apps.example.com":      false,
		"evilapps.example.com":  false,
		"10.0.0.5":              true,
		"fd00::1":               true,
		"":                      false,
		"example.org":           false,
		"rp.example.org.evil.x": false,
	} {
		if got := matchHost(list, host); got != want {
			t.Errorf("matchHost(%q) = %v, want %v", host, got, want)
		}
	}
	if !matchHost([]string{"*"}, "anything.example") {
		t.Error(`"*" should match any host`)
	}
}

// fakeNet is a resolver and dialer for tests: names resolve from a fixed
// table (nothing is looked up for real), every dial is recorded, and only
// loopback is actually dialled. Whatever the guard does, no packet leaves
// the machine.
type fakeNet struct {
	names map[string][]string
	mu    sync.Mutex
	dials []string
}

func (f *fakeNet) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, a := range f.names[host] {
		out = append(out, netip.MustParseAddr(a))
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}

func (f *fakeNet) dial(ctx context.Context, network, address string) (net.Conn, error) {
	f.mu.Lock()
	f.dials = append(f.dials, address)
	f.mu.Unlock()
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Unmap().IsLoopback() {
		return nil, fmt.Errorf("test dialer: refusing %s", address)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}

func (f *fakeNet) dialled() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.dials...)
}

// The guard resolves, checks every address, and hands the dialer only an
// allowed IP literal; redirects are not followed.
func TestOutboundGuardDials(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	fn := &fakeNet{names: map[string][]string{
		"internal.test": {"10.0.0.5"},
		"meta.test":     {"169.254.169.254"},
		"v6.test":       {"fd00::1"},
		"mapped.test":   {"::ffff:169.254.169.254"},
		"lo.test":       {"127.0.0.1"},
		"localhost":     {"127.0.0.1", "::1"},
		"allowed.test":  {"10.0.0.7"},
		"mixed.test":    {"169.254.169.254", "127.0.0.1"},
	}}
	issuer, _ := url.Parse("http://127.0.0.1:1")
	o := newOutbound(OutboundConfig{AllowedHosts: []string{"allowed.test"}}, issuer, fn, fn.dial)
	registered := storage.Client{Source: "registration", ClientSettings: storage.ClientSettings{RedirectURIs: []string{"https://rp.example.org/cb"}}}
	local := storage.Client{Source: "registration", ClientSettings: storage.ClientSettings{RedirectURIs: []string{"http://127.0.0.1:5555/cb"}}}
	operator := storage.Client{Source: "config"}

	get := func(c storage.Client, raw string) error {
		u, _ := url.Parse(raw)
		resp, err := o.clientFor(c, u, time.Second).Get(raw)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	for _, raw := range []string{
		"http://internal.test:" + port + "/", "http://meta.test/", "http://v6.test/", "http://mapped.test/",
		"http://lo.test:" + port + "/", "http://10.0.0.5/", "http://[fd00::1]/", "http://169.254.169.254/",
		"http://127.0.0.1:" + port + "/", "http://localhost:" + port + "/", "http://0.0.0.0:" + port + "/",
		"http://[::]:" + port + "/", "http://[::ffff:127.0.0.1]:" + port + "/", "http://[::ffff:10.0.0.5]/",
	} {
		if err := get(registered, raw); !errors.Is(err, errForbiddenAddress) {
			t.Errorf("registered client, %s: err = %v, want the address refused", raw, err)
		}
	}
	// Loopback-issuer exception: all-loopback redirects may name loopback.
	if err := get(local, "http://127.0.0.1:"+port+"/"); err != nil {
		t.Errorf("local development client, loopback URL: %v", err)
	}
	// ... but only loopback it names, not a name that resolves there.
	if err := get(local, "http://lo.test:"+port+"/"); !errors.Is(err, errForbiddenAddress) {
		t.Errorf("local development client, name resolving to loopback: %v", err)
	}
	if err := get(local, "http://internal.test/"); !errors.Is(err, errForbiddenAddress) {
		t.Errorf("local development client, private: %v", err)
	}
	// Allowed host: private passes the guard (the test dialer refuses it).
	if err := get(registered, "http://allowed.test/"); err == nil || errors.Is(err, errForbiddenAddress) {
		t.Errorf("allowed host: err = %v, want the test dialer's refusal", err)
	}
	// Operator: private and loopback pass, link-local never.
	if err := get(operator, "http://lo.test:"+port+"/"); err != nil {
		t.Errorf("operator client, loopback: %v", err)
	}
	if err := get(operator, "http://meta.test/"); !errors.Is(err, errForbiddenAddress) {
		t.Errorf("operator client, link-local: %v", err)
	}
	if err := get(operator, "http://mixed.test:"+port+"/"); err != nil {
		t.Errorf("operator client, mixed answer: %v", err)
	}
	for _, a := range fn.dialled() {
		if a != "10.0.0.7:80" && a != net.JoinHostPort("127.0.0.1", port) {
			t.Errorf("the dialer was asked for %s", a)
		}
	}
	// No redirect is followed: it would lead somewhere nobody registered.
	redirect := httptest.NewServer(http.RedirectHandler("http://meta.test/", http.StatusFound))
	defer redirect.Close()
	u, _ := url.Parse(redirect.URL)
	resp, err := o.clientFor(operator, u, time.Second).Get(redirect.URL)
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("redirect: %v %v, want the 302 itself", err, resp)
	}
	resp.Body.Close()
}
