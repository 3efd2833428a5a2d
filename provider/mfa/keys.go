package mfa

import (
	"sync"

	"github.com/smallsso/provider/provider/secret"
)

// Keys seals factor secrets (TOTP keys, passkey credentials) and keys the
// recovery-code hashes, all with keys derived from the provider secret, so
// a copy of the database alone reveals none of them.
type Keys struct {
	load   func() ([]byte, error)
	sealer *secret.Sealer
	once   sync.Once
	mac    []byte
	err    error
}

// NewKeys loads the provider secret on first use (admin commands that
// never touch a factor need not open the key directory).
func NewKeys(load func() ([]byte, error)) *Keys {
	return &Keys{load: load, sealer: secret.NewPurposeSealer("second factors", load)}
}

func (k *Keys) macKey() ([]byte, error) {
	k.once.Do(func() {
		s, err := k.load()
		if err != nil {
			k.err = err
			return
		}
		k.mac = secret.DeriveKey(s, "mfa-recovery-code")
	})
	return k.mac, k.err
}

// The associated data binds each sealed value to its kind and owner:
// copied into another user's record, or from a passkey into the TOTP
// field, it does not open.
func totpAD(userID string) []byte    { return []byte("totp\x00" + userID) }
func passkeyAD(userID string) []byte { return []byte("passkey\x00" + userID) }

// SealTOTP seals the base32 TOTP secret of userID.
func (k *Keys) SealTOTP(userID, secret string) ([]byte, error) {
	return k.sealer.SealBytes(totpAD(userID), []byte(secret))
}

// OpenTOTP opens what SealTOTP sealed for the same user.
func (k *Keys) OpenTOTP(userID string, sealed []byte) (string, error) {
	b, err := k.sealer.OpenBytes(totpAD(userID), sealed)
	return string(b), err
}

// SealPasskey seals a passkey's credential (the WebAuthn library's JSON).
func (k *Keys) SealPasskey(userID string, credential []byte) ([]byte, error) {
	return k.sealer.SealBytes(passkeyAD(userID), credential)
}

// OpenPasskey opens what SealPasskey sealed for the same user.
func (k *Keys) OpenPasskey(userID string, sealed []byte) ([]byte, error) {
	return k.sealer.OpenBytes(passkeyAD(userID), sealed)
}
