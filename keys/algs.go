package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
)

// rsaBits is the RFC 7518 minimum for RS256/PS256; larger keys only slow
// down every signature without a practical gain for short-lived tokens.
const rsaBits = 2048

func supported(alg string) bool {
	switch alg {
	case "RS256", "PS256", "ES256", "EdDSA":
		return true
	}
	return false
}

// generate makes a fresh private key for alg. RS256 and PS256 each get
// their own RSA key because a JWK names exactly one "alg".
func generate(alg string) (crypto.Signer, error) {
	var (
		signer crypto.Signer
		err    error
	)
	switch alg {
	case "RS256", "PS256":
		signer, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case "ES256":
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("keys: unsupported algorithm %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: generate %s key: %w", alg, err)
	}
	return signer, nil
}

// checkKeyType rejects a key file whose material cannot sign with alg, so a
// hand-edited file fails at load rather than at the first token.
func checkKeyType(alg string, key any) error {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if alg != "RS256" && alg != "PS256" {
			break
		}
		if k.N.BitLen() < rsaBits {
			return fmt.Errorf("rsa key has %d bits, want at least %d", k.N.BitLen(), rsaBits)
		}
		return nil
	case *ecdsa.PrivateKey:
		if alg == "ES256" && k.Curve == elliptic.P256() {
			return nil
		}
	case ed25519.PrivateKey:
		if alg == "EdDSA" {
			return nil
		}
	}
	return fmt.Errorf("%T is not a private key for %s", key, alg)
}

// newKID returns 16 URL-safe characters from 96 random bits. Random rather
// than an RFC 7638 thumbprint so a kid says nothing about the key and is
// always a safe file name.
func newKID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// validName accepts the URL-safe names used for kids and secret files; it
// is what keeps a hand-edited manifest from pointing outside the directory.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
		if !ok {
			return false
		}
	}
	return true
}
