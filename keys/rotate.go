package keys

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// update applies fresh keys to the manifest as it is on disk now, holding
// the in-process and the directory lock, so neither this process nor
// another loses an update. With neither retire nor next it only fills
// algorithms that lack an active key: two processes opening an empty
// directory together end up with one key per algorithm, not two.
//
// Every write also settles the manifest: a key a newer one took over from
// is marked retired as of that takeover (settle). Until then it is only
// published longer, never less.
//
// Files are ordered for crash safety: new key files before the manifest
// that names them, and deletions after the manifest that drops them.
func (m *Manager) update(p plan) ([]*key, error) {
	rotate := p.retire != nil || p.next != nil
	m.diskMu.Lock()
	defer m.diskMu.Unlock()
	unlock, err := lockDir(m.dir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	cur, info, err := load(m.dir, m.snapshot())
	if errors.Is(err, errNoManifest) {
		cur, info, err = newState(nil, nil), nil, nil
	}
	if err != nil {
		return nil, err
	}
	now := m.opts.Now().UTC()
	entries := append([]entry(nil), cur.entries...)
	settled := settle(entries, now, m.opts.VerifyFor)
	material := make(map[string]*key, len(cur.byKID)+len(p.fresh))
	for kid, k := range cur.byKID {
		material[kid] = k
	}
	var retired, dropped []entry
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
	var added []*key
	for _, k := range p.fresh {
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
		added = append(added, k)
		entries = append(entries, k.entry)
		material[k.ID] = k
	}
	var pruned []entry
	if rotate {
		entries, pruned = prune(entries, now)
	}
	pruned = append(pruned, dropped...)
	// Settling alone is worth a write only when asked to change the keys:
	// opening a directory (a CLI listing keys) writes nothing it need not.
	if len(added) == 0 && len(retired) == 0 && len(pruned) == 0 && !(settled && rotate) {
		m.publish(cur, info, m.opts.Now())
		return nil, nil
	}

	if err := m.persist(entries, added); err != nil {
		return nil, err
	}
	for _, e := range pruned {
		// The manifest no longer names the file, so a failure only leaves
		// an orphan behind.
		if err := os.Remove(filepath.Join(m.dir, keyFileName(e.ID))); err != nil && !errors.Is(err, os.ErrNotExist) {
			m.opts.Logger.Warn("keys: remove pruned key", "kid", e.ID, "err", err)
		}
	}
	info, err = os.Stat(filepath.Join(m.dir, manifestName))
	if err != nil {
		// Leaves the stamp empty, so the next read reloads from disk.
		info = nil
	}
	m.publish(newState(entries, material), info, m.opts.Now())

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

// persist writes the new key files, then the manifest. If that fails the
// key files are removed again, since nothing names them.
func (m *Manager) persist(entries []entry, added []*key) error {
	var written []string
	err := func() error {
		for _, k := range added {
			if err := writeKeyFile(m.dir, k); err != nil {
				return err
			}
			written = append(written, filepath.Join(m.dir, keyFileName(k.ID)))
		}
		return writeManifest(m.dir, entries)
	}()
	if err != nil {
		for _, path := range written {
			os.Remove(path)
		}
	}
	return err
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
