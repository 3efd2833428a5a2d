package keys

import (
	"errors"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Manager serves the keys of one vault (a directory, or a database shared
// by replicas). All methods are safe for concurrent use. Reads work on an
// immutable snapshot and take the RWMutex only to copy a pointer; they
// check the vault's stamp at most once per ReloadInterval to pick up
// rotations made by another process.
type Manager struct {
	vault Vault
	opts  Options

	// diskMu serialises writes and reloads within this process; the
	// vault's write lock does the same across processes for writes.
	diskMu sync.Mutex

	mu      sync.RWMutex
	st      *state
	stamp   string    // the manifest st came from; "" if none
	checked time.Time // when the stamp was last checked

	secretMu sync.Mutex
	secrets  map[string][]byte
}

// Open loads the keys in dir, creating the directory (0700) if needed and
// generating an active key for each configured algorithm that lacks one.
// It is OpenVault(DirVault(dir), opts).
func Open(dir string, opts Options) (*Manager, error) {
	if dir == "" {
		return nil, errors.New("keys: empty directory")
	}
	return OpenVault(DirVault(dir), opts)
}

// Active returns the key that signs new tokens with alg.
func (m *Manager) Active(alg string) (Key, error) {
	now := m.opts.Now()
	k := m.current(now).active(alg, now)
	if k == nil {
		return Key{}, fmt.Errorf("%w for %s", ErrNoActiveKey, alg)
	}
	return k.key(), nil
}

// JWKS returns the public halves of every active key, of the next keys of
// scheduled rotation and of every retired key still inside its verify
// period, newest first.
func (m *Manager) JWKS() jose.JSONWebKeySet {
	now := m.opts.Now()
	st := m.current(now)
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(st.keys))}
	for _, k := range st.keys {
		if k.published(now) {
			set.Keys = append(set.Keys, k.public)
		}
	}
	return set
}

// PublicKey returns the public half of kid if it is in the JWKS.
func (m *Manager) PublicKey(kid string) (jose.JSONWebKey, bool) {
	now := m.opts.Now()
	k := m.current(now).byKID[kid]
	if k == nil || !k.published(now) {
		return jose.JSONWebKey{}, false
	}
	return k.public, true
}

// List describes every key in the manifest, newest first, including
// retired keys past verify_until that the next Rotate will delete.
func (m *Manager) List() []KeyInfo {
	now := m.opts.Now()
	st := m.current(now)
	out := make([]KeyInfo, 0, len(st.keys))
	for _, k := range st.keys {
		out = append(out, k.info(st.stateOf(k, now)))
	}
	return out
}

func (m *Manager) snapshot() *state {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.st
}

// current returns the snapshot to serve, reloading it first if the check
// is due and the manifest changed.
func (m *Manager) current(now time.Time) *state {
	m.mu.RLock()
	st, checked := m.st, m.checked
	m.mu.RUnlock()
	if m.opts.ReloadInterval > 0 && now.Sub(checked) < m.opts.ReloadInterval {
		return st
	}
	// One goroutine pays for the stat; the others keep serving what they
	// have rather than queue behind disk I/O. If a write holds the lock,
	// it publishes a fresh snapshot itself.
	if !m.diskMu.TryLock() {
		return st
	}
	defer m.diskMu.Unlock()
	return m.refresh(now)
}

// refresh reloads the manifest if it differs from the one last loaded.
// On failure it keeps serving the last good keys, which are still valid,
// and remembers the bad version so the error is logged once per change
// rather than once per interval. The caller holds diskMu.
func (m *Manager) refresh(now time.Time) *state {
	m.mu.RLock()
	st, last := m.st, m.stamp
	m.mu.RUnlock()
	stamp, err := m.vault.Stamp()
	if err != nil {
		stamp = ""
	}
	if stamp == last {
		m.publish(st, last, now)
		return st
	}
	if err != nil {
		m.opts.Logger.Error("keys: manifest unreadable, serving previously loaded keys", "path", whereManifest(m.vault), "err", err)
		m.publish(st, "", now)
		return st
	}
	next, stamp, err := load(m.vault, st)
	if err != nil {
		m.opts.Logger.Error("keys: reload failed, serving previously loaded keys", "err", err)
		m.publish(st, stamp, now)
		return st
	}
	m.publish(next, stamp, now)
	return next
}

func (m *Manager) publish(st *state, stamp string, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st, m.stamp, m.checked = st, stamp, now
}
