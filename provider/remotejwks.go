package provider

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"

	"github.com/smallsso/provider/provider/clientspec"
)

// remoteKeySets fetches the JSON Web Key Sets that clients and trusted
// issuers publish at a jwks_uri, and caches them. A key ID that is not in
// the cached set triggers one refetch (the publisher may have rotated), but
// at most once per minRefetch per URI, so a stream of assertions naming
// unknown keys cannot turn the provider into a request amplifier.
type remoteKeySets struct {
	timeout    time.Duration
	ttl        time.Duration
	minRefetch time.Duration
	now        func() time.Time
	out        *outbound

	mu      sync.Mutex
	entries map[string]*remoteKeySet
	flight  singleflight.Group
}

type remoteKeySet struct {
	set       jose.JSONWebKeySet
	fetchedAt time.Time
	err       error
}

// maxJWKSBytes bounds a fetched key set; real ones are a few KiB.
const maxJWKSBytes = 1 << 20

func newRemoteKeySets(now func() time.Time, out *outbound) *remoteKeySets {
	return &remoteKeySets{
		out:        out,
		timeout:    5 * time.Second,
		ttl:        10 * time.Minute,
		minRefetch: 10 * time.Second,
		now:        now,
		entries:    map[string]*remoteKeySet{},
	}
}

// Keys returns the key set at uri, from cache when fresh. kid, when not
// empty, is a key the caller needs: if the cached set lacks it, the set is
// refetched (rate-limited) before giving up. policy is what the fetch may
// reach (see outbound.go); entries are kept per policy, so one owner's
// fetch never decides another's.
func (r *remoteKeySets) Keys(ctx context.Context, uri, kid string, policy outboundPolicy) (jose.JSONWebKeySet, error) {
	key := policy.key() + " " + uri
	r.mu.Lock()
	e := r.entries[key]
	r.mu.Unlock()
	now := r.now()
	if e != nil {
		age := now.Sub(e.fetchedAt)
		fresh := age < r.ttl
		hasKid := kid == "" || len(e.set.Key(kid)) > 0
		if (fresh && (hasKid || age < r.minRefetch)) || (e.err != nil && age < r.minRefetch) {
			return e.set, e.err
		}
	}
	v, _, _ := r.flight.Do(key, func() (any, error) {
		set, err := r.fetch(ctx, uri, policy)
		e := &remoteKeySet{set: set, fetchedAt: r.now(), err: err}
		r.mu.Lock()
		if old := r.entries[key]; err != nil && old != nil && old.err == nil {
			// Keep serving the last good set through a publisher's outage,
			// but remember the failure so it is retried only after
			// minRefetch.
			e.set = old.set
			e.err = nil
		}
		r.entries[key] = e
		r.mu.Unlock()
		return e, nil
	})
	got := v.(*remoteKeySet)
	return got.set, got.err
}

func (r *remoteKeySets) fetch(ctx context.Context, uri string, policy outboundPolicy) (jose.JSONWebKeySet, error) {
	// The fetch outlives a cancelled request so a shared flight is not
	// failed for every waiter by the first caller going away.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("jwks_uri %q: %w", uri, err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := r.out.client(policy, r.timeout).Do(req)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetch jwks_uri: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetch jwks_uri %q: status %d", uri, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetch jwks_uri %q: %w", uri, err)
	}
	if len(body) > maxJWKSBytes {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetch jwks_uri %q: larger than %d bytes", uri, maxJWKSBytes)
	}
	return clientspec.ParseJWKS(body)
}
