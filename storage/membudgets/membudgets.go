// Package membudgets is the in-memory storage.Budgets: the limiters'
// state of a single process (a bbolt installation), lost on restart, so a
// restart forgives. It holds no policy and must not import the provider
// or any storage backend.
package membudgets

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/smallsso/provider/storage"
)

// DefaultPruneAt is the number of records above which expired ones are
// dropped before another is added.
const DefaultPruneAt = 100_000

// Budgets is a storage.Budgets in a map behind one mutex. The zero value
// is not usable; call New.
type Budgets struct {
	mu      sync.Mutex
	m       map[string]*record
	pruneAt int // when len(m) reaches it, expired records go first
	minAt   int
	// cur and recs of the call holding mu: the buckets read and the
	// records they were read from (nil for a missing one), so the write
	// needs no second lookup.
	scratch []storage.Bucket
	recs    []*record
}

// record is a Bucket without its name, times in Unix nanoseconds (so it
// holds no pointers for the collector to follow).
type record struct {
	tokens  float64
	at, exp int64
}

var _ storage.Budgets = (*Budgets)(nil)

// New returns an empty store that prunes expired records once it holds
// DefaultPruneAt.
func New() *Budgets { return NewPruneAt(DefaultPruneAt) }

// NewPruneAt is New with another pruning threshold (tests).
func NewPruneAt(n int) *Budgets {
	return &Budgets{m: make(map[string]*record), pruneAt: n, minAt: n, recs: make([]*record, 0, 4)}
}

// Len is the number of records held, expired ones included.
func (b *Budgets) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

// UpdateBuckets implements storage.Budgets: one mutex makes every call
// atomic against every other. It never fails but with fn's error.
func (b *Budgets) UpdateBuckets(ctx context.Context, now time.Time, names []string, fn func(cur []storage.Bucket) ([]storage.Bucket, error)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur, recs := b.read(now, names, b.scratch[:0], b.recs[:0])
	b.scratch, b.recs = cur[:0], recs[:0]
	next, err := fn(cur)
	if err != nil || next == nil {
		return err
	}
	if len(next) != len(names) {
		return errLength
	}
	nowNs, pruned := now.UnixNano(), false
	for i, n := range next {
		name, r := names[i], recs[i]
		if pruned {
			r = b.m[name] // the record read may have been dropped
		}
		if !n.ExpiresAt.After(now) {
			if r != nil {
				delete(b.m, name)
			}
			continue
		}
		if r == nil {
			if len(b.m) >= b.pruneAt {
				b.prune(nowNs)
				pruned = true
			}
			r = new(record)
			b.m[name] = r
		}
		*r = record{tokens: n.Tokens, at: storage.UnixNanos(n.At), exp: n.ExpiresAt.UnixNano()}
	}
	return nil
}

// ReadBuckets implements storage.Budgets.
func (b *Budgets) ReadBuckets(ctx context.Context, now time.Time, names []string) ([]storage.Bucket, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur, _ := b.read(now, names, make([]storage.Bucket, 0, len(names)), nil)
	return cur, nil
}

// DeleteBuckets implements storage.Budgets.
func (b *Budgets) DeleteBuckets(ctx context.Context, prefix string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.m {
		if strings.HasPrefix(k, prefix) {
			delete(b.m, k)
		}
	}
	return nil
}

// read appends names' buckets to cur and, when recs is not nil, their
// records (nil when missing; an expired one stays, to be overwritten).
func (b *Budgets) read(now time.Time, names []string, cur []storage.Bucket, recs []*record) ([]storage.Bucket, []*record) {
	nowNs := now.UnixNano()
	for _, name := range names {
		r := b.m[name]
		if recs != nil {
			recs = append(recs, r)
		}
		if r == nil || r.exp <= nowNs {
			cur = append(cur, storage.Bucket{Name: name})
			continue
		}
		cur = append(cur, storage.Bucket{Name: name, Tokens: r.tokens, At: storage.FromUnixNanos(r.at), ExpiresAt: time.Unix(0, r.exp)})
	}
	return cur, recs
}

// prune drops the expired records; if most are live, the next pruning
// waits until the map has doubled, so a full map costs amortised O(1).
func (b *Budgets) prune(now int64) {
	for k, r := range b.m {
		if r.exp <= now {
			delete(b.m, k)
		}
	}
	b.pruneAt = max(b.minAt, 2*len(b.m))
}

var errLength = errors.New("membudgets: UpdateBuckets: fn returned a different number of buckets than names")
