package keys

import (
	"fmt"
	"path/filepath"
)

// Vault is where a Manager keeps the manifest, the private keys and the
// named secrets. DirVault keeps them as files in a directory; the
// PostgreSQL backend keeps them in its database, encrypted
// (storage/postgres/keyring.go), so replicas share one set of keys.
//
// The methods use only basic types so that a vault in another package
// satisfies the interface without importing this one. Byte slices are the
// formats this package owns (a JSON manifest, one private JWK per key, 32
// random bytes per secret); a vault stores them verbatim and never
// interprets them. Missing things are reported with errors matching
// fs.ErrNotExist. Every method is safe for concurrent use.
type Vault interface {
	// Stamp returns a version of the manifest, cheap to get: it changes
	// whenever an Update writes the manifest. "" means there is none.
	// Readers call it at most once per Options.ReloadInterval and read
	// the manifest again only when it changed.
	Stamp() (string, error)
	// ReadManifest returns the manifest and the stamp of exactly the
	// version read (also when err is not nil, if it got that far).
	ReadManifest() (manifest []byte, stamp string, err error)
	// ReadKey returns the private key material of kid.
	ReadKey(kid string) ([]byte, error)
	// Update runs fn while holding a write lock that serialises writers
	// in every process sharing the vault. fn is given the manifest as it
	// is now (nil if there is none) and a reader of key material for that
	// same view. When fn returns a manifest, the vault stores the key
	// material in put (kid to bytes; new kids), the manifest, and removes
	// the kids in remove, in that order, as atomically as it can; when fn
	// returns a nil manifest nothing is written. An error from fn aborts
	// the update and is returned. fn may be called more than once (a
	// vault may retry a transaction), so it must start afresh each time.
	// Update returns the stamp of the manifest it leaves behind.
	Update(fn func(manifest []byte, readKey func(kid string) ([]byte, error)) (next []byte, put map[string][]byte, remove []string, err error)) (stamp string, err error)
	// ReadSecret returns the secret called name.
	ReadSecret(name string) ([]byte, error)
	// CreateSecret stores value as the secret called name unless one
	// exists already, and returns the stored one: when processes race,
	// all of them get the winner's value.
	CreateSecret(name string, value []byte) ([]byte, error)
	// SecretNames lists the names of every stored secret.
	SecretNames() ([]string, error)
}

// OpenVault is Open on any vault: it loads the keys in v and generates
// an active key for each configured algorithm that lacks one. Two
// processes opening an empty vault together end up with one key per
// algorithm.
func OpenVault(v Vault, opts Options) (*Manager, error) {
	if v == nil {
		return nil, fmt.Errorf("keys: no vault")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if d, ok := v.(*dirVault); ok {
		if err := d.prepare(); err != nil {
			return nil, err
		}
		if d.log == nil {
			d = &dirVault{dir: d.dir, log: opts.Logger}
			v = d
		}
	}
	m := &Manager{
		vault:   v,
		opts:    opts,
		st:      newState(nil, nil),
		secrets: make(map[string][]byte),
	}
	// The first load goes through update so it happens under the
	// vault's write lock and never sees a rotation half done.
	if _, err := m.update(plan{}); err != nil {
		return nil, err
	}
	var missing []string
	for _, alg := range opts.Algorithms {
		if m.snapshot().active(alg, opts.Now()) == nil {
			missing = append(missing, alg)
		}
	}
	if len(missing) > 0 {
		fresh, err := generateAll(missing)
		if err != nil {
			return nil, err
		}
		if _, err := m.update(plan{fresh: fresh}); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Where things live, for error messages: a path in a directory vault, a
// description elsewhere.

func whereManifest(v Vault) string {
	if d, ok := v.(*dirVault); ok {
		return filepath.Join(d.dir, manifestName)
	}
	return "keyring manifest"
}

func whereKey(v Vault, kid string) string {
	if d, ok := v.(*dirVault); ok {
		return filepath.Join(d.dir, keyFileName(kid))
	}
	return "key " + kid
}

func whereSecret(v Vault, name string) string {
	if d, ok := v.(*dirVault); ok {
		return filepath.Join(d.dir, secretFileName(name))
	}
	return "secret " + name
}
