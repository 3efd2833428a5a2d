// Package keys owns the provider's signing keys: generation, rotation,
// retirement, the public JWKS, and the persistent symmetric secrets that
// must survive a restart. It keeps them in a Vault (vault.go): a key
// directory (DirVault, what Open uses), or a database shared by replicas
// (storage/postgres's Keyring, encrypted). It must not import a storage
// backend: vaults satisfy its interface with basic types.
//
// A key directory holds:
//
//	keys.json      manifest: kid, alg, created, activates_at, retired_at, verify_until
//	<kid>.json     one private JWK per key, mode 0600
//	<name>.secret  32 random bytes, mode 0600
//	keys.lock      taken by writers so a CLI and a running server can share the directory
//
// Signers are handed out as raw crypto.Signer values, not go-jose keys,
// because fosite speaks go-jose v3 while this package uses v4.
package keys

import (
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// ErrNoActiveKey is returned by Active when no key signs with the algorithm.
var ErrNoActiveKey = errors.New("keys: no active key")

// Key is a key that may sign. Signer is the raw *rsa.PrivateKey,
// *ecdsa.PrivateKey or ed25519.PrivateKey, so callers on go-jose v3 can wrap
// it themselves; ID goes into the JWT "kid" header.
type Key struct {
	ID      string
	Alg     string
	Signer  crypto.Signer
	Created time.Time
}

// State says whether a key signs new tokens or only verifies old ones.
type State string

const (
	StateActive  State = "active"
	StateRetired State = "retired"
	// StateNext is a key published ahead of its use by scheduled rotation.
	StateNext State = "next"
)

// KeyInfo describes a key without its private material, for `keys list`.
type KeyInfo struct {
	ID          string    `json:"kid"`
	Alg         string    `json:"alg"`
	State       State     `json:"state"`
	Created     time.Time `json:"created"`
	ActivatesAt time.Time `json:"activates_at,omitzero"`
	RetiredAt   time.Time `json:"retired_at,omitzero"`
	VerifyUntil time.Time `json:"verify_until,omitzero"`
}

// Options configures a Manager. The zero value is usable.
type Options struct {
	// Algorithms that must each have an active key: RS256, PS256, ES256,
	// EdDSA. Default RS256, the OIDC baseline every relying party accepts.
	Algorithms []string
	// VerifyFor is how long a retired key stays in the JWKS. Pass the
	// longest token lifetime, so tokens signed just before a rotation still
	// verify. Default 24h.
	VerifyFor time.Duration
	// ReloadInterval bounds how often reads check the vault's stamp (stat
	// the manifest file; one tiny query in a database) to notice changes
	// made by another process. Zero means one second; negative
	// means on every call (for tests).
	ReloadInterval time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives key lifecycle events and reload failures. Default:
	// discard.
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if len(o.Algorithms) == 0 {
		o.Algorithms = []string{"RS256"}
	}
	o.Algorithms = slices.Clone(o.Algorithms)
	for i, alg := range o.Algorithms {
		if !supported(alg) {
			return o, fmt.Errorf("keys: unsupported algorithm %q", alg)
		}
		if slices.Contains(o.Algorithms[:i], alg) {
			return o, fmt.Errorf("keys: algorithm %q listed twice", alg)
		}
	}
	switch {
	case o.VerifyFor < 0:
		return o, fmt.Errorf("keys: negative verify period %s", o.VerifyFor)
	case o.VerifyFor == 0:
		o.VerifyFor = 24 * time.Hour
	}
	if o.ReloadInterval == 0 {
		o.ReloadInterval = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}
