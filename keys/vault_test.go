package keys

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5"

	"github.com/smallsso/provider/storage/postgres"
	"github.com/smallsso/provider/storage/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var _ Vault = (*postgres.Keyring)(nil)

// A vault kind makes, per test, one storage and a function that returns
// a new handle on it each call: another process on one directory, or
// another replica (its own connection pool) on one database.
type vaultKind struct {
	name string
	new  func(t *testing.T) func() Vault
}

var vaultKinds = []vaultKind{
	{"dir", func(t *testing.T) func() Vault {
		dir := t.TempDir()
		return func() Vault { return DirVault(dir) }
	}},
	{"postgres", func(t *testing.T) func() Vault {
		dsn := pgtest.Shared(t).NewDatabase(t)
		key := testEncryptionKey(t)
		return func() Vault { return openKeyring(t, dsn, key) }
	}},
}

func testEncryptionKey(t *testing.T) []byte {
	t.Helper()
	key, err := ParseEncryptionKey(GenerateEncryptionKey())
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func openStore(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), postgres.Options{DSN: dsn, Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openKeyring(t *testing.T, dsn string, key []byte) *postgres.Keyring {
	t.Helper()
	k, err := openStore(t, dsn).Keyring(key)
	if err != nil {
		t.Fatalf("Keyring: %v", err)
	}
	return k
}

func mustOpenVault(t *testing.T, v Vault, opts Options) *Manager {
	t.Helper()
	m, err := OpenVault(v, opts)
	if err != nil {
		t.Fatalf("OpenVault: %v", err)
	}
	return m
}

func forEachVault(t *testing.T, test func(t *testing.T, vault func() Vault)) {
	for _, kind := range vaultKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			test(t, kind.new(t))
		})
	}
}

// Two replicas: one rotates, the other serves the new key once its reload
// interval has passed, and not before.
func TestVaultReplicaSeesRotationAfterItsReload(t *testing.T) {
	t.Parallel()
	forEachVault(t, func(t *testing.T, vault func() Vault) {
		clock := newClock()
		opts := Options{Algorithms: []string{"ES256"}, Now: clock.Now}
		a := mustOpenVault(t, vault(), opts)
		b := mustOpenVault(t, vault(), opts)
		old := mustActive(t, b, "ES256")
		if got := mustActive(t, a, "ES256"); got.ID != old.ID {
			t.Fatalf("replicas disagree at start: %s vs %s", got.ID, old.ID)
		}

		rotated, err := a.Rotate()
		if err != nil {
			t.Fatal(err)
		}
		if got := kids(b.JWKS()); !slices.Equal(got, []string{old.ID}) {
			t.Fatalf("B's JWKS within its reload interval = %v, want only %s", got, old.ID)
		}
		clock.Add(time.Second)
		if got, want := kids(b.JWKS()), []string{rotated[0].ID, old.ID}; !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
			t.Fatalf("B's JWKS after its reload = %v, want new %s and old %s", got, rotated[0].ID, old.ID)
		}
		if got := mustActive(t, b, "ES256"); got.ID != rotated[0].ID {
			t.Fatalf("B signs with %s, want %s", got.ID, rotated[0].ID)
		}
		signAndVerify(t, b, "ES256")
		if !slices.Equal(a.List(), b.List()) {
			t.Errorf("lists differ:\nA %+v\nB %+v", a.List(), b.List())
		}
	})
}

// Replicas starting together on an empty vault end with one key per
// algorithm, the same for all.
func TestVaultOpenTogetherMakesOneKeyPerAlgorithm(t *testing.T) {
	t.Parallel()
	forEachVault(t, func(t *testing.T, vault func() Vault) {
		opts := Options{Algorithms: []string{"ES256", "EdDSA"}}
		vaults := make([]Vault, 6)
		for i := range vaults {
			vaults[i] = vault()
		}
		managers := make([]*Manager, len(vaults))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, v := range vaults {
			wg.Go(func() {
				<-start
				m, err := OpenVault(v, opts)
				if err != nil {
					t.Error(err)
					return
				}
				managers[i] = m
			})
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}
		m := mustOpenVault(t, vault(), opts)
		list := m.List()
		if len(list) != 2 {
			t.Fatalf("List = %+v, want one key per algorithm", list)
		}
		for i, other := range managers {
			for _, alg := range opts.Algorithms {
				if got, want := mustActive(t, other, alg).ID, mustActive(t, m, alg).ID; got != want {
					t.Errorf("manager %d signs %s with %s, want %s", i, alg, got, want)
				}
			}
		}
	})
}

func TestVaultSecretRaceAgreesOnOneValue(t *testing.T) {
	t.Parallel()
	forEachVault(t, func(t *testing.T, vault func() Vault) {
		opts := Options{Algorithms: []string{"EdDSA"}}
		managers := make([]*Manager, 6)
		for i := range managers {
			managers[i] = mustOpenVault(t, vault(), opts)
		}
		got := make([][]byte, len(managers))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, m := range managers {
			wg.Go(func() {
				<-start
				s, err := m.Secret("provider")
				if err != nil {
					t.Error(err)
				}
				got[i] = s
			})
		}
		close(start)
		wg.Wait()
		for i := range got {
			if len(got[i]) != 32 || !bytes.Equal(got[i], got[0]) {
				t.Fatalf("manager %d got %x, manager 0 got %x", i, got[i], got[0])
			}
		}
		again, err := mustOpenVault(t, vault(), opts).Secret("provider")
		if err != nil || !bytes.Equal(again, got[0]) {
			t.Errorf("secret after reopen = %x, %v; want %x", again, err, got[0])
		}
	})
}

// A scheduled rotation that comes due on two replicas at once publishes
// one next key, not two.
func TestVaultScheduledRotationAcrossReplicasMakesOneKey(t *testing.T) {
	t.Parallel()
	forEachVault(t, func(t *testing.T, vault func() Vault) {
		clock := newClock()
		opts := Options{Algorithms: []string{"ES256", "EdDSA"}, VerifyFor: time.Hour, Now: clock.Now, ReloadInterval: time.Hour}
		a := mustOpenVault(t, vault(), opts)
		b := mustOpenVault(t, vault(), opts)
		const every = 10 * time.Hour
		clock.Add(5 * time.Hour)

		var published [2][]Key
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, m := range []*Manager{a, b} {
			wg.Go(func() {
				<-start
				next, err := m.RotateDue(every)
				if err != nil {
					t.Error(err)
				}
				published[i] = next
			})
		}
		close(start)
		wg.Wait()
		if n := len(published[0]) + len(published[1]); n != 2 {
			t.Fatalf("published %d next keys (A %v, B %v), want one per algorithm", n, published[0], published[1])
		}
		clock.Add(time.Hour) // past B's reload interval
		for _, m := range []*Manager{a, b} {
			if n := len(m.List()); n != 4 {
				t.Errorf("List = %+v, want 4 keys (2 active, 2 next)", m.List())
			}
		}
		// Both replicas switch to the same keys at the due time.
		clock.Add(4 * time.Hour)
		for _, alg := range opts.Algorithms {
			if x, y := mustActive(t, a, alg).ID, mustActive(t, b, alg).ID; x != y {
				t.Errorf("%s: A signs with %s, B with %s", alg, x, y)
			}
		}
	})
}

// The lifecycle of keys/keys_test.go's rotation test on every vault:
// rotate, retire, prune, reopen.
func TestVaultRotateRetiresThenPrunes(t *testing.T) {
	t.Parallel()
	forEachVault(t, func(t *testing.T, vault func() Vault) {
		clock := newClock()
		opts := Options{Algorithms: []string{"ES256"}, VerifyFor: time.Hour, Now: clock.Now, ReloadInterval: -1}
		m := mustOpenVault(t, vault(), opts)
		first := mustActive(t, m, "ES256")
		clock.Add(time.Minute)
		if _, err := m.Rotate(); err != nil {
			t.Fatal(err)
		}
		if _, ok := m.PublicKey(first.ID); !ok {
			t.Fatal("retired key left the JWKS at once")
		}
		clock.Add(2 * time.Hour)
		rotated, err := m.Rotate()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := m.PublicKey(first.ID); ok {
			t.Error("key past its verify period still published")
		}
		reopened := mustOpenVault(t, vault(), opts)
		if got, want := reopened.List(), m.List(); !slices.Equal(got, want) {
			t.Errorf("reopened List = %+v, want %+v", got, want)
		}
		if len(m.List()) != 2 || mustActive(t, reopened, "ES256").ID != rotated[0].ID {
			t.Errorf("List = %+v, want the new key and the one it replaced", m.List())
		}
		if _, err := vault().ReadKey(first.ID); err == nil {
			t.Error("pruned key material still stored")
		}
		signAndVerify(t, reopened, "ES256")
	})
}

// Nothing in the keyring's rows shows a private key or a secret in plain
// text: not the JWK's "d", not its raw bytes, not the secret.
func TestKeyringStoresNoPlainSecrets(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).NewDatabase(t)
	algs := []string{"RS256", "ES256", "EdDSA"}
	m := mustOpenVault(t, openKeyring(t, dsn, testEncryptionKey(t)), Options{Algorithms: algs})
	secret, err := m.Secret("provider")
	if err != nil {
		t.Fatal(err)
	}
	needles := [][]byte{secret, []byte(base64.StdEncoding.EncodeToString(secret)), []byte(base64.RawURLEncoding.EncodeToString(secret)), []byte(hex.EncodeToString(secret))}
	for _, alg := range algs {
		k := mustActive(t, m, alg)
		raw, err := json.Marshal(jose.JSONWebKey{Key: k.Signer, KeyID: k.ID, Algorithm: k.Alg})
		if err != nil {
			t.Fatal(err)
		}
		var jwk struct{ D string }
		if err := json.Unmarshal(raw, &jwk); err != nil || jwk.D == "" {
			t.Fatalf("%s: no d in %s", alg, raw)
		}
		d, err := base64.RawURLEncoding.DecodeString(jwk.D)
		if err != nil {
			t.Fatal(err)
		}
		needles = append(needles, []byte(jwk.D), d, []byte(hex.EncodeToString(d)))
	}

	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var dump []byte
	for _, table := range []string{"keyring_manifest", "keyring_keys", "keyring_secrets", "keyring_check"} {
		// Each row as text (bytea in hex), and each bytea column raw.
		rows, err := conn.Query(t.Context(), "SELECT t::text FROM "+table+" t")
		if err != nil {
			t.Fatal(err)
		}
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if len(texts) == 0 {
			t.Fatalf("%s is empty", table)
		}
		for _, s := range texts {
			dump = append(dump, s...)
		}
	}
	for _, table := range []string{"keyring_keys", "keyring_secrets", "keyring_check"} {
		rows, err := conn.Query(t.Context(), "SELECT sealed FROM "+table)
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sealed {
			dump = append(dump, s...)
		}
	}
	lower := bytes.ToLower(dump)
	for _, n := range needles {
		if bytes.Contains(dump, n) || bytes.Contains(lower, bytes.ToLower(n)) {
			t.Errorf("the keyring's rows contain private material in plain text (%d bytes)", len(n))
		}
	}
	// The manifest is public and plain: the kids are there.
	for _, k := range m.List() {
		if !bytes.Contains(dump, []byte(k.ID)) {
			t.Errorf("kid %s not in the manifest rows", k.ID)
		}
	}
}

func TestKeyringWrongEncryptionKeyFailsClearly(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).NewDatabase(t)
	right := testEncryptionKey(t)
	m := mustOpenVault(t, openKeyring(t, dsn, right), Options{Algorithms: []string{"EdDSA"}})
	if _, err := m.Secret("provider"); err != nil {
		t.Fatal(err)
	}
	const want = "keys.encryption_key does not decrypt the signing keys stored in the database (was it changed?)"

	wrong := testEncryptionKey(t)
	_, err := openStore(t, dsn).Keyring(wrong)
	if !errors.Is(err, postgres.ErrWrongEncryptionKey) || err.Error() != want {
		t.Fatalf("Keyring with another key: %v, want %q", err, want)
	}

	// Without the check row (a hand-made database, a restore of part of
	// it), the keys themselves refuse to open: an error, never a garbage
	// key.
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if _, err := conn.Exec(t.Context(), "DELETE FROM keyring_check"); err != nil {
		t.Fatal(err)
	}
	k, err := openStore(t, dsn).Keyring(wrong)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenVault(k, Options{Algorithms: []string{"EdDSA"}})
	if !errors.Is(err, postgres.ErrWrongEncryptionKey) || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("OpenVault with another key: %v, want %q", err, want)
	}
	if _, err := k.ReadSecret("provider"); !errors.Is(err, postgres.ErrWrongEncryptionKey) {
		t.Fatalf("ReadSecret with another key: %v", err)
	}
	for _, bad := range [][]byte{nil, make([]byte, 16), make([]byte, 33)} {
		if _, err := openStore(t, dsn).Keyring(bad); err == nil {
			t.Errorf("Keyring(%d bytes) succeeded", len(bad))
		}
	}
}

// A sealed value moved to another row does not open there.
func TestKeyringRowsCannotBeSwapped(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).NewDatabase(t)
	key := testEncryptionKey(t)
	k := openKeyring(t, dsn, key)
	for _, name := range []string{"a", "b"} {
		if _, err := k.CreateSecret(name, bytes.Repeat([]byte(name), 32)); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if _, err := conn.Exec(t.Context(), "UPDATE keyring_secrets SET sealed = (SELECT sealed FROM keyring_secrets WHERE name = 'a') WHERE name = 'b'"); err != nil {
		t.Fatal(err)
	}
	if s, err := k.ReadSecret("b"); err == nil {
		t.Fatalf("secret b opened with a's sealed value: %x", s)
	}
	if s, err := k.ReadSecret("a"); err != nil || !bytes.Equal(s, bytes.Repeat([]byte("a"), 32)) {
		t.Fatalf("secret a = %x, %v", s, err)
	}
	names, err := k.SecretNames()
	if err != nil || !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("SecretNames = %v, %v", names, err)
	}
}

// migrate-storage: a directory to a database and back keeps every kid,
// every date, the JWKS and the provider secret; copying again is a no-op;
// a destination with other keys or another secret is refused.
func TestCopyRoundTrip(t *testing.T) {
	t.Parallel()
	clock := newClock()
	opts := Options{Algorithms: []string{"RS256", "ES256", "EdDSA"}, VerifyFor: time.Hour, Now: clock.Now, ReloadInterval: -1}
	srcDir := t.TempDir()
	src := mustOpen(t, srcDir, opts)
	clock.Add(time.Minute)
	if _, err := src.Rotate("ES256"); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Minute)
	if _, err := src.RotateDue(time.Minute); err != nil { // next keys pending
		t.Fatal(err)
	}
	secret, err := src.Secret("provider")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Secret("state"); err != nil {
		t.Fatal(err)
	}
	want, wantJWKS := src.List(), kids(src.JWKS())
	if len(want) < 5 {
		t.Fatalf("source has only %+v", want)
	}

	dsn := pgtest.Shared(t).NewDatabase(t)
	key := testEncryptionKey(t)
	db := openKeyring(t, dsn, key)
	if err := Copy(DirVault(srcDir), db); err != nil {
		t.Fatalf("Copy dir→db: %v", err)
	}
	if err := Copy(DirVault(srcDir), db); err != nil {
		t.Fatalf("Copy dir→db again: %v", err)
	}
	check := func(name string, v Vault) {
		t.Helper()
		m := mustOpenVault(t, v, opts)
		if got := m.List(); !slices.Equal(got, want) {
			t.Errorf("%s: List = %+v\nwant %+v", name, got, want)
		}
		if got := kids(m.JWKS()); !slices.Equal(got, wantJWKS) {
			t.Errorf("%s: JWKS = %v, want %v", name, got, wantJWKS)
		}
		for _, alg := range opts.Algorithms {
			if got, want := mustActive(t, m, alg).ID, mustActive(t, src, alg).ID; got != want {
				t.Errorf("%s: %s signs with %s, want %s", name, alg, got, want)
			}
			signAndVerify(t, m, alg)
		}
		if got, err := m.Secret("provider"); err != nil || !bytes.Equal(got, secret) {
			t.Errorf("%s: provider secret = %x, %v; want the source's", name, got, err)
		}
	}
	check("db", openKeyring(t, dsn, key))

	backDir := t.TempDir() + "/keys"
	if err := Copy(openKeyring(t, dsn, key), DirVault(backDir)); err != nil {
		t.Fatalf("Copy db→dir: %v", err)
	}
	if got := mode(t, backDir); got != 0o700 {
		t.Errorf("created directory has mode %#o, want 0700", got)
	}
	check("dir", DirVault(backDir))
	if err := Copy(DirVault(backDir), db); err != nil {
		t.Errorf("Copy of the same keys back: %v", err)
	}

	// Other keys in the destination: refused, nothing written.
	otherDir := t.TempDir()
	other := mustOpen(t, otherDir, opts)
	if err := Copy(DirVault(srcDir), DirVault(otherDir)); err == nil || !strings.Contains(err.Error(), "other signing keys") {
		t.Errorf("Copy into a directory with other keys: %v", err)
	}
	if got := mustOpen(t, otherDir, opts).List(); !slices.Equal(got, other.List()) {
		t.Error("a refused copy changed the destination's keys")
	}
	// Another secret: refused before the keys are written.
	emptyDir := t.TempDir()
	if _, err := DirVault(emptyDir).CreateSecret("provider", bytes.Repeat([]byte{1}, 32)); err != nil {
		t.Fatal(err)
	}
	if err := Copy(DirVault(srcDir), DirVault(emptyDir)); err == nil || !strings.Contains(err.Error(), `different "provider" secret`) {
		t.Errorf("Copy into a directory with another secret: %v", err)
	}
	if _, _, err := DirVault(emptyDir).ReadManifest(); err == nil {
		t.Error("a refused copy wrote a manifest")
	}
	// Another secret in the database, too.
	dsn2 := pgtest.Shared(t).NewDatabase(t)
	db2 := openKeyring(t, dsn2, key)
	if _, err := db2.CreateSecret("provider", bytes.Repeat([]byte{2}, 32)); err != nil {
		t.Fatal(err)
	}
	if err := Copy(DirVault(srcDir), db2); err == nil || !strings.Contains(err.Error(), `different "provider" secret`) {
		t.Errorf("Copy into a database with another secret: %v", err)
	}
}

func TestParseEncryptionKey(t *testing.T) {
	t.Parallel()
	raw := bytes.Repeat([]byte{0xfb, 0xff, 0x3e}, 11)[:32] // hits + and / in std, - and _ in URL
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		s := enc.EncodeToString(raw)
		got, err := ParseEncryptionKey(" " + s + "\n")
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("ParseEncryptionKey(%q) = %x, %v", s, got, err)
		}
	}
	gen := GenerateEncryptionKey()
	if k, err := ParseEncryptionKey(gen); err != nil || len(k) != 32 {
		t.Errorf("generated key %d bytes, %v", len(k), err)
	}
	if gen == GenerateEncryptionKey() {
		t.Error("two generated keys are equal")
	}
	for _, bad := range []struct{ in, want string }{
		{"", "empty"},
		{"   ", "empty"},
		{"not base64 at all!!", "not base64"},
		{base64.StdEncoding.EncodeToString(make([]byte, 16)), "16 bytes, want 32"},
		{base64.StdEncoding.EncodeToString(make([]byte, 64)), "64 bytes, want 32"},
	} {
		_, err := ParseEncryptionKey(bad.in)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseEncryptionKey(%q) = %v, want an error saying %q", bad.in, err, bad.want)
			continue
		}
		if strings.TrimSpace(bad.in) != "" && strings.Contains(err.Error(), strings.TrimSpace(bad.in)) {
			t.Errorf("error %q repeats the value", err)
		}
	}
}

// A damaged keyring fails clearly at open, and a running replica keeps
// serving its last good keys.
func TestKeyringDamageFailsClearly(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).NewDatabase(t)
	key := testEncryptionKey(t)
	opts := Options{Algorithms: []string{"EdDSA"}, ReloadInterval: -1}
	m := mustOpenVault(t, openKeyring(t, dsn, key), opts)
	kid := mustActive(t, m, "EdDSA").ID
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())

	if _, err := conn.Exec(t.Context(), `UPDATE keyring_manifest SET manifest = '{"version": 99, "keys": []}', version = version + 1`); err != nil {
		t.Fatal(err)
	}
	if got := mustActive(t, m, "EdDSA"); got.ID != kid {
		t.Errorf("active = %s after a broken manifest, want last good %s", got.ID, kid)
	}
	if _, err := OpenVault(openKeyring(t, dsn, key), opts); err == nil || !strings.Contains(err.Error(), "keyring manifest: unsupported version 99") {
		t.Errorf("OpenVault on a broken manifest: %v", err)
	}

	dsn2 := pgtest.Shared(t).NewDatabase(t)
	kid = mustActive(t, mustOpenVault(t, openKeyring(t, dsn2, key), opts), "EdDSA").ID
	conn2, err := pgx.Connect(t.Context(), dsn2)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close(t.Context())
	if _, err := conn2.Exec(t.Context(), "DELETE FROM keyring_keys"); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenVault(openKeyring(t, dsn2, key), opts); err == nil || !strings.Contains(err.Error(), "key "+kid+" is not in the database") {
		t.Errorf("OpenVault with a key row missing: %v", err)
	}
}
