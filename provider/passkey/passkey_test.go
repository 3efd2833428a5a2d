package passkey_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/smallsso/provider/provider/mfa"
	"github.com/smallsso/provider/provider/passkey"
	"github.com/smallsso/provider/storage"
)

func TestRPIDProblem(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		issuer, rpID, want string
	}{
		{"https://sso.example.org", "", ""},
		{"https://sso.example.org", "sso.example.org", ""},
		{"https://sso.example.org", "example.org", ""},
		{"https://SSO.Example.org/base", "EXAMPLE.org", ""},
		{"https://sso.example.org", "other.org", "must be the issuer's host sso.example.org or a parent domain"},
		{"https://sso.example.org", "ample.org", "must be the issuer's host"},
		{"https://sso.example.co.uk", "co.uk", "is a public suffix"},
		{"https://sso.example.org", "org", "is a public suffix"},
		{"https://sso.example.org", "https://example.org", "must be a domain name"},
		{"https://sso.example.org", "example.org:443", "must be a domain name"},
		{"https://sso.example.org", ".example.org", "must be a domain name"},
		{"http://127.0.0.1:8080", "127.0.0.1", "is an IP address"},
		{"http://127.0.0.1:8080", "", ""},
	} {
		got := passkey.RPIDProblem(tc.issuer, tc.rpID)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("RPIDProblem(%q, %q) = %q, want %q", tc.issuer, tc.rpID, got, tc.want)
		}
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	wa, err := passkey.New("https://sso.example.org:8443/base", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if wa.Config.RPID != "sso.example.org" || wa.Config.RPDisplayName != "sso.example.org" || len(wa.Config.RPOrigins) != 1 || wa.Config.RPOrigins[0] != "https://sso.example.org:8443" {
		t.Errorf("relying party %q %q %v", wa.Config.RPID, wa.Config.RPDisplayName, wa.Config.RPOrigins)
	}
	if wa, err = passkey.New("https://sso.example.org", "example.org", "Acme"); err != nil || wa.Config.RPID != "example.org" || wa.Config.RPDisplayName != "Acme" {
		t.Errorf("with rp_id: %v %v", wa, err)
	}
	if _, err := passkey.New("http://127.0.0.1:8080", "", ""); err != passkey.ErrIPHost {
		t.Errorf("IP issuer: %v, want ErrIPHost", err)
	}
	if _, err := passkey.New("https://sso.example.org", "other.org", ""); err == nil || !strings.Contains(err.Error(), "mfa.webauthn.rp_id") {
		t.Errorf("wrong rp_id: %v", err)
	}
}

var secret = []byte("0123456789abcdef0123456789abcdef")

func TestStatesRefuseWhatTheyDidNotSeal(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	st := passkey.NewStates(secret, now)
	in := passkey.State{UserID: "u1", Session: webauthn.SessionData{Challenge: "abcdefghijklmnopqrstuvwxyz012345"}}
	sealed, err := st.Seal(passkey.KindRegister, "csrf-a", in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := st.Open(passkey.KindRegister, "csrf-a", sealed)
	if err != nil || out.UserID != "u1" || out.Session.Challenge != in.Session.Challenge {
		t.Fatalf("round trip: %+v, %v", out, err)
	}
	if strings.Contains(sealed, "u1") || strings.Contains(sealed, in.Session.Challenge) {
		t.Error("the sealed state shows its content")
	}
	tampered := []byte(sealed)
	tampered[len(tampered)/2] ^= 1
	other, _ := passkey.NewStates([]byte("another provider secret, 32 byte"), now).Seal(passkey.KindRegister, "csrf-a", in)
	for name, tc := range map[string]struct{ kind, csrf, sealed string }{
		"other csrf":   {passkey.KindRegister, "csrf-b", sealed},
		"no csrf":      {passkey.KindRegister, "", sealed},
		"other kind":   {passkey.KindLogin, "csrf-a", sealed},
		"tampered":     {passkey.KindRegister, "csrf-a", string(tampered)},
		"truncated":    {passkey.KindRegister, "csrf-a", sealed[:len(sealed)-4]},
		"empty":        {passkey.KindRegister, "csrf-a", ""},
		"other secret": {passkey.KindRegister, "csrf-a", other},
		"not base64":   {passkey.KindRegister, "csrf-a", "!!!"},
	} {
		if _, err := st.Open(tc.kind, tc.csrf, tc.sealed); err != passkey.ErrBadState {
			t.Errorf("%s: %v, want ErrBadState", name, err)
		}
	}
	offset.Store(int64(passkey.StateTTL - time.Second))
	if _, err := st.Open(passkey.KindRegister, "csrf-a", sealed); err != nil {
		t.Errorf("just before expiry: %v", err)
	}
	offset.Store(int64(passkey.StateTTL + 2*time.Second))
	if _, err := st.Open(passkey.KindRegister, "csrf-a", sealed); err != passkey.ErrBadState {
		t.Errorf("expired: %v, want ErrBadState", err)
	}
}

func TestCredentialsSealedPerUser(t *testing.T) {
	t.Parallel()
	keys := mfa.NewKeys(func() ([]byte, error) { return secret, nil })
	c := &webauthn.Credential{ID: []byte("cred-1"), PublicKey: []byte("public key"), Flags: webauthn.CredentialFlags{BackupEligible: true}}
	sealed, err := passkey.Seal(keys, "u1", c)
	if err != nil {
		t.Fatal(err)
	}
	pk := storage.Passkey{ID: c.ID, CredentialSealed: sealed}
	got, err := passkey.Open(keys, "u1", pk)
	if err != nil || string(got.PublicKey) != "public key" || passkey.AMR(&got) != mfa.AMRSoftwareKey {
		t.Fatalf("open: %+v, %v", got, err)
	}
	if _, err := passkey.Open(keys, "u2", pk); err == nil {
		t.Error("another user's passkey opened")
	}
	u, bad, err := passkey.NewUser(keys, storage.User{ID: "u2", Username: "bob"}, storage.Factors{Passkeys: []storage.Passkey{pk}})
	if err != nil || bad != 1 || len(u.Credentials) != 0 || u.DisplayName != "bob" || string(u.WebAuthnID()) != "u2" {
		t.Errorf("NewUser with a passkey sealed for someone else: %+v, %d, %v", u, bad, err)
	}
	if _, _, err := passkey.NewUser(keys, storage.User{ID: strings.Repeat("x", 65)}, storage.Factors{}); err == nil {
		t.Error("a user ID longer than a user handle may be was accepted")
	}
	if passkey.AMR(&webauthn.Credential{}) != mfa.AMRHardwareKey {
		t.Error("a device-bound passkey is not hwk")
	}
}
