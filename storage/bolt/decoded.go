package bolt

import (
	"bytes"
	"maps"
	"slices"
	"sync"

	"go.etcd.io/bbolt"

	"github.com/smallsso/provider/storage"
)

// Clients and users are read on almost every request (client
// authentication, introspection, userinfo, refresh) and change rarely, yet
// decoding their JSON was the largest single cost of an introspection.
// decodedCache keeps the last decoding of each record together with the
// bytes it came from: a read compares the stored bytes with those (no
// invalidation to get wrong, whoever wrote them) and hands out a copy.
type decodedCache[T any] struct {
	mu      sync.RWMutex
	entries map[string]decodedEntry[T]
	// clone copies a record so that a caller mutating it never changes
	// the cache (the store's records are returned by value).
	clone func(T) T
}

type decodedEntry[T any] struct {
	raw []byte
	rec T
}

// decodedCacheMax bounds the entries (open registration can create many
// clients); when full the cache starts over.
const decodedCacheMax = 4096

func newDecodedCache[T any](clone func(T) T) *decodedCache[T] {
	return &decodedCache[T]{entries: map[string]decodedEntry[T]{}, clone: clone}
}

// get decodes the record under k in b, or returns the cached decoding of
// the same bytes.
func (c *decodedCache[T]) get(b *bbolt.Bucket, k []byte) (T, error) {
	raw := b.Get(k)
	if raw == nil {
		var zero T
		return zero, storage.ErrNotFound
	}
	c.mu.RLock()
	e, ok := c.entries[string(k)]
	c.mu.RUnlock()
	if ok && bytes.Equal(e.raw, raw) {
		return c.clone(e.rec), nil
	}
	rec, err := decode[T](raw)
	if err != nil {
		return rec, err
	}
	c.mu.Lock()
	if len(c.entries) >= decodedCacheMax {
		clear(c.entries)
	}
	// raw is bbolt's memory, valid only inside the transaction.
	c.entries[string(k)] = decodedEntry[T]{raw: bytes.Clone(raw), rec: c.clone(rec)}
	c.mu.Unlock()
	return rec, nil
}

func cloneClient(c storage.Client) storage.Client {
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.GrantTypes = slices.Clone(c.GrantTypes)
	c.ResponseTypes = slices.Clone(c.ResponseTypes)
	c.Scopes = slices.Clone(c.Scopes)
	c.Audience = slices.Clone(c.Audience)
	c.AllowedOrigins = slices.Clone(c.AllowedOrigins)
	c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	c.Contacts = slices.Clone(c.Contacts)
	c.RequestURIs = slices.Clone(c.RequestURIs)
	c.SecretSealed = slices.Clone(c.SecretSealed)
	c.Metadata = cloneJSON(c.Metadata)
	return c
}

func cloneUser(u storage.User) storage.User {
	u.Groups = slices.Clone(u.Groups)
	if u.Address != nil {
		a := *u.Address
		u.Address = &a
	}
	return u
}

// cloneJSON deep-copies a JSON object as encoding/json decodes one.
func cloneJSON(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := maps.Clone(m)
	for k, v := range out {
		out[k] = cloneJSONValue(v)
	}
	return out
}

func cloneJSONValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return cloneJSON(v)
	case []any:
		out := slices.Clone(v)
		for i := range out {
			out[i] = cloneJSONValue(out[i])
		}
		return out
	}
	return v
}
