package provider

// The go-jose v3 boundary. fosite v0.49 is written against go-jose v3: the
// interfaces it calls us through name v3 types (a client's
// GetJSONWebKeys, the JWKS fetcher's Resolve, the RFC 7523 key storage's
// GetPublicKey and GetPublicKeys), and its jwt signer signs and verifies
// only with v3 keys. The rest of the provider works in go-jose v4; this
// file is the only one that imports v3. It holds the methods whose
// signatures fosite dictates in v3 types and the conversions from our v4
// values. A JWK's JSON is the same in both versions, so sets cross over
// as JSON.

import (
	"context"
	"encoding/json"
	"errors"

	josev3 "github.com/go-jose/go-jose/v3"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"

	"github.com/smallsso/provider/keys"
)

// jwksToV3 is set in fosite's go-jose version.
func jwksToV3(set jose.JSONWebKeySet) (*josev3.JSONWebKeySet, error) {
	raw, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	var out josev3.JSONWebKeySet
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// signingKeyV3 is k as the private key fosite's jwt.DefaultSigner signs
// with: fosite signs with go-jose v3, and the algorithm travels in the v3
// key.
func signingKeyV3(k keys.Key) any {
	return &josev3.JSONWebKey{Key: k.Signer, KeyID: k.ID, Algorithm: k.Alg, Use: "sig"}
}

// verificationKeyV3 is the public key k as fosite's jwt parser verifies
// with. A v3 JWK pointer: fosite's parser would turn a bare ed25519 key
// into a pointer that go-jose v3 does not verify with.
func verificationKeyV3(k jose.JSONWebKey, kid, alg string) any {
	return &josev3.JSONWebKey{Key: k.Key, KeyID: kid, Algorithm: alg}
}

// GetJSONWebKeys is the client's registered key set in fosite's go-jose
// version, for fosite code that looks at it; nil when there is none or it
// does not parse. Client assertions are verified in clientauth.go.
func (c *client) GetJSONWebKeys() *josev3.JSONWebKeySet {
	if c.rec.JWKS == "" {
		return nil
	}
	var set josev3.JSONWebKeySet
	if err := json.Unmarshal([]byte(c.rec.JWKS), &set); err != nil {
		return nil
	}
	return &set
}

// Resolve implements fosite's JWKSFetcherStrategy over the shared,
// guarded key-set cache.
func (f *guardedJWKSFetcher) Resolve(ctx context.Context, location string, _ bool) (*josev3.JSONWebKeySet, error) {
	set, err := f.keys.Keys(ctx, location, "", f.keys.out.fositePolicy(ctx, location))
	if err != nil {
		return nil, errors.New("the client's public keys could not be loaded")
	}
	return jwksToV3(set)
}

// GetPublicKey implements rfc7523.RFC7523KeyStorage.
func (s *fositeStore) GetPublicKey(ctx context.Context, issuer, subject, kid string) (*josev3.JSONWebKey, error) {
	ti, err := s.trustFor(ctx, issuer, subject)
	if err != nil {
		return nil, fositeErr(err)
	}
	found, err := s.trustKeys(ctx, ti, kid)
	if err != nil {
		return nil, err
	}
	set, err := jwksToV3(found)
	if err != nil {
		return nil, err
	}
	if len(set.Keys) == 0 {
		return nil, fosite.ErrNotFound.WithHintf("No usable key %q for this issuer.", kid)
	}
	return &set.Keys[0], nil
}

// GetPublicKeys implements rfc7523.RFC7523KeyStorage.
func (s *fositeStore) GetPublicKeys(ctx context.Context, issuer, subject string) (*josev3.JSONWebKeySet, error) {
	ti, err := s.trustFor(ctx, issuer, subject)
	if err != nil {
		return nil, fositeErr(err)
	}
	found, err := s.trustKeys(ctx, ti, "")
	if err != nil {
		return nil, err
	}
	return jwksToV3(found)
}
