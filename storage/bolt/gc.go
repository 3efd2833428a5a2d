package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/smallsso/provider/storage"
)

// GarbageCollect removes every record whose ExpiresAt is before now. It
// reads only the expired head of the expiry index, never the records that
// are still valid.
func (s *Store) GarbageCollect(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := s.update(ctx, func(t *txn) error {
		// Collect first: deleting under a live cursor can skip keys.
		for _, entry := range t.expiredEntries(expiryNanos(now)) {
			removed, err := t.collect(entry)
			if err != nil {
				return err
			}
			if removed {
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, wrap("garbage collect", err)
	}
	return n, nil
}

func (t *txn) expiredEntries(cutoff uint64) [][]byte {
	var entries [][]byte
	c := t.expiry.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
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
	return false, t.expiry.Delete(entry)
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
		sess, err := get[storage.BrowserSession](t.sessions, []byte(ref[1]))
		if ok, err := indexedBy(entry, ref, sess.ExpiresAt, err); !ok {
			return false, err
		}
		return true, t.removeSession(sess)
	case len(ref) == 3 && ref[0] == familyConsent:
		c, err := get[storage.Consent](t.consents, key(ref[1], ref[2]))
		if ok, err := indexedBy(entry, ref, c.ExpiresAt, err); !ok {
			return false, err
		}
		return true, t.removeConsent(c)
	case len(ref) == 2 && ref[0] == familyJTI:
		j, err := get[storage.JTI](t.jtis, []byte(ref[1]))
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
