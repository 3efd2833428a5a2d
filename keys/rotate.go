package keys

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Rotate gives every configured algorithm a new active key and retires
// every previously active key, including those of algorithms no longer
// configured. Retired keys stay in the JWKS for VerifyFor so tokens they
// signed still verify; keys past that are deleted. A next key of
// scheduled rotation that has not started signing is dropped: the new key
// takes its place now, and the schedule counts from it. It returns the
// new keys.
//
// Given algorithms, only those get a new key and only their active keys
// are retired, so one suspect key can be replaced without touching the
// others; each must be a configured algorithm.
func (m *Manager) Rotate(algs ...string) ([]Key, error) {
	for _, alg := range algs {
		if !slices.Contains(m.opts.Algorithms, alg) {
			return nil, fmt.Errorf("keys: cannot rotate %q: not a configured algorithm (configured: %s)", alg, strings.Join(m.opts.Algorithms, ", "))
		}
	}
	retire := func(string) bool { return true }
	if len(algs) == 0 {
		algs = m.opts.Algorithms
	} else {
		only := slices.Clone(algs)
		retire = func(alg string) bool { return slices.Contains(only, alg) }
	}
	fresh, err := generateAll(algs)
	if err != nil {
		return nil, err
	}
	added, err := m.update(plan{fresh: fresh, retire: retire})
	if err != nil {
		return nil, err
	}
	return keysOf(added), nil
}

// keysOf is what callers may see of ks.
func keysOf(ks []*key) []Key {
	out := make([]Key, len(ks))
	for i, k := range ks {
		out[i] = k.key()
	}
	return out
}

// generateAll runs before any lock is taken: an RSA key costs tens of
// milliseconds, which readers and other writers should not wait for.
func generateAll(algs []string) ([]*key, error) {
	out := make([]*key, 0, len(algs))
	for _, alg := range algs {
		signer, err := generate(alg)
		if err != nil {
			return nil, err
		}
		out = append(out, newKey(entry{ID: newKID(), Alg: alg}, signer))
	}
	return out, nil
}

// plan is what an update does with the manifest as it is on disk.
type plan struct {
	// fresh are the new keys, generated before any lock was taken.
	fresh []*key
	// retire, for a rotation by hand, names the algorithms whose keys are
	// retired now (a next key not yet signing is dropped).
	retire func(alg string) bool
	// next, for a scheduled rotation, says when a fresh key of alg starts
	// signing, or false when the rotation is no longer due (another
	// process made it).
	next func(cur *state, alg string, now time.Time) (time.Time, bool)
}

// update applies fresh keys to the manifest as it is in the vault now,
// holding the in-process and the vault's write lock, so neither this
// process nor another loses an update. With neither retire nor next it
// only fills algorithms that lack an active key: two processes opening an
// empty vault together end up with one key per algorithm, not two.
//
// Every write also settles the manifest: a key a newer one took over from
// is marked retired as of that takeover (settle). Until then it is only
// published longer, never less.
func (m *Manager) update(p plan) ([]*key, error) {
	rotate := p.retire != nil || p.next != nil
	m.diskMu.Lock()
	defer m.diskMu.Unlock()

	var (
		cur, next       *state
		added           []*key
		retired, pruned []entry
	)
	stamp, err := m.vault.Update(func(data []byte, readKey func(string) ([]byte, error)) ([]byte, map[string][]byte, []string, error) {
		// The vault may call fn again (a retried transaction): start over.
		cur, next, added, retired, pruned = nil, nil, nil, nil, nil
		if data == nil {
			cur = newState(nil, nil)
		} else {
			var err error
			if cur, err = parseState(m.vault, data, readKey, m.snapshot()); err != nil {
				return nil, nil, nil, err
			}
		}
		now := m.opts.Now().UTC()
		entries := append([]entry(nil), cur.entries...)
		settled := settle(entries, now, m.opts.VerifyFor)
		material := make(map[string]*key, len(cur.byKID)+len(p.fresh))
		for kid, k := range cur.byKID {
			material[kid] = k
		}
		var dropped []entry
		if p.retire != nil {
			kept := entries[:0]
			for _, e := range entries {
				switch {
				case e.retired() || !p.retire(e.Alg):
				case e.pending(now):
					// Never signed anything: nothing to keep it for.
					dropped = append(dropped, e)
					continue
				default:
					e.RetiredAt = now
					e.VerifyUntil = now.Add(m.opts.VerifyFor)
					retired = append(retired, e)
				}
				kept = append(kept, e)
			}
			entries = kept
		}
		for _, fresh := range p.fresh {
			k := *fresh
			switch {
			case p.next != nil:
				at, ok := p.next(cur, k.Alg, now)
				if !ok {
					continue
				}
				k.ActivatesAt = at
			case p.retire == nil && cur.active(k.Alg, now) != nil:
				continue
			}
			k.Created = now
			added = append(added, &k)
			entries = append(entries, k.entry)
			material[k.ID] = &k
		}
		if rotate {
			entries, pruned = prune(entries, now)
		}
		pruned = append(pruned, dropped...)
		// Settling alone is worth a write only when asked to change the
		// keys: opening a vault (a CLI listing keys) writes nothing it
		// need not.
		if len(added) == 0 && len(retired) == 0 && len(pruned) == 0 && !(settled && rotate) {
			return nil, nil, nil, nil
		}
		manifest, err := encodeManifest(entries)
		if err != nil {
			return nil, nil, nil, err
		}
		put := make(map[string][]byte, len(added))
		for _, k := range added {
			if put[k.ID], err = encodeKey(k); err != nil {
				return nil, nil, nil, err
			}
		}
		remove := make([]string, len(pruned))
		for i, e := range pruned {
			remove[i] = e.ID
		}
		next = newState(entries, material)
		return manifest, put, remove, nil
	})
	if err != nil {
		return nil, err
	}
	if next == nil {
		m.publish(cur, stamp, m.opts.Now())
		return nil, nil
	}
	m.publish(next, stamp, m.opts.Now())

	for _, k := range added {
		if k.ActivatesAt.IsZero() {
			m.opts.Logger.Info("keys: key generated", "kid", k.ID, "alg", k.Alg)
		} else {
			m.opts.Logger.Info("keys: next key published", "kid", k.ID, "alg", k.Alg, "activates_at", k.ActivatesAt)
		}
	}
	for _, e := range retired {
		m.opts.Logger.Info("keys: key retired", "kid", e.ID, "alg", e.Alg, "verify_until", e.VerifyUntil)
	}
	for _, e := range pruned {
		m.opts.Logger.Info("keys: key pruned", "kid", e.ID, "alg", e.Alg)
	}
	return added, nil
}

// settle marks retired, in place, every key a newer key of its algorithm
// has taken over from by now: retired when the newer one started, and
// published for verifyFor after. It reports whether it changed anything.
func settle(entries []entry, now time.Time, verifyFor time.Duration) bool {
	changed := false
	for i, e := range entries {
		if e.retired() || !e.started(now) {
			continue
		}
		// The earliest start after e's, among keys that have started.
		var successor time.Time
		for _, o := range entries {
			if o.Alg != e.Alg || o.ID == e.ID || o.retired() || !o.started(now) || !newer(o, e) {
				continue
			}
			if successor.IsZero() || o.start().Before(successor) {
				successor = o.start()
			}
		}
		if successor.IsZero() {
			continue
		}
		entries[i].RetiredAt = successor
		entries[i].VerifyUntil = successor.Add(verifyFor)
		changed = true
	}
	return changed
}

// prune splits off retired keys whose verify period is over: no token they
// signed can still be accepted.
func prune(entries []entry, now time.Time) ([]entry, []entry) {
	var keep, gone []entry
	for _, e := range entries {
		if e.published(now) {
			keep = append(keep, e)
		} else {
			gone = append(gone, e)
		}
	}
	return keep, gone
}
