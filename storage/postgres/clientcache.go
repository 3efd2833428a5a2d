package postgres

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smallsso/provider/storage"
)

// Clients are read on every protocol request, and a read is a network
// round trip (three times the cost of a client_credentials grant on
// bbolt). So a replica keeps the clients it found for up to a second: a
// change made on another replica, or with the CLI, is seen within that
// second, which is what replicas promise anyway. A change made through
// this Store is seen at once: every client write, and the commit of a
// transaction that wrote one, moves the cache to a new generation, and
// an entry of an older generation is not used. The generation is read
// before the database is, so a read that raced a write is never kept as
// current. Misses are not cached: a client added anywhere works at once.
const (
	clientCacheTTL = time.Second
	clientCacheMax = 10_000
)

type clientCache struct {
	gen atomic.Uint64
	mu  sync.Mutex
	m   map[string]clientEntry
}

// clientEntry is a client's JSON, decoded anew at every hit: a caller may
// change what it is given.
type clientEntry struct {
	data []byte
	gen  uint64
	at   time.Time
}

func (c *clientCache) get(id string, now time.Time) ([]byte, bool) {
	gen := c.gen.Load()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok || e.gen != gen || now.Sub(e.at) >= clientCacheTTL || now.Before(e.at) {
		return nil, false
	}
	return e.data, true
}

func (c *clientCache) put(id string, data []byte, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= clientCacheMax {
		c.m = make(map[string]clientEntry)
	}
	c.m[id] = clientEntry{data: data, gen: gen, at: now}
}

// changed is called after every client write: the cache's entries are
// stale, and, inside a transaction, will be again when it commits.
func (s *Store) clientsChanged(ctx context.Context) {
	s.clients.gen.Add(1)
	if st := s.txState(ctx); st != nil {
		st.clientsWritten = true
	}
}

func (s *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	var c storage.Client
	tx, err := s.joined(ctx)
	if err != nil {
		return c, wrap("get client", err)
	}
	now := s.clock()
	if tx == nil {
		if data, ok := s.clients.get(id, now); ok {
			return c, wrap("get client", json.Unmarshal(data, &c))
		}
	}
	gen := s.clients.gen.Load()
	q, err := s.q(ctx)
	if err != nil {
		return c, wrap("get client", err)
	}
	var data []byte
	if err := q.QueryRow(ctx, `SELECT data FROM clients WHERE id = $1`, textKey(id)).Scan(&data); err != nil {
		return c, wrap("get client", err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, wrap("get client", err)
	}
	if tx == nil {
		s.clients.put(id, data, gen, now)
	}
	return c, nil
}
