package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// keyPublisher is a client's jwks_uri whose answer the test controls.
type keyPublisher struct {
	*httptest.Server
	mu      sync.Mutex
	status  int
	body    []byte
	fetches atomic.Int32
}

func newKeyPublisher(t *testing.T) *keyPublisher {
	p := &keyPublisher{status: http.StatusOK}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		p.mu.Lock()
		defer p.mu.Unlock()
		w.WriteHeader(p.status)
		w.Write(p.body)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *keyPublisher) publish(t *testing.T, status int, keys ...jose.JSONWebKey) {
	t.Helper()
	raw, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.status, p.body = status, raw
	p.mu.Unlock()
}

func ecJWK(t *testing.T, kid string) (public, private jose.JSONWebKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Use: "sig"}, jose.JSONWebKey{Key: k, KeyID: kid, Use: "sig"}
}

func TestRemoteKeySets(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	now.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	advance := func(d time.Duration) { now.Add(int64(d)) }
	ctx := context.Background()

	pub := newKeyPublisher(t)
	k1, _ := ecJWK(t, "k1")
	k2, _ := ecJWK(t, "k2")
	pub.publish(t, http.StatusOK, k1)
	r := newRemoteKeySets(clock, newOutbound(OutboundConfig{}, &url.URL{Host: "127.0.0.1"}, nil, nil))
	uri := pub.URL + "/jwks"
	has := func(set jose.JSONWebKeySet, kid string) bool { return len(set.Key(kid)) > 0 }

	t.Run("cached", func(t *testing.T) {
		for range 3 {
			set, err := r.Keys(ctx, uri, "k1", operatorPolicy)
			if err != nil || !has(set, "k1") {
				t.Fatalf("Keys: %v %v", set, err)
			}
		}
		if n := pub.fetches.Load(); n != 1 {
			t.Fatalf("%d fetches for three lookups, want 1", n)
		}
	})

	t.Run("unknown kid refetches at most every minRefetch", func(t *testing.T) {
		pub.publish(t, http.StatusOK, k1, k2)
		before := pub.fetches.Load()
		for range 5 {
			if set, _ := r.Keys(ctx, uri, "k2", operatorPolicy); has(set, "k2") {
				t.Fatal("k2 found before a refetch was allowed")
			}
		}
		if n := pub.fetches.Load() - before; n != 0 {
			t.Fatalf("%d fetches for an unknown kid within minRefetch, want 0", n)
		}
		advance(r.minRefetch)
		set, err := r.Keys(ctx, uri, "k2", operatorPolicy)
		if err != nil || !has(set, "k2") {
			t.Fatalf("after minRefetch: %v %v, want k2", set, err)
		}
		for range 5 {
			r.Keys(ctx, uri, "k3", operatorPolicy)
		}
		if n := pub.fetches.Load() - before; n != 1 {
			t.Fatalf("%d fetches, want 1 (one refetch, then rate-limited)", n)
		}
	})

	t.Run("refetched after ttl", func(t *testing.T) {
		pub.publish(t, http.StatusOK, k2)
		advance(r.ttl)
		set, err := r.Keys(ctx, uri, "", operatorPolicy)
		if err != nil || has(set, "k1") || !has(set, "k2") {
			t.Fatalf("after ttl: %v %v, want only k2", set, err)
		}
	})

	t.Run("keeps the last good set through an outage", func(t *testing.T) {
		pub.publish(t, http.StatusInternalServerError)
		advance(r.ttl)
		before := pub.fetches.Load()
		set, err := r.Keys(ctx, uri, "k2", operatorPolicy)
		if err != nil || !has(set, "k2") {
			t.Fatalf("during an outage: %v %v, want the last good set", set, err)
		}
		for range 5 {
			r.Keys(ctx, uri, "k9", operatorPolicy)
		}
		if n := pub.fetches.Load() - before; n != 1 {
			t.Fatalf("%d fetches during an outage, want 1 (then rate-limited)", n)
		}
	})

	t.Run("a failure without a good set is an error, retried after minRefetch", func(t *testing.T) {
		down := newKeyPublisher(t)
		down.publish(t, http.StatusNotFound)
		u := down.URL + "/jwks"
		if _, err := r.Keys(ctx, u, "k1", operatorPolicy); err == nil {
			t.Fatal("no error for a 404")
		}
		if _, err := r.Keys(ctx, u, "k1", operatorPolicy); err == nil || down.fetches.Load() != 1 {
			t.Fatalf("second lookup: err %v after %d fetches, want the cached error", err, down.fetches.Load())
		}
		down.publish(t, http.StatusOK, k1)
		advance(r.minRefetch)
		if set, err := r.Keys(ctx, u, "k1", operatorPolicy); err != nil || !has(set, "k1") {
			t.Fatalf("after recovery: %v %v", set, err)
		}
	})

	t.Run("refuses private keys", func(t *testing.T) {
		leaky := newKeyPublisher(t)
		_, priv := ecJWK(t, "p")
		leaky.publish(t, http.StatusOK, priv)
		_, err := r.Keys(ctx, leaky.URL+"/jwks", "p", operatorPolicy)
		if err == nil || !strings.Contains(err.Error(), "not a public key") {
			t.Fatalf("Keys of a private key set: %v, want refusal", err)
		}
	})

	t.Run("refuses oversized sets", func(t *testing.T) {
		big := newKeyPublisher(t)
		big.mu.Lock()
		big.body = []byte(`{"keys":[],"pad":"` + strings.Repeat("x", maxJWKSBytes) + `"}`)
		big.mu.Unlock()
		if _, err := r.Keys(ctx, big.URL+"/jwks", "", operatorPolicy); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("Keys of an oversized set: %v", err)
		}
	})
}
