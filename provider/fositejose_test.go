package provider

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// jwksToV3 hands fosite the same keys, in order, with their kid, alg and
// use: RSA, EC and Ed25519 public keys alike.
func TestJWKSToV3(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	in := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &rsaKey.PublicKey, KeyID: "r", Algorithm: "PS256", Use: "sig"},
		{Key: &ecKey.PublicKey, KeyID: "e", Algorithm: "ES256"},
		{Key: edPub, KeyID: "d", Algorithm: "EdDSA", Use: "sig"},
	}}
	out, err := jwksToV3(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Keys) != len(in.Keys) {
		t.Fatalf("%d keys, want %d", len(out.Keys), len(in.Keys))
	}
	for i, want := range in.Keys {
		got := out.Keys[i]
		if got.KeyID != want.KeyID || got.Algorithm != want.Algorithm || got.Use != want.Use {
			t.Errorf("key %d: kid %q alg %q use %q, want %q %q %q", i, got.KeyID, got.Algorithm, got.Use, want.KeyID, want.Algorithm, want.Use)
		}
		pub, ok := got.Key.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !pub.Equal(want.Key) {
			t.Errorf("key %d: %T is not the key %T", i, got.Key, want.Key)
		}
	}

	empty, err := jwksToV3(jose.JSONWebKeySet{})
	if err != nil || empty == nil || len(empty.Keys) != 0 {
		t.Errorf("empty set: %v, %v", empty, err)
	}
}
