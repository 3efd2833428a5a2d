package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"time"

	"github.com/smallsso/provider/storage"
)

// The janitor's defaults: one transaction removes at most this many
// expired records, and takes no further record once it has spent this
// long, so the write lock is released every few milliseconds whatever the
// size of the backlog. The price is in total work: records expire in an
// order unrelated to their keys, so each chunk rewrites a page of every
// bucket for nearly every record it removes, where one transaction over
// the whole backlog would write each page once. Issuance, not the
// janitor, is what must not wait.
const (
	defaultGCChunkRecords = 256
	defaultGCChunkTime    = 10 * time.Millisecond
)

// gcLimits bounds one GarbageCollect transaction (a chunk).
type gcLimits struct {
	records int
	time    time.Duration
	// afterChunk, when set (by tests), is called after each chunk has
	// committed, with the number of records it removed.
	afterChunk func(removed int)
}

func newGCLimits(o Options) gcLimits {
	l := gcLimits{records: o.GCChunkRecords, time: o.GCChunkTime}
	if l.records <= 0 {
		l.records = defaultGCChunkRecords
	}
	if l.time <= 0 {
		l.time = defaultGCChunkTime
	}
	return l
}

// GarbageCollect removes every record whose ExpiresAt is before now,
// oldest first, and strips the kept refresh answers (TokenRequest.Replay)
// whose ReplayUntil is before now from their records, in chunks: each chunk is its own write transaction of at
// most Options.GCChunkRecords records and about Options.GCChunkTime of
// work (the commit comes on top), and other writers get the lock between
// chunks. It reads only the expired head of the expiry index, never the
// records that are still valid. On an error, or when ctx is cancelled
// between chunks, the chunks already committed stay done and are counted.
func (s *Store) GarbageCollect(ctx context.Context, now time.Time) (int, error) {
	cutoff := expiryNanos(now)
	total := 0
	for {
		n, more, err := s.collectChunk(ctx, cutoff)
		total += n
		if err != nil {
			return total, wrap("garbage collect", err)
		}
		if s.gc.afterChunk != nil {
			s.gc.afterChunk(n)
		}
		if !more {
			return total, nil
		}
		// Let a writer woken by the commit take the lock before the next
		// chunk does.
		runtime.Gosched()
	}
}

// collectChunk removes what one transaction may of the expired head and
// reports how many records it removed and whether entries may remain.
func (s *Store) collectChunk(ctx context.Context, cutoff uint64) (removed int, more bool, err error) {
	err = s.update(ctx, func(t *txn) error {
		// Reset: a batched update may run this closure more than once.
		removed, more = 0, false
		start := time.Now()
		// Collect first: deleting under a live cursor can skip keys.
		entries := t.expiredEntries(cutoff, s.gc.records)
		more = len(entries) == s.gc.records
		for i, entry := range entries {
			if i > 0 && time.Since(start) >= s.gc.time {
				more = true
				break
			}
			ok, err := t.collect(entry)
			if err != nil {
				return err
			}
			if ok {
				removed++
			}
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return removed, more, nil
}

// expiredEntries returns up to limit entries of the expiry index before
// cutoff, oldest first. Every entry returned is deleted by collect, so
// each chunk makes progress.
func (t *txn) expiredEntries(cutoff uint64, limit int) [][]byte {
	var entries [][]byte
	c := t.expiry().Cursor()
	for k, _ := c.First(); k != nil && len(entries) < limit; k, _ = c.Next() {
		if len(k) >= 8 && binary.BigEndian.Uint64(k) >= cutoff {
			break
		}
		entries = append(entries, bytes.Clone(k))
	}
	return entries
}

// collect removes the record entry points at, together with entry, and
// reports whether there was one. An entry whose record is gone or now
// carries another expiry is stale and only the entry goes.
func (t *txn) collect(entry []byte) (bool, error) {
	var ref []string
	if len(entry) >= 8 {
		ref, _ = splitKey(entry[8:]) // a malformed entry is stale
	}
	removed, err := t.collectRecord(entry, ref)
	if err != nil || removed {
		return removed, err
	}
	return false, t.expiry().Delete(entry)
}

func (t *txn) collectRecord(entry []byte, ref []string) (bool, error) {
	switch {
	case len(ref) == 3 && ref[0] == familyToken:
		b, err := t.tokenBucket(storage.TokenKind(ref[1]))
		if err != nil {
			return false, nil
		}
		r, err := get[storage.TokenRequest](b, []byte(ref[2]))
		if ok, err := indexedBy(entry, ref, r.ExpiresAt, err); !ok {
			return false, err
		}
		return true, t.removeToken(b, r)
	case len(ref) == 2 && ref[0] == familySession:
		sess, err := get[storage.BrowserSession](t.sessions(), []byte(ref[1]))
		if ok, err := indexedBy(entry, ref, sess.ExpiresAt, err); !ok {
			return false, err
		}
		return true, t.removeSession(sess)
	case len(ref) == 3 && ref[0] == familyConsent:
		c, err := get[storage.Consent](t.consents(), key(ref[1], ref[2]))
		if ok, err := indexedBy(entry, ref, c.ExpiresAt, err); !ok {
			return false, err
		}
		return true, t.removeConsent(c)
	case len(ref) == 3 && ref[0] == familyReplay:
		// A kept refresh answer past its grace: strip it, keep the record
		// (it is still what reuse detection reads). Nothing was removed;
		// collect drops the entry.
		b, err := t.tokenBucket(storage.TokenKind(ref[1]))
		if err != nil {
			return false, nil
		}
		r, err := get[storage.TokenRequest](b, []byte(ref[2]))
		if ok, err := indexedBy(entry, ref, r.ReplayUntil, err); !ok {
			return false, err
		}
		r.Replay, r.ReplayUntil = nil, time.Time{}
		return false, put(b, []byte(r.Signature), r)
	case len(ref) == 2 && ref[0] == familyJTI:
		j, err := get[storage.JTI](t.jtis(), []byte(ref[1]))
		if ok, err := indexedBy(entry, ref, j.ExpiresAt, err); !ok {
			return false, err
		}
		return true, t.removeJTI(j)
	}
	return false, nil
}

// indexedBy reports whether a record looked up for entry (with lookup error
// err) exists and still expires at the time entry records.
func indexedBy(entry []byte, ref []string, expiresAt time.Time, err error) (bool, error) {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return !expiresAt.IsZero() && bytes.Equal(expiryKey(expiresAt, ref...), entry), nil
}
