package main

import (
	"strings"
	"testing"
)

// mfa.webauthn.rp_id must be the issuer's host or a parent domain of it:
// config check (and serve) name the key and the line.
func TestConfigCheckWebAuthnRPID(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rest := "storage:\n  bolt: " + dir + "/provider.db\nkeys:\n  dir: " + dir + "/keys\nmfa:\n  webauthn:\n    rp_id: "
	for _, tc := range []struct{ name, issuer, rpID, want string }{
		{"elsewhere", "http://localhost:8080", "example.org", `:8: mfa.webauthn.rp_id: "example.org" must be the issuer's host localhost or a parent domain of it`},
		{"ip issuer", "http://127.0.0.1:8080", "localhost", `:8: mfa.webauthn.rp_id: "localhost" cannot be used: the issuer's host 127.0.0.1 is an IP address`},
		{"with a scheme", "http://localhost:8080", "http://localhost", `:8: mfa.webauthn.rp_id: "http://localhost" must be a domain name`},
	} {
		path := dir + "/" + strings.ReplaceAll(tc.name, " ", "-") + ".yaml"
		writeFile(t, path, "issuer: "+tc.issuer+"\n"+rest+tc.rpID+"\n")
		msg := runCLI(t, "", "config", "check", "--config", path).failsConfig(t, path)
		if !strings.Contains(msg, path+tc.want) || strings.Count(msg, "\n") != 0 {
			t.Errorf("%s: %s\nwant one problem %q", tc.name, msg, tc.want)
		}
	}
	path := dir + "/ok.yaml"
	writeFile(t, path, "issuer: http://localhost:8080\n"+rest+"localhost\n")
	if out := runCLI(t, "", "config", "check", "--config", path).ok(t); !strings.Contains(out, "ok") {
		t.Errorf("config check: %q", out)
	}
}
