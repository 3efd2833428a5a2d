package provider_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"runtime"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/smallsso/provider/provider/oidcctest"
)

// The harness must fail what the suite fails: each case breaks one thing
// in a real response and expects the named check to catch it.
func TestOIDCCHarnessCatchesFaults(t *testing.T) {
	t.Parallel()
	op := newOIDCCOP(t)
	r := op.NewRequest(op.Basic, "openid profile email address phone")
	f := op.Run(t, op.Browser(), r, op.User, nil)
	raw := f.IDToken.Raw
	parts := strings.Split(raw, ".")

	cases := map[string]struct {
		want string
		fn   func(tb testing.TB)
	}{
		"wrong nonce": {"ValidateIdTokenNonce", func(tb testing.TB) {
			op.CheckIDToken(tb, op.Basic, raw, oidcctest.IDTokenCheck{Nonce: "other"})
		}},
		"nonce not sent": {"ValidateIdTokenNonce", func(tb testing.TB) {
			op.CheckIDToken(tb, op.Basic, raw, oidcctest.IDTokenCheck{})
		}},
		"other audience": {"aud", func(tb testing.TB) {
			op.CheckIDToken(tb, op.Post, raw, oidcctest.IDTokenCheck{Nonce: r.Nonce()})
		}},
		"registered another alg": {"CheckIdTokenSignatureAlgorithm", func(tb testing.TB) {
			c := *op.Basic
			c.IDTokenAlg = "ES256"
			op.CheckIDToken(tb, &c, raw, oidcctest.IDTokenCheck{Nonce: r.Nonce()})
		}},
		"payload changed": {"ValidateIdTokenSignature", func(tb testing.TB) {
			forged := parts[0] + "." + parts[1][:len(parts[1])-2] + "AA." + parts[2]
			op.CheckIDToken(tb, op.Basic, forged, oidcctest.IDTokenCheck{Nonce: r.Nonce()})
		}},
		"at_hash of another token": {"at_hash", func(tb testing.TB) {
			op.CheckIDToken(tb, op.Basic, raw, oidcctest.IDTokenCheck{Nonce: r.Nonce(), AccessToken: "another token"})
		}},
		"c_hash required": {"c_hash", func(tb testing.TB) {
			op.CheckIDToken(tb, op.Basic, raw, oidcctest.IDTokenCheck{Nonce: r.Nonce(), RequireCHash: true})
		}},
		"state not echoed": {"CheckStateInAuthorizationResponse", func(tb testing.TB) {
			other := *r
			other.Params = maps.Clone(r.Params)
			other.Params.Set("state", "not-the-state")
			op.CheckSuccess(tb, &other, f.Result)
		}},
		"private key in JWKS": {"EnsureServerJwksDoesNotContainPrivateOrSymmetricKeys", func(tb testing.TB) {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			doc, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k, KeyID: "x", Algorithm: "ES256", Use: "sig"}}})
			oidcctest.CheckJWKS(tb, doc)
		}},
		"duplicate kid": {"CheckDistinctKeyIdValueInServerJWKs", func(tb testing.TB) {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			pub := jose.JSONWebKey{Key: &k.PublicKey, KeyID: "x", Algorithm: "ES256", Use: "sig"}
			doc, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub, pub}})
			oidcctest.CheckJWKS(tb, doc)
		}},
		"low-entropy code": {"entropy", func(tb testing.TB) {
			oidcctest.CheckRandomValue(tb, "code", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
		}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			msg := failure(c.fn)
			if msg == "" {
				t.Fatalf("the harness accepted it")
			}
			if !strings.Contains(msg, c.want) {
				t.Fatalf("failed for another reason: %s", msg)
			}
		})
	}
}

// failure runs fn against a recording testing.TB and returns the first
// failure message, "" if fn passed.
func failure(fn func(tb testing.TB)) string {
	rec := &recordingTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(rec)
	}()
	<-done
	return rec.msg
}

type recordingTB struct {
	testing.TB
	msg string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Errorf(format string, args ...any) {
	if r.msg == "" {
		r.msg = fmt.Sprintf(format, args...)
	}
}
func (r *recordingTB) Fatalf(format string, args ...any) { r.Errorf(format, args...); runtime.Goexit() }
func (r *recordingTB) Fatal(args ...any)                 { r.Fatalf("%s", fmt.Sprint(args...)) }
