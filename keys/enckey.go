package keys

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// EncryptionKeySize is the length of keys.encryption_key: an AES-256 key.
const EncryptionKeySize = 32

// ParseEncryptionKey decodes keys.encryption_key: base64, standard or
// URL alphabet, padded or not, of exactly 32 bytes. Surrounding white
// space (a trailing newline from a file or a secret store) is ignored.
// Errors say what is wrong without repeating the value.
func ParseEncryptionKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("keys: the encryption key is empty (generate one with: openssl rand -base64 32)")
	}
	var (
		key []byte
		err error
	)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("keys: the encryption key is not base64 (%d characters; generate one with: openssl rand -base64 32)", len(s))
	}
	if len(key) != EncryptionKeySize {
		return nil, &EncryptionKeySizeError{Got: len(key)}
	}
	return key, nil
}

// EncryptionKeySizeError is ParseEncryptionKey's error for base64 of the
// wrong length; any other error means the value is empty or not base64.
type EncryptionKeySizeError struct{ Got int }

func (e *EncryptionKeySizeError) Error() string {
	return fmt.Sprintf("keys: the encryption key decodes to %d bytes, want %d (generate one with: openssl rand -base64 32)", e.Got, EncryptionKeySize)
}

// GenerateEncryptionKey returns a fresh keys.encryption_key: 32 random
// bytes in padded standard base64, what `openssl rand -base64 32` prints.
func GenerateEncryptionKey() string {
	b := make([]byte, EncryptionKeySize)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}
