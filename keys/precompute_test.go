package keys

import (
	"crypto/rsa"
	"reflect"
	"testing"
)

// TestLoadedRSAKeysArePrecomputed reopens a directory, so the RSA keys come
// from their files through go-jose rather than from rsa.GenerateKey, and
// checks that they carry crypto/rsa's precomputed form: without it every
// signature rebuilds the key first.
func TestLoadedRSAKeysArePrecomputed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mustOpen(t, dir, Options{Algorithms: []string{"RS256", "PS256", "ES256", "EdDSA"}})
	m := mustOpen(t, dir, Options{Algorithms: []string{"RS256", "PS256", "ES256", "EdDSA"}})
	for _, alg := range []string{"RS256", "PS256"} {
		k := mustActive(t, m, alg)
		priv, ok := k.Signer.(*rsa.PrivateKey)
		if !ok {
			t.Fatalf("%s signer is %T", alg, k.Signer)
		}
		pc := priv.Precomputed
		if pc.Dp == nil || pc.Dq == nil || pc.Qinv == nil {
			t.Errorf("%s: CRT values missing: %+v", alg, pc)
		}
		// The precomputed key crypto/rsa signs with is unexported; reading
		// whether it is set is what tells Precompute ran.
		fips := reflect.ValueOf(&pc).Elem().FieldByName("fips")
		if !fips.IsValid() {
			t.Skip("crypto/rsa no longer keeps its precomputed key in PrecomputedValues.fips; update this test")
		}
		if fips.IsNil() {
			t.Errorf("%s: key loaded from its file is not precomputed", alg)
		}
		if err := priv.Validate(); err != nil {
			t.Errorf("%s: %v", alg, err)
		}
	}
	// A retired RSA key loaded by a reload is precomputed too.
	if _, err := m.Rotate("RS256"); err != nil {
		t.Fatal(err)
	}
	reopened := mustOpen(t, dir, Options{Algorithms: []string{"RS256", "PS256", "ES256", "EdDSA"}})
	for _, k := range reopened.snapshot().keys {
		priv, ok := k.signer.(*rsa.PrivateKey)
		if !ok {
			continue
		}
		pc := priv.Precomputed
		if f := reflect.ValueOf(&pc).Elem().FieldByName("fips"); f.IsValid() && f.IsNil() {
			t.Errorf("key %s (%s) not precomputed", k.ID, k.Alg)
		}
	}
}
