package provider

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite/token/jwt"

	"github.com/smallsso/provider/keys"
	"github.com/smallsso/provider/provider/clientspec"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// signingFixture is a provider with only what signing needs: an issuer and
// a key manager with every algorithm, on a clock the test moves.
func signingFixture(t *testing.T) (*Provider, *keys.Manager, *testClock) {
	t.Helper()
	clock := &testClock{t: time.Now()}
	km, err := keys.Open(t.TempDir(), keys.Options{
		Algorithms: clientspec.SigningAlgorithms, VerifyFor: time.Hour, ReloadInterval: -1, Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &Provider{cfg: Config{Issuer: "https://op.example.org"}, keys: km}, km, clock
}

// signWith signs claims as our ID tokens are: the key's algorithm and kid.
func signWith(t *testing.T, k keys.Key, alg string, typ string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader("kid", k.ID)
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: k.Signer}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hintClaims(iss string, exp time.Time) map[string]any {
	return map[string]any{"iss": iss, "sub": "alice-id", "aud": "web", "iat": exp.Add(-time.Hour).Unix(), "exp": exp.Unix()}
}

// unsigned re-encodes token with alg none and no signature, as the suite's
// modified-id-token-hint module does.
func unsigned(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	h["alg"] = "none"
	raw, _ = json.Marshal(h)
	return base64.RawURLEncoding.EncodeToString(raw) + "." + parts[1] + "."
}

func TestVerifyIDTokenHint(t *testing.T) {
	t.Parallel()
	p, km, clock := signingFixture(t)
	iss := p.cfg.Issuer
	active := func(alg string) keys.Key {
		k, err := km.Active(alg)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}

	for _, alg := range clientspec.SigningAlgorithms {
		t.Run("accepts "+alg, func(t *testing.T) {
			claims, err := p.verifyIDTokenHint(signWith(t, active(alg), alg, "", hintClaims(iss, clock.Now().Add(time.Hour))))
			if err != nil {
				t.Fatal(err)
			}
			if claims["sub"] != "alice-id" || claims["aud"] != "web" {
				t.Errorf("claims = %v", claims)
			}
		})
	}
	t.Run("accepts a token from fosite's signer", func(t *testing.T) {
		s := &jwtSigner{keys: km}
		ctx := withSigningKey(context.Background(), active("ES256"))
		token, _, err := s.Generate(ctx, jwt.MapClaims(hintClaims(iss, clock.Now().Add(time.Hour))), jwt.NewHeaders())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.verifyIDTokenHint(token); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("accepts an expired token", func(t *testing.T) {
		if _, err := p.verifyIDTokenHint(signWith(t, active("RS256"), "RS256", "", hintClaims(iss, clock.Now().Add(-time.Hour)))); err != nil {
			t.Fatal(err)
		}
	})

	refused := map[string]string{
		"wrong iss":     signWith(t, active("RS256"), "RS256", "", hintClaims("https://evil.example.org", clock.Now().Add(time.Hour))),
		"alg none":      unsigned(t, signWith(t, active("RS256"), "RS256", "", hintClaims(iss, clock.Now().Add(time.Hour)))),
		"access token":  signWith(t, active("RS256"), "RS256", "at+jwt", hintClaims(iss, clock.Now().Add(time.Hour))),
		"logout token":  signWith(t, active("RS256"), "RS256", "logout+jwt", hintClaims(iss, clock.Now().Add(time.Hour))),
		"not a JWT":     "not.a.jwt",
		"empty":         "",
		"alg confusion": signWith(t, active("RS256"), "PS256", "", hintClaims(iss, clock.Now().Add(time.Hour))),
	}
	foreign := foreignKey(t, active("RS256").ID)
	refused["foreign key with our kid"] = signWith(t, foreign, "RS256", "", hintClaims(iss, clock.Now().Add(time.Hour)))
	foreign.ID = "someone-elses-kid"
	refused["foreign key"] = signWith(t, foreign, "RS256", "", hintClaims(iss, clock.Now().Add(time.Hour)))
	for name, token := range refused {
		t.Run("refuses "+name, func(t *testing.T) {
			if claims, err := p.verifyIDTokenHint(token); !errors.Is(err, errBadIDTokenHint) {
				t.Fatalf("verifyIDTokenHint = %v, %v; want errBadIDTokenHint", claims, err)
			}
		})
	}

	t.Run("retired key while published, not after", func(t *testing.T) {
		old := active("PS256")
		token := signWith(t, old, "PS256", "", hintClaims(iss, clock.Now().Add(time.Minute)))
		if _, err := km.Rotate(); err != nil {
			t.Fatal(err)
		}
		if _, err := p.verifyIDTokenHint(token); err != nil {
			t.Fatalf("hint signed by a retired, still published key: %v", err)
		}
		clock.Add(2 * time.Hour)
		if _, err := p.verifyIDTokenHint(token); !errors.Is(err, errBadIDTokenHint) {
			t.Fatalf("hint signed by a key no longer published: err = %v", err)
		}
	})
}

// foreignKey is an RSA key we never published, under kid.
func foreignKey(t *testing.T, kid string) keys.Key {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return keys.Key{ID: kid, Alg: "RS256", Signer: k}
}
