package mfa

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/smallsso/provider/storage"
)

func testKeys() *Keys {
	return NewKeys(func() ([]byte, error) { return []byte("0123456789abcdef0123456789abcdef"), nil })
}

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTOTPOnceWithinSkew(t *testing.T) {
	t.Parallel()
	key, err := NewTOTPKey("Example SSO", "alice")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_015, 0)
	f := storage.Factors{UserID: "u1", TOTP: &storage.TOTPFactor{}}
	// The previous step's code still works (a slow phone clock)...
	f, err = CheckTOTP(f, key.Secret(), code(t, key.Secret(), now.Add(-30*time.Second)), now)
	if err != nil {
		t.Fatalf("code of the previous step: %v", err)
	}
	// ...but not twice, and then not an older one either.
	if _, err := CheckTOTP(f, key.Secret(), code(t, key.Secret(), now.Add(-30*time.Second)), now); !errors.Is(err, ErrCodeUsed) {
		t.Fatalf("replayed code: %v, want ErrCodeUsed", err)
	}
	f, err = CheckTOTP(f, key.Secret(), code(t, key.Secret(), now), now)
	if err != nil {
		t.Fatalf("code of this step: %v", err)
	}
	if _, err := CheckTOTP(f, key.Secret(), code(t, key.Secret(), now.Add(-30*time.Second)), now); !errors.Is(err, ErrCodeUsed) {
		t.Fatalf("older code after a newer one: %v, want ErrCodeUsed", err)
	}
	for _, c := range []string{code(t, key.Secret(), now.Add(-90*time.Second)), "12345", "abcdef", ""} {
		if _, err := CheckTOTP(f, key.Secret(), c, now); !errors.Is(err, ErrWrongCode) {
			t.Errorf("code %q: %v, want ErrWrongCode", c, err)
		}
	}
	again, err := TOTPKeyFromSecret("Example SSO", "alice", key.Secret())
	if err != nil || again.Secret() != key.Secret() || again.URL() == "" {
		t.Fatalf("key from secret: %v %v", again, err)
	}
	if _, err := TOTPKeyFromSecret("x", "y", "!!"); err == nil {
		t.Fatal("a bad secret made a key")
	}
}

func TestSealedFactorsOpenOnlyForTheirOwner(t *testing.T) {
	t.Parallel()
	k := testKeys()
	sealed, err := k.SealTOTP("u1", "JBSWY3DPEHPK3PXP")
	if err != nil {
		t.Fatal(err)
	}
	if s, err := k.OpenTOTP("u1", sealed); err != nil || s != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("open: %q %v", s, err)
	}
	if _, err := k.OpenTOTP("u2", sealed); err == nil {
		t.Fatal("another user's sealed key opened")
	}
	if _, err := k.OpenPasskey("u1", sealed); err == nil {
		t.Fatal("a TOTP key opened as a passkey")
	}
}

func TestRecoveryCodesAreSingleUse(t *testing.T) {
	t.Parallel()
	k := testKeys()
	codes, stored, err := NewRecoveryCodes(k, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != RecoveryCodeCount || len(stored) != RecoveryCodeCount {
		t.Fatalf("%d codes", len(codes))
	}
	for _, c := range codes {
		if !LooksLikeRecoveryCode(c) || LooksLikeRecoveryCode("123456") {
			t.Fatalf("%q not told apart from a TOTP code", c)
		}
		for _, rc := range stored {
			if rc.Hash == c {
				t.Fatal("a code is stored in clear")
			}
		}
	}
	f := storage.Factors{UserID: "u1", RecoveryCodes: stored}
	now := time.Unix(1_800_000_000, 0)
	// Typed in lower case with spaces: still the code.
	f2, err := UseRecoveryCode(k, f, " "+lower(codes[3])+" ", now)
	if err != nil {
		t.Fatal(err)
	}
	if RecoveryCodesLeft(f2) != RecoveryCodeCount-1 || RecoveryCodesLeft(f) != RecoveryCodeCount {
		t.Fatal("using a code changed the input or left the count")
	}
	if _, err := UseRecoveryCode(k, f2, codes[3], now); !errors.Is(err, ErrCodeUsed) {
		t.Fatalf("second use: %v", err)
	}
	if _, err := UseRecoveryCode(k, storage.Factors{UserID: "u2", RecoveryCodes: stored}, codes[4], now); !errors.Is(err, ErrWrongCode) {
		t.Fatalf("another user's code: %v", err)
	}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

func TestCombine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		have, add, want []string
		acr             string
	}{
		{nil, []string{AMRPassword}, []string{"pwd"}, ACRPassword},
		{[]string{"pwd"}, []string{AMROTP}, []string{"pwd", "otp", "mfa"}, ACRMFA},
		{[]string{"pwd", "otp", "mfa"}, []string{AMROTP}, []string{"pwd", "otp", "mfa"}, ACRMFA},
		{nil, []string{AMRHardwareKey, AMRUser}, []string{"hwk", "user", "mfa"}, ACRMFA},
		{nil, []string{AMRSoftwareKey}, []string{"swk"}, ACRPassword},
	} {
		got := Combine(tc.have, tc.add...)
		if !slices.Equal(got, tc.want) || ACR(got) != tc.acr {
			t.Errorf("Combine(%v, %v) = %v (%s), want %v (%s)", tc.have, tc.add, got, ACR(got), tc.want, tc.acr)
		}
	}
}

func TestKeysLoadOnce(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	loads := 0
	k := NewKeys(func() ([]byte, error) {
		mu.Lock()
		loads++
		mu.Unlock()
		return []byte("0123456789abcdef0123456789abcdef"), nil
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := NewRecoveryCodes(k, "u"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if loads != 1 {
		t.Fatalf("%d loads of the provider secret for recovery codes", loads)
	}
}

func TestIssuerLabel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ org, issuer, want string }{
		{"Example Org", "https://sso.example.org", "Example Org"},
		{"  ", "https://sso.example.org:8443/base", "sso.example.org"},
		{"", "::bad", "OpenID Provider"},
	} {
		if got := IssuerLabel(tc.org, tc.issuer); got != tc.want {
			t.Errorf("IssuerLabel(%q, %q) = %q, want %q", tc.org, tc.issuer, got, tc.want)
		}
	}
}

func TestWithTOTP(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	codes := []storage.RecoveryCode{{Hash: "h"}}
	f, withCodes, err := WithTOTP(storage.Factors{UserID: "u"}, []byte("k"), 7, codes, now)
	if err != nil || !withCodes || f.TOTP == nil || f.TOTP.LastStep != 7 || len(f.RecoveryCodes) != 1 {
		t.Fatalf("first factor: %+v %v %v", f, withCodes, err)
	}
	if _, _, err := WithTOTP(f, []byte("k2"), 0, codes, now); !errors.Is(err, ErrTOTPExists) {
		t.Fatalf("second app: %v", err)
	}
	withPasskey := storage.Factors{UserID: "u", Passkeys: []storage.Passkey{{ID: []byte("p")}}, RecoveryCodes: []storage.RecoveryCode{{Hash: "old"}}}
	f, withCodes, err = WithTOTP(withPasskey, []byte("k"), 0, codes, now)
	if err != nil || withCodes || f.RecoveryCodes[0].Hash != "old" {
		t.Fatalf("beside a passkey with codes: %+v %v %v", f, withCodes, err)
	}
}
