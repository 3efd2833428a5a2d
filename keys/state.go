package keys

import (
	"crypto"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	manifestName    = "keys.json"
	manifestVersion = 1
)

type manifest struct {
	Version int     `json:"version"`
	Keys    []entry `json:"keys"`
}

// entry is one key's line in the manifest. A key signs from its start
// (ActivatesAt, or Created for a key that was active at once) until the
// start of a newer key of its algorithm, or until RetiredAt; it stays
// published until VerifyUntil. A key whose ActivatesAt is still ahead is
// the next key (scheduled rotation, schedule.go): published, not yet
// signing. RetiredAt and VerifyUntil of a key a newer one took over from
// are written at the next change of the manifest (settle); until then the
// key stays published, which errs on the safe side.
type entry struct {
	ID          string    `json:"kid"`
	Alg         string    `json:"alg"`
	Created     time.Time `json:"created"`
	ActivatesAt time.Time `json:"activates_at,omitzero"`
	RetiredAt   time.Time `json:"retired_at,omitzero"`
	VerifyUntil time.Time `json:"verify_until,omitzero"`
}

// retired says the key was taken out of use for good.
func (e entry) retired() bool { return !e.RetiredAt.IsZero() }

// start is when the key began, or begins, to sign.
func (e entry) start() time.Time {
	if e.ActivatesAt.IsZero() {
		return e.Created
	}
	return e.ActivatesAt
}

// started says the key has begun to sign by now (or did, if retired
// since). A key made active at once counts as started from the moment it
// exists, whatever a reader's clock said an instant before.
func (e entry) started(now time.Time) bool {
	return e.ActivatesAt.IsZero() || !now.Before(e.ActivatesAt)
}

// pending says the key is the next one and does not sign yet at now.
func (e entry) pending(now time.Time) bool { return !e.retired() && !e.started(now) }

// published reports whether a token signed by e may still be presented.
func (e entry) published(now time.Time) bool {
	return !e.retired() || now.Before(e.VerifyUntil)
}

// newer orders two keys of one algorithm by start, then creation, then kid.
func newer(a, b entry) bool {
	if c := a.start().Compare(b.start()); c != 0 {
		return c > 0
	}
	if c := a.Created.Compare(b.Created); c != 0 {
		return c > 0
	}
	return a.ID > b.ID
}

func (e entry) info(state State) KeyInfo {
	return KeyInfo{ID: e.ID, Alg: e.Alg, State: state, Created: e.Created, ActivatesAt: e.ActivatesAt, RetiredAt: e.RetiredAt, VerifyUntil: e.VerifyUntil}
}

type key struct {
	entry
	signer crypto.Signer
	public jose.JSONWebKey
}

func (k *key) key() Key {
	return Key{ID: k.ID, Alg: k.Alg, Signer: k.signer, Created: k.Created}
}

// state is one consistent view of the directory. It is never modified once
// built, so readers use it without holding a lock.
type state struct {
	entries []entry // manifest order, as written back to disk
	keys    []*key  // newest first, the order of JWKS and List
	byKID   map[string]*key
	// signers are, by alg, the keys not retired, newest start first: the
	// one signing at a time is the first that has started.
	signers map[string][]*key
}

// active returns the key that signs with alg at now, nil if none.
func (st *state) active(alg string, now time.Time) *key {
	for _, k := range st.signers[alg] {
		if k.started(now) {
			return k
		}
	}
	return nil
}

// stateOf says what k is at now.
func (st *state) stateOf(k *key, now time.Time) State {
	switch {
	case k.pending(now):
		return StateNext
	case st.active(k.Alg, now) == k:
		return StateActive
	default:
		return StateRetired
	}
}

// newState pairs each entry with its key material, taken from material by
// kid; the caller guarantees every kid is present.
func newState(entries []entry, material map[string]*key) *state {
	st := &state{
		entries: entries,
		byKID:   make(map[string]*key, len(entries)),
		signers: make(map[string][]*key),
	}
	for _, e := range entries {
		m := material[e.ID]
		k := &key{entry: e, signer: m.signer, public: m.public}
		st.keys = append(st.keys, k)
		st.byKID[e.ID] = k
		if !e.retired() {
			st.signers[e.Alg] = append(st.signers[e.Alg], k)
		}
	}
	for _, ks := range st.signers {
		slices.SortFunc(ks, func(a, b *key) int {
			if newer(a.entry, b.entry) {
				return -1
			}
			return 1
		})
	}
	slices.SortFunc(st.keys, func(a, b *key) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return st
}

// load reads the manifest and the key material it names. Key material
// never changes once written, so material already in prev is reused,
// which keeps a reload after a rotation down to one new key. The returned
// stamp is of the manifest that was read, even when it turned out to be
// invalid.
func load(v Vault, prev *state) (*state, string, error) {
	data, stamp, err := v.ReadManifest()
	if err != nil {
		return nil, stamp, err
	}
	st, err := parseState(v, data, v.ReadKey, prev)
	return st, stamp, err
}

// parseState builds the state of a manifest, reading the key material of
// kids that prev lacks with readKey.
func parseState(v Vault, data []byte, readKey func(string) ([]byte, error), prev *state) (*state, error) {
	man, err := parseManifest(v, data)
	if err != nil {
		return nil, err
	}
	material := make(map[string]*key, len(man.Keys))
	for _, e := range man.Keys {
		if k, ok := prev.byKID[e.ID]; ok && k.Alg == e.Alg {
			material[e.ID] = k
			continue
		}
		k, err := parseKey(v, e, readKey)
		if err != nil {
			return nil, err
		}
		material[e.ID] = k
	}
	return newState(man.Keys, material), nil
}

func parseManifest(v Vault, data []byte) (manifest, error) {
	var man manifest
	if err := json.Unmarshal(data, &man); err != nil {
		return manifest{}, fmt.Errorf("keys: parse %s: %w", whereManifest(v), err)
	}
	if err := man.validate(); err != nil {
		return manifest{}, fmt.Errorf("keys: %s: %w", whereManifest(v), err)
	}
	return man, nil
}

func (man manifest) validate() error {
	if man.Version != manifestVersion {
		return fmt.Errorf("unsupported version %d", man.Version)
	}
	seen := make(map[string]bool, len(man.Keys))
	starts := make(map[string]bool)
	for _, e := range man.Keys {
		switch {
		case !validName(e.ID) || e.ID == "keys":
			return fmt.Errorf("invalid kid %q", e.ID)
		case seen[e.ID]:
			return fmt.Errorf("kid %q listed twice", e.ID)
		case !supported(e.Alg):
			return fmt.Errorf("key %s: unsupported algorithm %q", e.ID, e.Alg)
		case e.Created.IsZero():
			return fmt.Errorf("key %s: missing created", e.ID)
		case e.RetiredAt.IsZero() != e.VerifyUntil.IsZero():
			return fmt.Errorf("key %s: retired_at and verify_until must be set together", e.ID)
		case !e.retired() && starts[e.Alg+" "+e.start().String()]:
			return fmt.Errorf("two %s keys start signing at %s", e.Alg, e.start().Format(time.RFC3339))
		}
		seen[e.ID] = true
		if !e.retired() {
			starts[e.Alg+" "+e.start().String()] = true
		}
	}
	return nil
}

func encodeManifest(entries []entry) ([]byte, error) {
	data, err := json.MarshalIndent(manifest{Version: manifestVersion, Keys: entries}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("keys: encode manifest: %w", err)
	}
	return append(data, '\n'), nil
}

func keyFileName(kid string) string { return kid + ".json" }

func parseKey(v Vault, e entry, readKey func(string) ([]byte, error)) (*key, error) {
	data, err := readKey(e.ID)
	if err != nil {
		return nil, err
	}
	where := whereKey(v, e.ID)
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(data, &jwk); err != nil {
		return nil, fmt.Errorf("keys: parse %s: %w", where, err)
	}
	switch {
	case jwk.KeyID != e.ID:
		return nil, fmt.Errorf("keys: %s: kid %q, manifest says %q", where, jwk.KeyID, e.ID)
	case jwk.Algorithm != e.Alg:
		return nil, fmt.Errorf("keys: %s: alg %q, manifest says %q", where, jwk.Algorithm, e.Alg)
	}
	if err := checkKeyType(e.Alg, jwk.Key); err != nil {
		return nil, fmt.Errorf("keys: %s: %w", where, err)
	}
	return newKey(e, jwk.Key.(crypto.Signer)), nil
}

func newKey(e entry, signer crypto.Signer) *key {
	if k, ok := signer.(*rsa.PrivateKey); ok {
		// go-jose fills in the CRT values from the file but does not call
		// Precompute, so without this every signature would rebuild the
		// key's internal form (crypto/rsa does so when it is missing).
		// Keys from rsa.GenerateKey already have it; this is then a no-op.
		k.Precompute()
	}
	private := jose.JSONWebKey{Key: signer, KeyID: e.ID, Algorithm: e.Alg, Use: "sig"}
	return &key{entry: e, signer: signer, public: private.Public()}
}

func encodeKey(k *key) ([]byte, error) {
	private := jose.JSONWebKey{Key: k.signer, KeyID: k.ID, Algorithm: k.Alg, Use: "sig"}
	data, err := json.MarshalIndent(private, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("keys: encode key %s: %w", k.ID, err)
	}
	return append(data, '\n'), nil
}

// readFile returns the content and the FileInfo of the same open file, so
// the stamp recorded for a manifest matches the bytes that were parsed.
func readFile(path string) ([]byte, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("keys: read %s: %w", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("keys: stat %s: %w", path, err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, info, fmt.Errorf("keys: read %s: %w", path, err)
	}
	return data, info, nil
}

// readPrivateFile is readFile for files holding secrets: it refuses one that
// group or others can read.
func readPrivateFile(path string) ([]byte, os.FileInfo, error) {
	data, info, err := readFile(path)
	if err != nil {
		return nil, info, err
	}
	if err := checkPrivate(path, info); err != nil {
		return nil, info, err
	}
	return data, info, nil
}
