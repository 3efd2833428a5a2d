package keys

import (
	"time"
)

// Scheduled rotation. A rotation every `every` must not surprise relying
// parties that cache the JWKS: a key they have never seen would fail
// their checks until they fetch the set again. So the next key is
// generated and published ahead of its use, for NextKeyLead(every), and
// only then starts signing; the key it takes over from stays published
// for VerifyFor after that, as after a rotation by hand.
//
// The schedule lives in the manifest, not in a timer: a key starts
// signing at its activates_at whoever reads the manifest, and the next
// key is due `every` after the active key started. A server that was down
// when a key was due publishes it when it comes back, and waits the whole
// lead before using it. A rotation by hand (Rotate) drops a next key that
// has not started and restarts the count from the new key.

// MaxNextKeyLead bounds how long a next key is published before it
// signs: relying parties that cache a key set longer than a day refetch
// it when they meet an unknown kid anyway.
const MaxNextKeyLead = 24 * time.Hour

// NextKeyLead is how long before its use the next key of a rotation every
// `every` is published: half the period, at most MaxNextKeyLead.
func NextKeyLead(every time.Duration) time.Duration { return min(every/2, MaxNextKeyLead) }

// RotateDue makes the rotation every `every` that is due: for each
// configured algorithm whose active key is due, it publishes the next key,
// which starts signing at the due time (or a whole lead from now, if that
// is later). It also records the retirement of keys a next key has taken
// over from, and deletes keys past their verify period. It returns the
// next keys it published. Call it periodically (a minute apart is
// plenty); it reads no file unless something is due.
func (m *Manager) RotateDue(every time.Duration) ([]Key, error) {
	if every <= 0 {
		return nil, nil
	}
	now := m.opts.Now()
	st := m.current(now)
	var due []string
	for _, alg := range m.opts.Algorithms {
		if _, ok := nextStart(st, alg, now, every); ok {
			due = append(due, alg)
		}
	}
	if len(due) == 0 && !untidy(st, now) {
		return nil, nil
	}
	fresh, err := generateAll(due)
	if err != nil {
		return nil, err
	}
	added, err := m.update(plan{fresh: fresh, next: func(cur *state, alg string, now time.Time) (time.Time, bool) {
		return nextStart(cur, alg, now, every)
	}})
	if err != nil {
		return nil, err
	}
	return keysOf(added), nil
}

// nextStart says whether alg's next key is due to be published at now,
// and when it would start signing.
func nextStart(st *state, alg string, now time.Time, every time.Duration) (time.Time, bool) {
	ks := st.signers[alg]
	if len(ks) == 0 || ks[0].pending(now) {
		// No key at all (Open makes one), or the next one is out already.
		return time.Time{}, false
	}
	lead := NextKeyLead(every)
	due := ks[0].start().Add(every)
	if now.Before(due.Add(-lead)) {
		return time.Time{}, false
	}
	return maxTime(due, now.Add(lead)), true
}

// untidy says whether the manifest has a key to settle (a newer one took
// over from it) or to prune (past its verify period).
func untidy(st *state, now time.Time) bool {
	for _, ks := range st.signers {
		started := 0
		for _, k := range ks {
			if !k.pending(now) {
				started++
			}
		}
		if started > 1 {
			return true
		}
	}
	for _, k := range st.keys {
		if !k.published(now) {
			return true
		}
	}
	return false
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
