package keys

import (
	"crypto/rsa"
	"math/big"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// BenchmarkSign is one compact JWS of an ID-token-sized payload per
// operation, with each algorithm's key as loaded from its file (the path a
// restarted server takes), in parallel over all cores; sigs/s is the
// machine's signing limit for that algorithm. RS256/not_precomputed is the
// same key before Precompute, as go-jose hands it over.
//
// For the boringcrypto figure: GOEXPERIMENT=boringcrypto go test -run '^$' -bench Sign ./keys/
func BenchmarkSign(b *testing.B) {
	dir := b.TempDir()
	algs := []string{"RS256", "PS256", "ES256", "EdDSA"}
	if _, err := Open(dir, Options{Algorithms: algs}); err != nil {
		b.Fatal(err)
	}
	m, err := Open(dir, Options{Algorithms: algs})
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"iss":"https://sso.example.org","sub":"0123456789abcdef0123456789abcdef","aud":["web"],"exp":1893456000,"iat":1893452400,"auth_time":1893452300,"nonce":"n-0S6_WzA2Mj","at_hash":"77QmUPtjPfzWtF2AnpK9RQ","sid":"2b1c7c4e-0a5d-4b5f-9a8e-0c1d2e3f4a5b","email":"alice@example.org","email_verified":true,"name":"Alice Liddell"}`)
	run := func(b *testing.B, alg string, key any) {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key}, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := signer.Sign(payload); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
	}
	for _, alg := range algs {
		k, err := m.Active(alg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(alg, func(b *testing.B) { run(b, alg, k.Signer) })
	}
	b.Run("RS256/not_precomputed", func(b *testing.B) {
		k, _ := m.Active("RS256")
		priv := k.Signer.(*rsa.PrivateKey)
		bare := &rsa.PrivateKey{PublicKey: priv.PublicKey, D: priv.D, Primes: priv.Primes}
		bare.Precomputed.Dp, bare.Precomputed.Dq, bare.Precomputed.Qinv = new(big.Int).Set(priv.Precomputed.Dp), new(big.Int).Set(priv.Precomputed.Dq), new(big.Int).Set(priv.Precomputed.Qinv)
		run(b, "RS256", bare)
	})
}
