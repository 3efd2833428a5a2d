package provider

// Trusted issuers for the RFC 7523 JWT bearer grant: how an operator
// declares one (clientspec.TrustSpec), the admin operations on them, and the key
// storage fosite's rfc7523 handler reads them through.

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/rfc7523"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/storage"
)

var _ rfc7523.RFC7523KeyStorage = (*fositeStore)(nil)

// Trusted issuers sign with clientspec.KeyAssertionAlgs (clientauth.go): asymmetric
// only, since a shared secret would let whoever else holds it mint the
// issuer's assertions; "none" never.

// boolFirst orders true before false.
func boolFirst(x, y bool) int {
	switch {
	case x == y:
		return 0
	case x:
		return -1
	default:
		return 1
	}
}

// assertionCtx is what the jwt-bearer grant learned from the assertion
// before fosite verifies it; the key storage below reads it so that keys,
// scopes and the JTI namespace all come from the one entry the grant chose.
type assertionCtx struct {
	trust storage.TrustedIssuer
	alg   string // the JWS header's alg
}

type assertionCtxKey struct{}

func withAssertion(ctx context.Context, a assertionCtx) context.Context {
	return context.WithValue(ctx, assertionCtxKey{}, a)
}

// trustFor finds the entry that trusts issuer for subject: one bound to
// exactly that subject before one for any subject, then one from the
// config (the config wins, as for clients), then the lowest ID so the
// choice is stable.
func (s *fositeStore) trustFor(ctx context.Context, issuer, subject string) (storage.TrustedIssuer, error) {
	if a, ok := ctx.Value(assertionCtxKey{}).(assertionCtx); ok && a.trust.Issuer == issuer &&
		(a.trust.AnySubject || a.trust.Subject == subject) {
		return a.trust, nil
	}
	all, err := s.store.ListTrustedIssuers(ctx)
	if err != nil {
		return storage.TrustedIssuer{}, err
	}
	var found []storage.TrustedIssuer
	for _, ti := range all {
		if ti.Issuer == issuer && (ti.AnySubject || ti.Subject == subject) {
			found = append(found, ti)
		}
	}
	if len(found) == 0 {
		return storage.TrustedIssuer{}, fmt.Errorf("%s: %w", clientspec.DescribeTrust(issuer, subject, false), storage.ErrNotFound)
	}
	slices.SortFunc(found, func(x, y storage.TrustedIssuer) int {
		return cmp.Or(boolFirst(!x.AnySubject, !y.AnySubject), boolFirst(x.Source == "config", y.Source == "config"), cmp.Compare(x.ID, y.ID))
	})
	return found[0], nil
}

// trustKeys returns the entry's keys that can verify an assertion signed
// with alg (any alg when empty) and, when kid is not empty, have that ID.
// A jwks_uri is fetched through the shared cache, refetching once for an
// unknown kid.
func (s *fositeStore) trustKeys(ctx context.Context, ti storage.TrustedIssuer, kid string) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	var err error
	if ti.JWKS != "" {
		set, err = clientspec.ParseJWKS([]byte(ti.JWKS))
	} else {
		set, err = s.remoteKeys.Keys(ctx, ti.JWKSURI, kid, operatorPolicy)
	}
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	alg := ""
	if a, ok := ctx.Value(assertionCtxKey{}).(assertionCtx); ok {
		alg = a.alg
	}
	var out jose.JSONWebKeySet
	for _, k := range set.Keys {
		if (kid != "" && k.KeyID != kid) || clientspec.AssertionKey(k) != nil || (alg != "" && k.Algorithm != "" && k.Algorithm != alg) {
			continue
		}
		out.Keys = append(out.Keys, k)
	}
	return out, nil
}

// GetPublicKey and GetPublicKeys (rfc7523.RFC7523KeyStorage) are in
// fositejose.go: fosite types them with go-jose v3.

// GetPublicKeyScopes implements rfc7523.RFC7523KeyStorage: the scopes are
// the issuer's, whichever of its keys signed.
func (s *fositeStore) GetPublicKeyScopes(ctx context.Context, issuer, subject, _ string) ([]string, error) {
	ti, err := s.trustFor(ctx, issuer, subject)
	if err != nil {
		return nil, fositeErr(err)
	}
	return ti.Scopes, nil
}

// bearerJTI is the JTI record's ID for an assertion: namespaced by grant
// and issuer, so an issuer's jti never collides with another issuer's or
// with a client assertion's. Hashing keeps the key short and unambiguous
// whatever characters issuer and jti hold.
func bearerJTI(ctx context.Context, jti string) (string, error) {
	a, ok := ctx.Value(assertionCtxKey{}).(assertionCtx)
	if !ok {
		return "", errors.New("jwt-bearer: assertion issuer missing from context")
	}
	b, _ := json.Marshal([2]string{a.trust.Issuer, jti})
	sum := sha256.Sum256(b)
	return "jwt-bearer:" + hex.EncodeToString(sum[:]), nil
}

// IsJWTUsed implements rfc7523.RFC7523KeyStorage: an assertion's jti is
// used while the assertion that carried it has not expired.
func (s *fositeStore) IsJWTUsed(ctx context.Context, jti string) (bool, error) {
	id, err := bearerJTI(ctx, jti)
	if err != nil {
		return false, err
	}
	j, err := s.store.GetJTI(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return j.ExpiresAt.After(s.now()), nil
}

// MarkJWTUsedForTime implements rfc7523.RFC7523KeyStorage. Of two
// concurrent requests with one assertion, exactly one records it; the
// other gets ErrJTIKnown.
func (s *fositeStore) MarkJWTUsedForTime(ctx context.Context, jti string, exp time.Time) error {
	id, err := bearerJTI(ctx, jti)
	if err != nil {
		return err
	}
	err = s.store.CreateJTI(ctx, storage.JTI{ID: id, ExpiresAt: exp}, s.now())
	if errors.Is(err, storage.ErrAlreadyExists) {
		return fosite.ErrJTIKnown
	}
	return err
}
