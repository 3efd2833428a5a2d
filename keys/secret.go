package keys

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
)

const secretSize = 32

// Secret returns the 32-byte random secret called name, creating it on
// first use. It lives in the vault (<dir>/<name>.secret in a directory)
// so that HMACs over opaque tokens and signed interaction state stay
// valid across restarts. When processes race to create it, all of them
// end up with the winner's value. The value is cached: a secret never
// changes once created.
func (m *Manager) Secret(name string) ([]byte, error) {
	if !validName(name) {
		return nil, fmt.Errorf("keys: invalid secret name %q", name)
	}
	m.secretMu.Lock()
	defer m.secretMu.Unlock()
	s, ok := m.secrets[name]
	if !ok {
		var err error
		if s, err = loadOrCreateSecret(m.vault, name); err != nil {
			return nil, err
		}
		m.secrets[name] = s
	}
	// A copy, so no caller can change the value another caller sees.
	return bytes.Clone(s), nil
}

func loadOrCreateSecret(v Vault, name string) ([]byte, error) {
	s, err := v.ReadSecret(name)
	if errors.Is(err, fs.ErrNotExist) {
		fresh := make([]byte, secretSize)
		rand.Read(fresh)
		s, err = v.CreateSecret(name, fresh)
	}
	if err != nil {
		return nil, err
	}
	if err := checkSecret(v, name, s); err != nil {
		return nil, err
	}
	return s, nil
}

func checkSecret(v Vault, name string, s []byte) error {
	if len(s) != secretSize {
		return fmt.Errorf("keys: %s: %d bytes, want %d", whereSecret(v, name), len(s), secretSize)
	}
	return nil
}
