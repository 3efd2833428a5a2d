package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
)

// Sealer encrypts the client secrets the provider must be able to read
// back: a client_secret_jwt client signs its assertions with an HMAC keyed
// by its secret, and an HMAC can only be checked with the key itself, not
// with a hash of it. The key is derived from the provider secret (the
// "provider" secret of the key directory), so a copy of the database alone
// does not reveal these secrets.
//
// NewPurposeSealer makes one for another kind of secret (second factors):
// each purpose has its own key, and the associated data each value is
// sealed with binds it to its owner.
type Sealer struct {
	load    func() ([]byte, error)
	purpose string // in error messages
	label   string // what the key is derived with
	once    sync.Once
	aead    cipher.AEAD
	err     error
}

// sealVersion leads every sealed value, so the format or key derivation can
// change later without guessing what old records hold.
const sealVersion = 1

// NewSealer seals with a key derived from the provider secret.
func NewSealer(providerSecret []byte) *Sealer {
	return NewSealerFunc(func() ([]byte, error) { return providerSecret, nil })
}

// NewSealerFunc loads the provider secret on first use only, so admin
// commands that never seal do not have to open the key directory.
func NewSealerFunc(load func() ([]byte, error)) *Sealer {
	return &Sealer{load: load, purpose: "client secrets", label: "client-secret-seal"}
}

// NewPurposeSealer seals values of another purpose (its name is in error
// messages too) with a key of their own derived from the provider secret,
// loaded on first use.
func NewPurposeSealer(purpose string, load func() ([]byte, error)) *Sealer {
	return &Sealer{load: load, purpose: purpose, label: "seal\x00" + purpose}
}

func (s *Sealer) cipher() (cipher.AEAD, error) {
	if s == nil {
		return nil, errors.New("no provider secret to seal with")
	}
	s.once.Do(func() {
		secret, err := s.load()
		if err != nil {
			s.err = fmt.Errorf("seal %s: %w", s.purpose, err)
			return
		}
		if len(secret) < 32 {
			s.err = fmt.Errorf("seal %s: the provider secret must be at least 32 bytes", s.purpose)
			return
		}
		block, err := aes.NewCipher(DeriveKey(secret, s.label))
		if err != nil {
			s.err = err
			return
		}
		s.aead, s.err = cipher.NewGCM(block)
	})
	return s.aead, s.err
}

// sealAD binds a sealed secret to its client: copied into another client's
// record, it does not open.
func sealAD(clientID string) []byte { return []byte("client-secret\x00" + clientID) }

// Seal encrypts the secret of clientID (AES-256-GCM, random nonce).
func (s *Sealer) Seal(clientID, secret string) ([]byte, error) {
	return s.SealBytes(sealAD(clientID), []byte(secret))
}

// Open decrypts what Seal produced for the same client.
func (s *Sealer) Open(clientID string, sealed []byte) (string, error) {
	plain, err := s.OpenBytes(sealAD(clientID), sealed)
	return string(plain), err
}

// SealBytes encrypts plain bound to ad (AES-256-GCM, random nonce): it
// opens only with the same ad.
func (s *Sealer) SealBytes(ad, plain []byte) ([]byte, error) {
	aead, err := s.cipher()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plain)+aead.Overhead())
	out[0] = sealVersion
	rand.Read(out[1:])
	return aead.Seal(out, out[1:], plain, ad), nil
}

// OpenBytes decrypts what SealBytes produced with the same ad.
func (s *Sealer) OpenBytes(ad, sealed []byte) ([]byte, error) {
	aead, err := s.cipher()
	if err != nil {
		return nil, err
	}
	if len(sealed) < 1+aead.NonceSize()+aead.Overhead() || sealed[0] != sealVersion {
		return nil, fmt.Errorf("sealed %s: malformed", s.purpose)
	}
	nonce, box := sealed[1:1+aead.NonceSize()], sealed[1+aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, box, ad)
	if err != nil {
		return nil, fmt.Errorf("sealed %s: does not open with this provider secret", s.purpose)
	}
	return plain, nil
}
