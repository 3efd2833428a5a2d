package provider

import (
	"context"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/ory/fosite/token/jwt"

	"github.com/smallsso/provider/provider/clientspec"
)

// TestJWTSignerDecode is the signer fosite checks id_token_hint with at
// the authorization endpoint: every published key by kid and algorithm,
// expired tokens reported as such with their claims.
func TestJWTSignerDecode(t *testing.T) {
	t.Parallel()
	p, km, clock := signingFixture(t)
	s := &jwtSigner{keys: km}
	ctx := context.Background()
	iss := p.cfg.Issuer

	for _, alg := range clientspec.SigningAlgorithms {
		t.Run(alg, func(t *testing.T) {
			k, _ := km.Active(alg)
			token, sig, err := s.Generate(withSigningKey(ctx, k), jwt.MapClaims(hintClaims(iss, clock.Now().Add(time.Hour))), jwt.NewHeaders())
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Decode(ctx, token)
			if err != nil {
				t.Fatal(err)
			}
			if got.Header["kid"] != k.ID || string(got.Method) != alg || got.Claims["sub"] != "alice-id" {
				t.Errorf("decoded header %v method %s claims %v", got.Header, got.Method, got.Claims)
			}
			if v, err := s.Validate(ctx, token); err != nil || v != sig {
				t.Errorf("Validate = %q, %v; want the signature", v, err)
			}
		})
	}

	t.Run("default key is RS256 and the kid header names it", func(t *testing.T) {
		h := jwt.NewHeaders()
		h.Add("kid", "stale-kid-from-a-stored-session")
		token, _, err := s.Generate(ctx, jwt.MapClaims(hintClaims(iss, clock.Now().Add(time.Hour))), h)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Decode(ctx, token)
		rs, _ := km.Active("RS256")
		if err != nil || got.Header["kid"] != rs.ID || got.Method != "RS256" {
			t.Fatalf("Decode = %v, %v; want RS256 with kid %s", got, err, rs.ID)
		}
	})

	t.Run("expired", func(t *testing.T) {
		k, _ := km.Active("EdDSA")
		token := signWith(t, k, "EdDSA", "", hintClaims(iss, clock.Now().Add(-time.Hour)))
		got, err := s.Decode(ctx, token)
		var ve *jwt.ValidationError
		if !errors.As(err, &ve) || !ve.Has(jwt.ValidationErrorExpired) || ve.Has(jwt.ValidationErrorSignatureInvalid) {
			t.Fatalf("Decode(expired) err = %v, want only expired", err)
		}
		if got == nil || got.Claims["sub"] != "alice-id" {
			t.Fatalf("expired token's claims not returned: %v", got)
		}
	})

	rs, _ := km.Active("RS256")
	valid := signWith(t, rs, "RS256", "", hintClaims(iss, clock.Now().Add(time.Hour)))
	for name, token := range map[string]string{
		"alg none":      unsigned(t, valid),
		"alg confusion": signWith(t, rs, "PS256", "", hintClaims(iss, clock.Now().Add(time.Hour))),
		"foreign key":   signWith(t, foreignKey(t, rs.ID), "RS256", "", hintClaims(iss, clock.Now().Add(time.Hour))),
	} {
		t.Run("refuses "+name, func(t *testing.T) {
			if _, err := s.Decode(ctx, token); err == nil {
				t.Fatal("Decode accepted it")
			}
			if _, err := s.Validate(ctx, token); err == nil {
				t.Fatal("Validate accepted it")
			}
		})
	}
}

func TestTokenHash(t *testing.T) {
	t.Parallel()
	// OIDC Core §3.3.2.11 example value for SHA-256, and SHA-512 for EdDSA
	// as the OpenID Foundation suite computes it.
	for _, tc := range []struct{ alg, value, want string }{
		{"RS256", "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "77QmUPtjPfzWtF2AnpK9RQ"},
		{"PS256", "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "77QmUPtjPfzWtF2AnpK9RQ"},
		{"ES256", "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "77QmUPtjPfzWtF2AnpK9RQ"},
	} {
		if got := tokenHash(tc.alg, tc.value); got != tc.want {
			t.Errorf("tokenHash(%s) = %s, want %s", tc.alg, got, tc.want)
		}
	}
	sum := sha512.Sum512([]byte("some-code"))
	if got, want := tokenHash("EdDSA", "some-code"), base64.RawURLEncoding.EncodeToString(sum[:32]); got != want {
		t.Errorf("tokenHash(EdDSA) = %s, want left half of SHA-512 %s", got, want)
	}
}
