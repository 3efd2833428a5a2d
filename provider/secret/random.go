package secret

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// NewToken returns 256 random bits, URL-safe: cookies, registration
// access tokens, session IDs, generated client secrets.
func NewToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails since Go 1.24: it crashes the program instead
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewPassword returns a random password for a person to copy once
// (crypto/rand.Text: 26 base32 characters, 130 bits).
func NewPassword() string { return rand.Text() }

// DeriveKey gives each use of the provider secret its own key, so an HMAC
// made for one purpose is never valid for another.
func DeriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}
