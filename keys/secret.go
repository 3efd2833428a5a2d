package keys

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
)

const secretSize = 32

// Secret returns the 32-byte random secret called name, creating it on
// first use. It lives in <dir>/<name>.secret so that HMACs over opaque
// tokens and signed interaction state stay valid across restarts. When
// processes race to create it, all of them end up with the winner's value.
// The value is cached: a secret never changes once created.
func (m *Manager) Secret(name string) ([]byte, error) {
	if !validName(name) {
		return nil, fmt.Errorf("keys: invalid secret name %q", name)
	}
	m.secretMu.Lock()
	defer m.secretMu.Unlock()
	s, ok := m.secrets[name]
	if !ok {
		var err error
		if s, err = loadOrCreateSecret(m.dir, name+".secret"); err != nil {
			return nil, err
		}
		m.secrets[name] = s
	}
	// A copy, so no caller can change the value another caller sees.
	return bytes.Clone(s), nil
}

func loadOrCreateSecret(dir, file string) ([]byte, error) {
	path := filepath.Join(dir, file)
	s, err := readSecret(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	fresh := make([]byte, secretSize)
	rand.Read(fresh)
	err = createExclusive(dir, file, fresh)
	if errors.Is(err, fs.ErrExist) {
		// Another process won the race; its value is the one to use.
		return readSecret(path)
	}
	if err != nil {
		return nil, err
	}
	return fresh, nil
}

func readSecret(path string) ([]byte, error) {
	data, _, err := readPrivateFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) != secretSize {
		return nil, fmt.Errorf("keys: %s: %d bytes, want %d", path, len(data), secretSize)
	}
	return data, nil
}
