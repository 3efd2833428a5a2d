package keys

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func mustOpen(t *testing.T, dir string, opts Options) *Manager {
	t.Helper()
	m, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return m
}

func mustActive(t *testing.T, m *Manager, alg string) Key {
	t.Helper()
	k, err := m.Active(alg)
	if err != nil {
		t.Fatalf("Active(%s): %v", alg, err)
	}
	return k
}

func kids(set jose.JSONWebKeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// signAndVerify signs with the active key, as the provider does, and
// verifies the way a relying party does: JWKS over JSON, key found by kid.
func signAndVerify(t *testing.T, m *Manager, alg string) {
	t.Helper()
	k := mustActive(t, m, alg)
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Alg), Key: k.Signer},
		(&jose.SignerOptions{}).WithHeader("kid", k.ID),
	)
	if err != nil {
		t.Fatalf("NewSigner(%s): %v", alg, err)
	}
	obj, err := signer.Sign([]byte(`{"sub":"alice"}`))
	if err != nil {
		t.Fatal(err)
	}
	token, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}

	raw, err := json.Marshal(m.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	parsed, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
	if err != nil {
		t.Fatal(err)
	}
	kid := parsed.Signatures[0].Header.KeyID
	found := set.Key(kid)
	if len(found) != 1 {
		t.Fatalf("JWKS has %d keys with kid %q, want 1", len(found), kid)
	}
	payload, err := parsed.Verify(found[0])
	if err != nil {
		t.Fatalf("verify %s token: %v", alg, err)
	}
	if string(payload) != `{"sub":"alice"}` {
		t.Fatalf("payload = %s", payload)
	}
}

func TestOpenGeneratesRS256KeyAndReopenKeepsIt(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "keys")
	m := mustOpen(t, dir, Options{})

	if got := mode(t, dir); got != 0o700 {
		t.Errorf("dir mode = %#o, want 0700", got)
	}
	list := m.List()
	if len(list) != 1 || list[0].Alg != "RS256" || list[0].State != StateActive {
		t.Fatalf("List() = %+v, want one active RS256 key", list)
	}
	kid := list[0].ID
	for _, name := range []string{kid + ".json", "keys.json"} {
		if got := mode(t, filepath.Join(dir, name)); got != 0o600 {
			t.Errorf("%s mode = %#o, want 0600", name, got)
		}
	}
	k := mustActive(t, m, "RS256")
	rk, ok := k.Signer.(*rsa.PrivateKey)
	if !ok || rk.N.BitLen() != 2048 {
		t.Fatalf("Signer = %T, want 2048-bit *rsa.PrivateKey", k.Signer)
	}
	if k.ID != kid || k.Created.IsZero() {
		t.Errorf("Active = %+v, want kid %s and a created time", k, kid)
	}

	again := mustOpen(t, dir, Options{})
	k2 := mustActive(t, again, "RS256")
	if k2.ID != kid || !k2.Created.Equal(k.Created) {
		t.Errorf("reopened key = %s created %s, want %s created %s", k2.ID, k2.Created, kid, k.Created)
	}
	if !k2.Signer.(*rsa.PrivateKey).Equal(rk) {
		t.Error("reopened key material differs")
	}
	if n := len(again.List()); n != 1 {
		t.Errorf("reopen generated keys: List has %d, want 1", n)
	}
}

func TestJWKSHasOnlyPublicKeys(t *testing.T) {
	t.Parallel()
	algs := []string{"RS256", "PS256", "ES256", "EdDSA"}
	m := mustOpen(t, t.TempDir(), Options{Algorithms: algs})

	set := m.JWKS()
	if len(set.Keys) != len(algs) {
		t.Fatalf("JWKS has %d keys, want %d", len(set.Keys), len(algs))
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			t.Errorf("key %s holds %T, want a public key", k.KeyID, k.Key)
		}
		raw, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]any
		if err := json.Unmarshal(raw, &fields); err != nil {
			t.Fatal(err)
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := fields[private]; ok {
				t.Errorf("key %s publishes private member %q", k.KeyID, private)
			}
		}
		if fields["use"] != "sig" || fields["kid"] == "" || !slices.Contains(algs, fields["alg"].(string)) {
			t.Errorf("key members kid/alg/use = %v/%v/%v", fields["kid"], fields["alg"], fields["use"])
		}
		pub, ok := m.PublicKey(k.KeyID)
		if !ok || !pub.IsPublic() {
			t.Errorf("PublicKey(%s) = %T, %v; want a public key", k.KeyID, pub.Key, ok)
		}
	}
	if _, ok := m.PublicKey("nope"); ok {
		t.Error("PublicKey of an unknown kid reported ok")
	}
}

func TestTokensSignedWithActiveKeyVerifyAgainstJWKS(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"RS256", "PS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			m := mustOpen(t, t.TempDir(), Options{Algorithms: []string{alg}})
			signAndVerify(t, m, alg)
			if _, err := m.Active("RS384"); !errors.Is(err, ErrNoActiveKey) {
				t.Errorf("Active(RS384) error = %v, want ErrNoActiveKey", err)
			}
		})
	}
}

func TestMultipleAlgorithmsInOneDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := mustOpen(t, dir, Options{Algorithms: []string{"ES256"}})
	es := mustActive(t, first, "ES256")

	// Configuration grew: only the new algorithm gets a key.
	m := mustOpen(t, dir, Options{Algorithms: []string{"ES256", "EdDSA"}})
	if got := mustActive(t, m, "ES256"); got.ID != es.ID {
		t.Errorf("ES256 kid changed on reopen: %s, want %s", got.ID, es.ID)
	}
	ed := mustActive(t, m, "EdDSA")
	if len(m.List()) != 2 || len(m.JWKS().Keys) != 2 {
		t.Fatalf("List = %+v, want ES256 and EdDSA", m.List())
	}
	signAndVerify(t, m, "ES256")
	signAndVerify(t, m, "EdDSA")

	fresh, err := m.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if len(fresh) != 2 || fresh[0].Alg != "ES256" || fresh[1].Alg != "EdDSA" {
		t.Fatalf("Rotate returned %+v, want new ES256 and EdDSA keys", fresh)
	}
	if fresh[0].ID == es.ID || fresh[1].ID == ed.ID {
		t.Error("Rotate reused a kid")
	}
	if got := kids(m.JWKS()); len(got) != 4 {
		t.Errorf("JWKS kids = %v, want 2 active and 2 retired", got)
	}
}

func TestRotateRetiresThenPrunes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clock := newClock()
	m := mustOpen(t, dir, Options{Algorithms: []string{"ES256"}, VerifyFor: time.Hour, Now: clock.Now})
	old := mustActive(t, m, "ES256")

	clock.Add(time.Minute)
	rotated, err := m.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	cur := mustActive(t, m, "ES256")
	if cur.ID == old.ID || rotated[0].ID != cur.ID {
		t.Fatalf("after Rotate active = %s (returned %s), old = %s", cur.ID, rotated[0].ID, old.ID)
	}
	if got := kids(m.JWKS()); !slices.Equal(got, []string{cur.ID, old.ID}) {
		t.Fatalf("JWKS kids = %v, want new then old", got)
	}
	list := m.List()
	retired := list[1]
	wantUntil := clock.Now().Add(time.Hour)
	if retired.ID != old.ID || retired.State != StateRetired || !retired.RetiredAt.Equal(clock.Now()) || !retired.VerifyUntil.Equal(wantUntil) {
		t.Fatalf("retired entry = %+v, want %s retired now until %s", retired, old.ID, wantUntil)
	}

	clock.Add(59 * time.Minute)
	if _, ok := m.PublicKey(old.ID); !ok {
		t.Fatal("retired key left the JWKS before verify_until")
	}

	clock.Add(time.Minute)
	if _, ok := m.PublicKey(old.ID); ok {
		t.Fatal("retired key still published at verify_until")
	}
	if got := kids(m.JWKS()); !slices.Equal(got, []string{cur.ID}) {
		t.Fatalf("JWKS kids = %v, want only %s", got, cur.ID)
	}
	if len(m.List()) != 2 {
		t.Fatal("List should still show the expired key until it is pruned")
	}

	if _, err := m.Rotate(); err != nil {
		t.Fatal(err)
	}
	for _, info := range m.List() {
		if info.ID == old.ID {
			t.Fatalf("expired key %s not pruned: %+v", old.ID, m.List())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, old.ID+".json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pruned key file still exists: %v", err)
	}
	if _, ok := m.PublicKey(cur.ID); !ok {
		t.Error("key retired by the second rotation should still be published")
	}

	reopened := mustOpen(t, dir, Options{Algorithms: []string{"ES256"}, Now: clock.Now})
	if got, want := reopened.List(), m.List(); !slices.Equal(got, want) {
		t.Errorf("manifest on disk = %+v, want %+v", got, want)
	}
}

func TestSecondManagerSeesRotationWithoutReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := Options{Algorithms: []string{"ES256"}, ReloadInterval: -1}
	server := mustOpen(t, dir, opts)
	cli := mustOpen(t, dir, opts)
	old := mustActive(t, server, "ES256")

	rotated, err := cli.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if got := mustActive(t, server, "ES256"); got.ID != rotated[0].ID {
		t.Fatalf("server active = %s, want %s from the other manager", got.ID, rotated[0].ID)
	}
	if got := kids(server.JWKS()); !slices.Equal(got, []string{rotated[0].ID, old.ID}) {
		t.Errorf("server JWKS = %v, want new and old", got)
	}
	signAndVerify(t, server, "ES256")
}

func TestReloadChecksAtMostOncePerInterval(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clock := newClock()
	server := mustOpen(t, dir, Options{Algorithms: []string{"ES256"}, ReloadInterval: time.Minute, Now: clock.Now})
	cli := mustOpen(t, dir, Options{Algorithms: []string{"ES256"}, Now: clock.Now})
	old := mustActive(t, server, "ES256")

	if _, err := cli.Rotate(); err != nil {
		t.Fatal(err)
	}
	clock.Add(59 * time.Second)
	if got := mustActive(t, server, "ES256"); got.ID != old.ID {
		t.Fatalf("server reloaded before its interval: active %s", got.ID)
	}
	clock.Add(time.Second)
	if got := mustActive(t, server, "ES256"); got.ID == old.ID {
		t.Fatal("server did not reload after its interval")
	}
}

func TestBrokenManifestKeepsServingLastGoodKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := mustOpen(t, dir, Options{Algorithms: []string{"ES256"}, ReloadInterval: -1})
	k := mustActive(t, m, "ES256")

	if err := writeFileAtomic(dir, manifestName, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if got := mustActive(t, m, "ES256"); got.ID != k.ID {
		t.Errorf("active = %s, want last good %s", got.ID, k.ID)
	}
	if len(m.JWKS().Keys) != 1 {
		t.Error("JWKS emptied by a broken manifest")
	}
	_, err := Open(dir, Options{Algorithms: []string{"ES256"}})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "keys.json")) {
		t.Errorf("Open error = %v, want one naming keys.json", err)
	}
}

func TestCorruptOrUnsafeFilesAreRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		damage func(t *testing.T, dir, kid string) string // returns the file the error must name
		perm   bool
	}{
		{"manifest not json", func(t *testing.T, dir, _ string) string {
			return write(t, dir, "keys.json", "[", 0o600)
		}, false},
		{"manifest names a path", func(t *testing.T, dir, kid string) string {
			return rewriteManifest(t, dir, kid, "../"+kid)
		}, false},
		{"key file not json", func(t *testing.T, dir, kid string) string {
			return write(t, dir, kid+".json", "garbage", 0o600)
		}, false},
		{"key file missing", func(t *testing.T, dir, kid string) string {
			path := filepath.Join(dir, kid+".json")
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			return path
		}, false},
		{"key file readable by others", func(t *testing.T, dir, kid string) string {
			path := filepath.Join(dir, kid+".json")
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
			return path
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			kid := mustActive(t, mustOpen(t, dir, Options{Algorithms: []string{"EdDSA"}}), "EdDSA").ID
			path := tt.damage(t, dir, kid)

			_, err := Open(dir, Options{Algorithms: []string{"EdDSA"}})
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("Open error = %v, want one naming %s", err, path)
			}
			var perr *PermissionError
			if errors.As(err, &perr) != tt.perm {
				t.Errorf("error %v: PermissionError = %v, want %v", err, !tt.perm, tt.perm)
			}
		})
	}
}

func write(t *testing.T, dir, name, content string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	return path
}

func rewriteManifest(t *testing.T, dir, from, to string) string {
	t.Helper()
	path := filepath.Join(dir, "keys.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return write(t, dir, "keys.json", strings.ReplaceAll(string(data), from, to), 0o600)
}

func TestOptionsAreValidated(t *testing.T) {
	t.Parallel()
	for _, opts := range []Options{
		{Algorithms: []string{"HS256"}},
		{Algorithms: []string{"ES256", "ES256"}},
		{VerifyFor: -time.Second},
	} {
		if _, err := Open(t.TempDir(), opts); err == nil {
			t.Errorf("Open(%+v) succeeded", opts)
		}
	}
}

func TestSecretIsStableAcrossReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := Options{Algorithms: []string{"EdDSA"}}
	m := mustOpen(t, dir, opts)

	s, err := m.Secret("hmac")
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 32 || bytes.Equal(s, make([]byte, 32)) {
		t.Fatalf("secret = %x, want 32 random bytes", s)
	}
	if got := mode(t, filepath.Join(dir, "hmac.secret")); got != 0o600 {
		t.Errorf("secret file mode = %#o, want 0600", got)
	}
	// Callers must not be able to change the value others are handed.
	again, _ := m.Secret("hmac")
	again[0] ^= 0xff
	if cached, _ := m.Secret("hmac"); !bytes.Equal(cached, s) {
		t.Error("mutating a returned secret changed the cached one")
	}

	reopened, err := mustOpen(t, dir, opts).Secret("hmac")
	if err != nil || !bytes.Equal(reopened, s) {
		t.Errorf("secret after reopen = %x, %v; want %x", reopened, err, s)
	}
	other, err := m.Secret("state")
	if err != nil || bytes.Equal(other, s) {
		t.Errorf("secret %q = %x, %v; want a different value", "state", other, err)
	}
	for _, bad := range []string{"", "../x", "a/b", "x.secret"} {
		if _, err := m.Secret(bad); err == nil {
			t.Errorf("Secret(%q) succeeded", bad)
		}
	}
}

func TestSecretRefusesWidePermissionsAndWrongSize(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := mustOpen(t, dir, Options{Algorithms: []string{"EdDSA"}})
	write(t, dir, "wide.secret", strings.Repeat("x", 32), 0o644)
	var perr *PermissionError
	if _, err := m.Secret("wide"); !errors.As(err, &perr) {
		t.Errorf("Secret(wide) error = %v, want PermissionError", err)
	}
	short := write(t, dir, "short.secret", "abc", 0o600)
	if _, err := m.Secret("short"); err == nil || !strings.Contains(err.Error(), short) {
		t.Errorf("Secret(short) error = %v, want one naming %s", err, short)
	}
}

func TestSecretRaceAgreesOnOneValue(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := Options{Algorithms: []string{"EdDSA"}}
	managers := make([]*Manager, 16)
	for i := range managers {
		managers[i] = mustOpen(t, dir, opts)
	}

	got := make([][]byte, len(managers))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, m := range managers {
		wg.Go(func() {
			<-start
			s, err := m.Secret("race")
			if err != nil {
				t.Error(err)
			}
			got[i] = s
		})
	}
	close(start)
	wg.Wait()
	for i := range got {
		if !bytes.Equal(got[i], got[0]) {
			t.Fatalf("manager %d got %x, manager 0 got %x", i, got[i], got[0])
		}
	}
}

// The losing side of a creation race must learn that it lost, and must
// not change what the winner wrote.
func TestCreateExclusiveNeverReplaces(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := createExclusive(dir, "x.secret", []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := createExclusive(dir, "x.secret", []byte("second")); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second create error = %v, want ErrExist", err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "x.secret")); string(data) != "first" {
		t.Errorf("content = %q, want first", data)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only x.secret (temp files left behind?)", len(entries))
	}
}

func TestConcurrentReadsDuringRotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := Options{Algorithms: []string{"ES256", "EdDSA"}, ReloadInterval: -1}
	m := mustOpen(t, dir, opts)
	other := mustOpen(t, dir, opts)

	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, r := range []*Manager{m, m, m, other, other} {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				for _, alg := range opts.Algorithms {
					k, err := r.Active(alg)
					if err != nil {
						t.Error(err)
						return
					}
					// The key just handed out must be verifiable: a retired
					// key stays published for VerifyFor.
					if _, ok := r.PublicKey(k.ID); !ok {
						t.Errorf("active %s key %s missing from JWKS", alg, k.ID)
						return
					}
				}
				if n := len(r.JWKS().Keys); n < 2 {
					t.Errorf("JWKS has %d keys, want at least 2", n)
					return
				}
			}
		})
	}
	for range 5 {
		if _, err := m.Rotate(); err != nil {
			t.Error(err)
		}
	}
	if _, err := other.Rotate(); err != nil {
		t.Error(err)
	}
	close(done)
	wg.Wait()

	if got, want := mustActive(t, m, "ES256").ID, mustActive(t, other, "ES256").ID; got != want {
		t.Errorf("managers disagree on the active key: %s vs %s", got, want)
	}
	if n := len(m.JWKS().Keys); n != 14 {
		t.Errorf("JWKS has %d keys after 6 rotations of 2 algorithms, want 14", n)
	}
}
