package bolt

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"go.etcd.io/bbolt"

	"github.com/smallsso/provider/storage"
)

// recordVersion is written into every JSON value, so a later layout can
// migrate records one by one instead of rewriting the whole file at once.
// Token records are written in a compact version 2 (tokencodec.go); the
// other records are few and stay JSON.
const recordVersion = 1

type envelope[T any] struct {
	V    int `json:"v"`
	Data T   `json:"data"`
}

func encode[T any](rec T) ([]byte, error) {
	if r, ok := any(rec).(storage.TokenRequest); ok {
		return encodeToken(r)
	}
	b, err := json.Marshal(envelope[T]{V: recordVersion, Data: rec})
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return b, nil
}

func decode[T any](b []byte) (T, error) {
	var zero T
	if _, ok := any(zero).(storage.TokenRequest); ok && len(b) > 0 && b[0] != '{' {
		r, err := decodeToken(b)
		return any(r).(T), err
	}
	var e envelope[T]
	if err := json.Unmarshal(b, &e); err != nil {
		return zero, fmt.Errorf("decode: %w", err)
	}
	if e.V != recordVersion {
		return zero, fmt.Errorf("decode: record version %d, this build reads %d", e.V, recordVersion)
	}
	return e.Data, nil
}

// get decodes the record under k, or returns storage.ErrNotFound.
func get[T any](b *bbolt.Bucket, k []byte) (T, error) {
	v := b.Get(k)
	if v == nil {
		var zero T
		return zero, storage.ErrNotFound
	}
	return decode[T](v)
}

func put[T any](b *bbolt.Bucket, k []byte, rec T) error {
	v, err := encode(rec)
	if err != nil {
		return err
	}
	return b.Put(k, v)
}

// key joins parts into one bbolt key, each preceded by its length as a
// uvarint. No part can run into the next (key("a", "b\x00c") differs from
// key("a\x00b", "c")), and because uvarints are prefix-free, key(p...) is
// a prefix of key(p..., q...) only for exactly those p: the prefix scans
// over consents and request IDs rely on that.
func key(parts ...string) []byte {
	n := 0
	for _, p := range parts {
		n += binary.MaxVarintLen64 + len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}

var errMalformedKey = errors.New("malformed key")

// splitKey is the inverse of key.
func splitKey(b []byte) ([]string, error) {
	var parts []string
	for len(b) > 0 {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return nil, errMalformedKey
		}
		b = b[w:]
		parts = append(parts, string(b[:n]))
		b = b[n:]
	}
	return parts, nil
}

// Families name the record an expiry entry points at; the rest of the
// entry's key is the record's key parts.
const (
	familyToken   = "token"
	familySession = "session"
	familyConsent = "consent"
	familyJTI     = "jti"
	// familyReplay is a token's kept refresh answer (TokenRequest.Replay),
	// indexed at its ReplayUntil: the janitor strips the answer then and
	// leaves the record.
	familyReplay = "replay"
)

// expiryKey sorts by time first: fixed-width big-endian nanoseconds, since
// formatted times do not sort bytewise.
func expiryKey(at time.Time, ref ...string) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(ref)*16), expiryNanos(at))
	return append(b, key(ref...)...)
}

// expiryNanos clamps at into the range UnixNano can represent, so very old
// or far-future expiries still index (and compare) consistently.
func expiryNanos(at time.Time) uint64 {
	switch {
	case at.Before(time.Unix(0, 0)):
		return 0
	case at.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return uint64(at.UnixNano())
}

// setExpiry indexes a record for GarbageCollect. A zero time means the
// record never expires and is not indexed.
func (t *txn) setExpiry(at time.Time, ref ...string) error {
	if at.IsZero() {
		return nil
	}
	return t.expiry().Put(expiryKey(at, ref...), nil)
}

// clearExpiry must be called with the record's stored ExpiresAt whenever
// the record is deleted or replaced, or GC would later act on a stale entry.
func (t *txn) clearExpiry(at time.Time, ref ...string) error {
	if at.IsZero() {
		return nil
	}
	return t.expiry().Delete(expiryKey(at, ref...))
}
