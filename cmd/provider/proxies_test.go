package main

import (
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestTrustedProxiesConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := "issuer: http://127.0.0.1:8080\nstorage:\n  bolt: " + dir + "/provider.db\nkeys:\n  dir: " + dir + "/keys\n"
	path := filepath.Join(dir, "proxies.yaml")
	writeFile(t, path, base+"trusted_proxies:\n  - 10.0.0.0/8\n  - 192.168.1.7/24\n  - ::1\n  - 172.16.0.5\n")
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.0/24"),
		netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("172.16.0.5/32"),
	}
	if got := cfg.providerConfig().TrustedProxies; !slices.Equal(got, want) {
		t.Errorf("provider.Config.TrustedProxies = %v, want %v", got, want)
	}

	// None by default: forwarded headers are not believed.
	writeFile(t, path, base)
	if cfg, err = loadConfig(path); err != nil || len(cfg.providerConfig().TrustedProxies) != 0 {
		t.Errorf("default trusted proxies %v (%v), want none", cfg.providerConfig().TrustedProxies, err)
	}

	writeFile(t, path, base+"trusted_proxies: [10.0.0.0/8, 10.0.0.0/33, proxy.example.org, \"fe80::1%eth0\"]\n")
	msg := runCLI(t, "", "serve", "--config", path).failsConfig(t, path)
	for _, want := range []string{`trusted_proxies[1]: "10.0.0.0/33"`, `trusted_proxies[2]: "proxy.example.org"`, `trusted_proxies[3]`, path} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, "trusted_proxies[0]") {
		t.Errorf("a valid entry was refused: %s", msg)
	}
}
