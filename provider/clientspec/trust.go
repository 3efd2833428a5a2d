package clientspec

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/smallsso/provider/storage"
)

const (
	// DefaultTrustLifetime bounds exp - iat when an issuer sets no
	// max_lifetime: long enough for clock skew and a slow hop, short
	// enough that a leaked assertion is soon worthless.
	DefaultTrustLifetime = time.Hour
	// MaxTrustLifetime is the most an operator may allow, and fosite's
	// global cap. The JTI of every accepted assertion is kept this long
	// at worst.
	MaxTrustLifetime = 24 * time.Hour
)

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
		set, err := ParseJWKS([]byte(t.JWKS))
		if err != nil {
			return t, badField("jwks", "%v", err)
		}
		for _, k := range set.Keys {
			if err := AssertionKey(k); err != nil {
				return t, badField("jwks", "key %q: %v", k.KeyID, err)
			}
		}
	}
	if t.JWKSURI != "" {
		if ValidWebURL(t.JWKSURI) != nil {
			return t, badField("jwks_uri", "%q must be an https URL (http only on loopback)", t.JWKSURI)
		}
	}
	for _, s := range t.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return t, badField("scopes", "%q is not a valid scope token", s)
		}
	}
	life := DefaultTrustLifetime
	if t.MaxLifetime != "" {
		d, err := time.ParseDuration(t.MaxLifetime)
		if err != nil {
			return t, badField("max_lifetime", "%q is not a duration like 5m or 1h", t.MaxLifetime)
		}
		if d <= 0 || d > MaxTrustLifetime {
			return t, badField("max_lifetime", "%s must be more than 0 and at most %s", d, MaxTrustLifetime)
		}
		life = d
	}
	t.MaxLifetime = life.String()
	return t, nil
}

// AssertionKey accepts a public key that can verify one of KeyAssertionAlgs.
func AssertionKey(k jose.JSONWebKey) error {
	if k.Use != "" && k.Use != "sig" {
		return fmt.Errorf("use %q is not sig", k.Use)
	}
	if k.Algorithm != "" && !slices.Contains(KeyAssertionAlgs, jose.SignatureAlgorithm(k.Algorithm)) {
		return fmt.Errorf("alg %q is not allowed (allowed: %s)", k.Algorithm, strings.Join(AlgNames(KeyAssertionAlgs), ", "))
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
func (t TrustSpec) Record(id, source string, created time.Time) storage.TrustedIssuer {
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

// ConfigTrustID is the ID of a trusted issuer declared in the config: the
// same declaration gets the same ID at every start, so a restart updates
// rather than duplicates it.
func ConfigTrustID(t TrustSpec) string {
	sum := sha256.Sum256([]byte(t.Issuer + "\x00" + TrustBinding(t.Subject, t.AnySubject)))
	return "config-" + hex.EncodeToString(sum[:8])
}

// TrustBinding names which subjects an entry is for; two entries with the
// same issuer and binding would contradict each other.
func TrustBinding(subject string, any bool) string {
	if any {
		return "*any*"
	}
	return "sub:" + subject
}

// SameTrust reports whether two specs are for the same issuer and
// subjects (the config refuses such duplicates).
func SameTrust(a, b TrustSpec) bool {
	return a.Issuer == b.Issuer && TrustBinding(a.Subject, a.AnySubject) == TrustBinding(b.Subject, b.AnySubject)
}

func DescribeTrust(issuer, subject string, any bool) string {
	if any {
		return fmt.Sprintf("trusted issuer %q for any subject", issuer)
	}
	return fmt.Sprintf("trusted issuer %q for subject %q", issuer, subject)
}
