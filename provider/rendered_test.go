package provider_test

import (
	"crypto"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/smallsso/provider/keys"
	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/clientspec"
)

// hidingKeys is a key source whose active key for one algorithm the test
// can take away, as when the configuration drops the algorithm.
type hidingKeys struct {
	*keys.Manager
	hidden atomic.Value // string
}

func (k *hidingKeys) Active(alg string) (keys.Key, error) {
	if h, _ := k.hidden.Load().(string); h == alg {
		return keys.Key{}, errors.New("hidden")
	}
	return k.Manager.Active(alg)
}

func getDoc(t *testing.T, url, etag string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

func servedJWKS(t *testing.T, ts *testServer) (jose.JSONWebKeySet, string) {
	t.Helper()
	status, h, body := getDoc(t, ts.URL+"/jwks", "")
	if status != http.StatusOK || h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "public, max-age=60" {
		t.Fatalf("jwks: %d %v", status, h)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("jwks: %v: %s", err, body)
	}
	return set, h.Get("ETag")
}

func servedAlgs(t *testing.T, ts *testServer) (map[string]any, string) {
	t.Helper()
	status, h, body := getDoc(t, ts.URL+"/.well-known/openid-configuration", "")
	if status != http.StatusOK || h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "public, max-age=300" {
		t.Fatalf("discovery: %d %v", status, h)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["issuer"] != ts.URL || doc["jwks_uri"] != ts.URL+"/jwks" {
		t.Fatalf("discovery: %v", doc)
	}
	return doc, h.Get("ETag")
}

func kidsOf(set jose.JSONWebKeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

// TestJWKSAndDiscoveryFollowTheKeySet: the documents are rendered once per
// key set, and a rotation, a retired key leaving the set, or an algorithm
// losing its key shows in what is served next; a client that has the
// current version is answered 304.
func TestJWKSAndDiscoveryFollowTheKeySet(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	dir := t.TempDir()
	if err := copyKeyTemplate(dir); err != nil {
		t.Fatal(err)
	}
	km, err := keys.Open(filepath.Join(dir), keys.Options{Algorithms: clientspec.SigningAlgorithms, VerifyFor: time.Hour, Now: clock.Now, ReloadInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	src := &hidingKeys{Manager: km}
	ts := newTestServerDeps(t, func(d *provider.Deps) { d.Keys = src })

	set1, etag1 := servedJWKS(t, ts)
	if got, want := kidsOf(set1), kidsOf(km.JWKS()); !slices.Equal(got, want) || len(got) != len(clientspec.SigningAlgorithms) {
		t.Fatalf("jwks kids %v, want %v", got, want)
	}
	for _, k := range set1.Keys {
		if !k.IsPublic() {
			t.Fatalf("jwks serves private key %s", k.KeyID)
		}
	}
	if status, h, body := getDoc(t, ts.URL+"/jwks", etag1); status != http.StatusNotModified || len(body) != 0 || h.Get("ETag") != etag1 {
		t.Fatalf("revalidation: %d %v %q", status, h, body)
	}
	doc1, dEtag1 := servedAlgs(t, ts)
	if status, _, _ := getDoc(t, ts.URL+"/.well-known/openid-configuration", dEtag1); status != http.StatusNotModified {
		t.Fatalf("discovery revalidation: %d", status)
	}

	// A rotation: the new key is served at once, the old one too.
	oldRS := mustActiveKey(t, km, "RS256")
	fresh, err := km.Rotate("RS256")
	if err != nil {
		t.Fatal(err)
	}
	set2, etag2 := servedJWKS(t, ts)
	if etag2 == etag1 {
		t.Fatal("rotation kept the JWKS ETag")
	}
	if got := set2.Key(fresh[0].ID); len(got) != 1 || got[0].Algorithm != "RS256" || !got[0].Valid() {
		t.Fatalf("new key %s not served: %v", fresh[0].ID, kidsOf(set2))
	} else if want, _ := km.PublicKey(fresh[0].ID); !got[0].Key.(interface{ Equal(crypto.PublicKey) bool }).Equal(want.Key) {
		t.Fatal("served key is not the new key's public half")
	}
	if len(set2.Key(oldRS.ID)) != 1 {
		t.Fatalf("retired key %s left the set during its verify period", oldRS.ID)
	}
	if status, _, _ := getDoc(t, ts.URL+"/jwks", etag1); status != http.StatusOK {
		t.Fatalf("stale ETag answered %d", status)
	}
	// The algorithms did not change, so discovery did not either.
	doc2, dEtag2 := servedAlgs(t, ts)
	if dEtag2 != dEtag1 || !slices.Equal(anyStrings(doc2["id_token_signing_alg_values_supported"]), clientspec.SigningAlgorithms) {
		t.Fatalf("discovery after rotation: %v (%s, was %s)", doc2["id_token_signing_alg_values_supported"], dEtag2, dEtag1)
	}

	// The verify period ends: the retired key leaves the set.
	clock.Advance(2 * time.Hour)
	set3, etag3 := servedJWKS(t, ts)
	if len(set3.Key(oldRS.ID)) != 0 || len(set3.Key(fresh[0].ID)) != 1 || etag3 == etag2 {
		t.Fatalf("after the verify period: %v", kidsOf(set3))
	}

	// An algorithm without an active key is no longer advertised.
	src.hidden.Store("ES256")
	doc4, dEtag4 := servedAlgs(t, ts)
	want := slices.DeleteFunc(slices.Clone(clientspec.SigningAlgorithms), func(a string) bool { return a == "ES256" })
	for _, field := range []string{"id_token_signing_alg_values_supported", "userinfo_signing_alg_values_supported"} {
		if got := anyStrings(doc4[field]); !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", field, got, want)
		}
	}
	if dEtag4 == dEtag1 {
		t.Error("discovery ETag unchanged")
	}
	// Nothing else in the document moved.
	for k, v := range doc1 {
		if k == "id_token_signing_alg_values_supported" || k == "userinfo_signing_alg_values_supported" {
			continue
		}
		a, _ := json.Marshal(v)
		b, _ := json.Marshal(doc4[k])
		if string(a) != string(b) {
			t.Errorf("discovery %s changed: %s -> %s", k, a, b)
		}
	}
	src.hidden.Store("")
	if _, dEtag5 := servedAlgs(t, ts); dEtag5 != dEtag1 {
		t.Error("discovery did not return to the full document")
	}
}

func mustActiveKey(t *testing.T, km *keys.Manager, alg string) keys.Key {
	t.Helper()
	k, err := km.Active(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func anyStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, s := range list {
		str, _ := s.(string)
		out = append(out, str)
	}
	return out
}
