package storage

import (
	"context"
	"time"
)

// Bucket is one named record of a limiter's state (a token bucket, or a
// marker that only lives until ExpiresAt). Its meaning is the caller's:
// a backend stores the values and compares ExpiresAt with the caller's
// time, nothing else.
type Bucket struct {
	Name string
	// Tokens and At are a token bucket's level and the time it was
	// measured at.
	Tokens float64
	At     time.Time
	// ExpiresAt is when the record stops mattering (a bucket that has
	// refilled, an exemption that ran out). From then on it reads as
	// missing, and a backend may remove it. The zero value is a missing
	// record.
	ExpiresAt time.Time
}

// Missing reports whether b is a missing (or expired) record.
func (b Bucket) Missing() bool { return b.ExpiresAt.IsZero() }

// Budgets keeps the limiters' state (sign-in throttles, registration
// counters, per-client rate limits) where every replica of an
// installation sees the same: in memory for a single process
// (storage/membudgets), in the database for several replicas
// (storage/postgres). Times always come from the caller, never from the
// backend's clock.
type Budgets interface {
	// UpdateBuckets reads the records named names (distinct, at most a
	// few; UTF-8 without NUL bytes) as of now and calls fn with them, in the order of names; a
	// missing record, or one whose ExpiresAt is not after now, is a zero
	// Bucket with only its Name. What fn returns is written back, all or
	// nothing, atomically against every other UpdateBuckets on these
	// names by any caller of any replica: it has the same length and
	// order as cur (Names are ignored), and an entry whose ExpiresAt is
	// not after now removes its record. fn returning nil writes nothing;
	// fn's error is returned and nothing is written. fn must not call
	// the backend nor keep cur; it is called at most once. A backend returns an error
	// matching ErrConflict when it lost a race it could not wait out
	// (the caller may call again) and ErrUnavailable when it cannot be
	// reached.
	UpdateBuckets(ctx context.Context, now time.Time, names []string, fn func(cur []Bucket) ([]Bucket, error)) error

	// ReadBuckets returns the records named names as of now, as
	// UpdateBuckets would show them, without locking anything: a cheap
	// look that may be a moment stale.
	ReadBuckets(ctx context.Context, now time.Time, names []string) ([]Bucket, error)

	// DeleteBuckets removes every record whose name starts with prefix
	// (a rare operation: forgetting an account's known places).
	DeleteBuckets(ctx context.Context, prefix string) error
}

// UnixNanos is t as nanoseconds since the epoch, zero for the zero time:
// how a backend keeps a bucket's times without rounding them.
func UnixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// FromUnixNanos is UnixNanos' inverse.
func FromUnixNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
