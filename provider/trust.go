package provider

// Trusted issuers for the RFC 7523 JWT bearer grant: how an operator
// declares one (TrustSpec), the admin operations on them, and the key
// storage fosite's rfc7523 handler reads them through.

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/rfc7523"

	"github.com/smallsso/provider/storage"
)

var _ rfc7523.RFC7523KeyStorage = (*fositeStore)(nil)

const (
	// defaultTrustLifetime bounds exp - iat when an issuer sets no
	// max_lifetime: long enough for clock skew and a slow hop, short
	// enough that a leaked assertion is soon worthless.
	defaultTrustLifetime = time.Hour
	// maxTrustLifetime is the most an operator may allow, and fosite's
	// global cap. The JTI of every accepted assertion is kept this long
	// at worst.
	maxTrustLifetime = 24 * time.Hour
)

// Trusted issuers sign with keyAssertionAlgs (clientauth.go): asymmetric
// only, since a shared secret would let whoever else holds it mint the
// issuer's assertions; "none" never.

// TrustSpec is a trusted issuer as an operator declares it (config or
// CLI): whose assertions, for which subjects, verified with which keys,
// granting which scopes.
type TrustSpec struct {
	Issuer     string `json:"issuer" yaml:"issuer"`
	Subject    string `json:"subject,omitempty" yaml:"subject"`
	AnySubject bool   `json:"any_subject,omitempty" yaml:"any_subject"`
	// JWKS is the issuer's public key set inline; JWKSFile a file holding
	// it (read by the config loader, see ReadJWKSFile); JWKSURI where the
	// issuer publishes it. Exactly one is given.
	JWKS     JWKSDoc  `json:"jwks,omitempty" yaml:"jwks"`
	JWKSFile string   `json:"jwks_file,omitempty" yaml:"jwks_file"`
	JWKSURI  string   `json:"jwks_uri,omitempty" yaml:"jwks_uri"`
	Scopes   []string `json:"scopes,omitempty" yaml:"scopes"`
	// MaxLifetime is a Go duration ("1h"); default 1h, at most 24h.
	MaxLifetime string `json:"max_lifetime,omitempty" yaml:"max_lifetime"`
}

// FieldError is an operator mistake in one field of a spec, named by its
// config key. It is also an *InvalidError, worded with the field.
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }
func (e *FieldError) Unwrap() error { return &InvalidError{Msg: e.Error()} }

func badField(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// ReadJWKSFile replaces jwks_file with the key set it names, read now;
// a relative path is relative to dir (the config file's directory).
func (t TrustSpec) ReadJWKSFile(dir string) (TrustSpec, error) {
	if t.JWKSFile == "" {
		return t, nil
	}
	if t.JWKS != "" || t.JWKSURI != "" {
		return t, badField("jwks", "give exactly one of jwks, jwks_file, jwks_uri")
	}
	path := t.JWKSFile
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return t, badField("jwks_file", "%v", err)
	}
	t.JWKS, t.JWKSFile = JWKSDoc(raw), ""
	return t, nil
}

// Validate checks the spec and fills defaults.
func (t TrustSpec) Validate() (TrustSpec, error) {
	if t.Issuer == "" {
		return t, badField("issuer", "is required")
	}
	if u, err := url.Parse(t.Issuer); err != nil || !u.IsAbs() {
		return t, badField("issuer", "%q must be an absolute URI (the assertions' iss)", t.Issuer)
	}
	switch {
	case t.AnySubject && t.Subject != "":
		return t, badField("subject", "give subject or any_subject, not both")
	case !t.AnySubject && t.Subject == "":
		return t, badField("subject", "is required (or any_subject, to accept every subject)")
	}
	sources := 0
	for _, s := range []string{string(t.JWKS), t.JWKSFile, t.JWKSURI} {
		if strings.TrimSpace(s) != "" {
			sources++
		}
	}
	if sources != 1 {
		return t, badField("jwks", "give exactly one of jwks, jwks_file, jwks_uri")
	}
	if t.JWKSFile != "" {
		// Only the config loader knows the directory a relative path is
		// relative to; everyone else passes the key set itself.
		return t, badField("jwks_file", "%q was not read; give the key set as jwks", t.JWKSFile)
	}
	if t.JWKS != "" {
		t.JWKS = JWKSDoc(strings.TrimSpace(string(t.JWKS)))
		set, err := parseJWKS([]byte(t.JWKS))
		if err != nil {
			return t, badField("jwks", "%v", err)
		}
		for _, k := range set.Keys {
			if err := assertionKey(k); err != nil {
				return t, badField("jwks", "key %q: %v", k.KeyID, err)
			}
		}
	}
	if t.JWKSURI != "" {
		if validWebURL(t.JWKSURI) != nil {
			return t, badField("jwks_uri", "%q must be an https URL (http only on loopback)", t.JWKSURI)
		}
	}
	for _, s := range t.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return t, badField("scopes", "%q is not a valid scope token", s)
		}
	}
	life := defaultTrustLifetime
	if t.MaxLifetime != "" {
		d, err := time.ParseDuration(t.MaxLifetime)
		if err != nil {
			return t, badField("max_lifetime", "%q is not a duration like 5m or 1h", t.MaxLifetime)
		}
		if d <= 0 || d > maxTrustLifetime {
			return t, badField("max_lifetime", "%s must be more than 0 and at most %s", d, maxTrustLifetime)
		}
		life = d
	}
	t.MaxLifetime = life.String()
	return t, nil
}

// assertionKey accepts a public key that can verify one of keyAssertionAlgs.
func assertionKey(k jose.JSONWebKey) error {
	if k.Use != "" && k.Use != "sig" {
		return fmt.Errorf("use %q is not sig", k.Use)
	}
	if k.Algorithm != "" && !slices.Contains(keyAssertionAlgs, jose.SignatureAlgorithm(k.Algorithm)) {
		return fmt.Errorf("alg %q is not allowed (allowed: %s)", k.Algorithm, strings.Join(algNames(keyAssertionAlgs), ", "))
	}
	switch pk := k.Key.(type) {
	case *rsa.PublicKey:
		if pk.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits is too small (at least 2048)", pk.N.BitLen())
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return fmt.Errorf("key type %T cannot verify signatures", k.Key)
	}
	return nil
}

// record turns a validated spec into a stored trusted issuer.
func (t TrustSpec) record(id, source string, created time.Time) storage.TrustedIssuer {
	life, _ := time.ParseDuration(t.MaxLifetime)
	return storage.TrustedIssuer{
		ID:          id,
		Issuer:      t.Issuer,
		Subject:     t.Subject,
		AnySubject:  t.AnySubject,
		JWKS:        string(t.JWKS),
		JWKSURI:     t.JWKSURI,
		Scopes:      t.Scopes,
		MaxLifetime: life,
		Source:      source,
		CreatedAt:   created,
	}
}

// configTrustID is the ID of a trusted issuer declared in the config: the
// same declaration gets the same ID at every start, so a restart updates
// rather than duplicates it.
func configTrustID(t TrustSpec) string {
	sum := sha256.Sum256([]byte(t.Issuer + "\x00" + trustBinding(t.Subject, t.AnySubject)))
	return "config-" + hex.EncodeToString(sum[:8])
}

// trustBinding names which subjects an entry is for; two entries with the
// same issuer and binding would contradict each other.
func trustBinding(subject string, any bool) string {
	if any {
		return "*any*"
	}
	return "sub:" + subject
}

// SameTrust reports whether two specs are for the same issuer and
// subjects (the config refuses such duplicates).
func SameTrust(a, b TrustSpec) bool {
	return a.Issuer == b.Issuer && trustBinding(a.Subject, a.AnySubject) == trustBinding(b.Subject, b.AnySubject)
}

func describeTrust(issuer, subject string, any bool) string {
	if any {
		return fmt.Sprintf("trusted issuer %q for any subject", issuer)
	}
	return fmt.Sprintf("trusted issuer %q for subject %q", issuer, subject)
}

// AddTrustedIssuer records a trusted issuer added by an operator, with a
// random ID. An issuer already trusted for the same subjects is refused:
// which of the two would apply is not obvious.
func (a *LocalAdmin) AddTrustedIssuer(ctx context.Context, spec TrustSpec) (storage.TrustedIssuer, error) {
	spec, err := spec.Validate()
	if err != nil {
		return storage.TrustedIssuer{}, err
	}
	all, err := a.Store.ListTrustedIssuers(ctx)
	if err != nil {
		return storage.TrustedIssuer{}, err
	}
	for _, ti := range all {
		if ti.Issuer == spec.Issuer && trustBinding(ti.Subject, ti.AnySubject) == trustBinding(spec.Subject, spec.AnySubject) {
			return storage.TrustedIssuer{}, fmt.Errorf("%s (id %s): %w", describeTrust(spec.Issuer, spec.Subject, spec.AnySubject), ti.ID, storage.ErrAlreadyExists)
		}
	}
	ti := spec.record(uuid.NewString(), "cli", a.now().UTC())
	if err := a.Store.CreateTrustedIssuer(ctx, ti); err != nil {
		return storage.TrustedIssuer{}, err
	}
	return ti, nil
}

// ListTrustedIssuers lists by issuer, then subject.
func (a *LocalAdmin) ListTrustedIssuers(ctx context.Context) ([]storage.TrustedIssuer, error) {
	all, err := a.Store.ListTrustedIssuers(ctx)
	slices.SortFunc(all, func(x, y storage.TrustedIssuer) int {
		return cmp.Or(cmp.Compare(x.Issuer, y.Issuer), cmp.Compare(x.Subject, y.Subject), cmp.Compare(x.ID, y.ID))
	})
	return all, err
}

func (a *LocalAdmin) DeleteTrustedIssuer(ctx context.Context, id string) error {
	return a.Store.DeleteTrustedIssuer(ctx, id)
}

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
		return storage.TrustedIssuer{}, fmt.Errorf("%s: %w", describeTrust(issuer, subject, false), storage.ErrNotFound)
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
		set, err = parseJWKS([]byte(ti.JWKS))
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
		if (kid != "" && k.KeyID != kid) || assertionKey(k) != nil || (alg != "" && k.Algorithm != "" && k.Algorithm != alg) {
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
	err = s.store.CreateJTI(ctx, storage.JTI{ID: id, ExpiresAt: exp})
	if errors.Is(err, storage.ErrAlreadyExists) {
		return fosite.ErrJTIKnown
	}
	return err
}
