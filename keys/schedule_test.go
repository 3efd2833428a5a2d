package keys

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// rotateDue runs RotateDue and returns the kids it published.
func rotateDue(t *testing.T, m *Manager, every time.Duration) []string {
	t.Helper()
	next, err := m.RotateDue(every)
	if err != nil {
		t.Fatalf("RotateDue: %v", err)
	}
	var out []string
	for _, k := range next {
		out = append(out, k.ID)
	}
	return out
}

func stateOf(t *testing.T, m *Manager, kid string) KeyInfo {
	t.Helper()
	for _, k := range m.List() {
		if k.ID == kid {
			return k
		}
	}
	t.Fatalf("%s not in List %+v", kid, m.List())
	return KeyInfo{}
}

// A rotation every 10h: the next key is published 5h ahead, signs from
// the due time on, the old one stays published for VerifyFor after that,
// and a restart in between changes nothing.
func TestScheduledRotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clock := newClock()
	t0 := clock.Now()
	opts := Options{Algorithms: []string{"ES256"}, VerifyFor: 2 * time.Hour, Now: clock.Now, ReloadInterval: -1}
	const every = 10 * time.Hour
	m := mustOpen(t, dir, opts)
	a := mustActive(t, m, "ES256")

	clock.Add(4*time.Hour + 59*time.Minute)
	if got := rotateDue(t, m, every); got != nil {
		t.Fatalf("published %v before the lead", got)
	}
	clock.Add(time.Minute) // t0+5h: the lead before the due time
	got := rotateDue(t, m, every)
	if len(got) != 1 {
		t.Fatalf("published %v at t0+5h, want one next key", got)
	}
	b := got[0]
	if k := mustActive(t, m, "ES256"); k.ID != a.ID {
		t.Fatalf("active %s right after publishing the next key, want %s", k.ID, a.ID)
	}
	if ks := kids(m.JWKS()); !slices.Equal(ks, []string{b, a.ID}) {
		t.Fatalf("JWKS %v, want next then active", ks)
	}
	if info := stateOf(t, m, b); info.State != StateNext || !info.ActivatesAt.Equal(t0.Add(every)) {
		t.Fatalf("next key %+v, want next from %s", info, t0.Add(every))
	}
	if again := rotateDue(t, m, every); again != nil {
		t.Fatalf("published another key %v while one is next", again)
	}

	// A restart: the schedule is in the manifest.
	clock.Add(time.Hour)
	m = mustOpen(t, dir, opts)
	if k := mustActive(t, m, "ES256"); k.ID != a.ID {
		t.Fatalf("after restart active %s, want %s", k.ID, a.ID)
	}
	if got := rotateDue(t, m, every); got != nil {
		t.Fatalf("restart published %v again", got)
	}

	clock.Set(t0.Add(every - time.Second))
	if k := mustActive(t, m, "ES256"); k.ID != a.ID {
		t.Fatalf("active %s a second before the due time", k.ID)
	}
	clock.Add(time.Second)
	if k := mustActive(t, m, "ES256"); k.ID != b {
		t.Fatalf("active %s at the due time, want the next key %s", k.ID, b)
	}
	// The old key is published until VerifyFor after it stopped signing,
	// whether or not the retirement was written down yet.
	clock.Add(time.Hour)
	if ks := kids(m.JWKS()); !slices.Equal(ks, []string{b, a.ID}) {
		t.Fatalf("JWKS %v an hour after the takeover, want both", ks)
	}
	rotateDue(t, m, every) // writes the retirement down
	if info := stateOf(t, m, a.ID); info.State != StateRetired || !info.RetiredAt.Equal(t0.Add(every)) || !info.VerifyUntil.Equal(t0.Add(every+2*time.Hour)) {
		t.Fatalf("old key %+v, want retired at the due time, published 2h more", info)
	}
	m = mustOpen(t, dir, opts) // another restart
	clock.Set(t0.Add(every + 2*time.Hour - time.Second))
	if _, ok := m.PublicKey(a.ID); !ok {
		t.Fatal("old key left the JWKS before its verify period ended")
	}
	clock.Add(time.Second)
	if ks := kids(m.JWKS()); !slices.Equal(ks, []string{b}) {
		t.Fatalf("JWKS %v after the verify period, want only %s", ks, b)
	}
	rotateDue(t, m, every) // prunes
	if _, err := os.Stat(filepath.Join(dir, a.ID+".json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old key file still there: %v", err)
	}

	// The next period counts from when b started: published at t0+15h.
	clock.Set(t0.Add(15*time.Hour - time.Second))
	if got := rotateDue(t, m, every); got != nil {
		t.Fatalf("published %v early", got)
	}
	clock.Add(time.Second)
	if got := rotateDue(t, m, every); len(got) != 1 {
		t.Fatalf("published %v at t0+15h, want one", got)
	}
}

// A server that was down when the next key was due publishes it late and
// still gives relying parties the whole lead before it signs.
func TestScheduledRotationAfterDowntime(t *testing.T) {
	t.Parallel()
	clock := newClock()
	m := mustOpen(t, t.TempDir(), Options{Algorithms: []string{"ES256"}, Now: clock.Now, ReloadInterval: -1})
	a := mustActive(t, m, "ES256")
	const every = 2 * time.Hour
	clock.Add(30 * time.Hour)
	got := rotateDue(t, m, every)
	if len(got) != 1 {
		t.Fatalf("published %v, want one", got)
	}
	if k := mustActive(t, m, "ES256"); k.ID != a.ID {
		t.Fatalf("the late next key signs at once")
	}
	if info := stateOf(t, m, got[0]); !info.ActivatesAt.Equal(clock.Now().Add(NextKeyLead(every))) {
		t.Fatalf("next key %+v, want it to start a lead (%s) from now", info, NextKeyLead(every))
	}
}

// A rotation by hand while a next key is out: the new key signs at once,
// the next key (which never signed) goes, and the schedule counts from
// the new key.
func TestRotateByHandDuringSchedule(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clock := newClock()
	m := mustOpen(t, dir, Options{Algorithms: []string{"ES256"}, VerifyFor: time.Hour, Now: clock.Now, ReloadInterval: -1})
	a := mustActive(t, m, "ES256")
	const every = 10 * time.Hour
	clock.Add(6 * time.Hour)
	next := rotateDue(t, m, every)
	if len(next) != 1 {
		t.Fatalf("published %v", next)
	}
	fresh, err := m.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	d := fresh[0].ID
	if k := mustActive(t, m, "ES256"); k.ID != d {
		t.Fatalf("active %s after Rotate, want %s", k.ID, d)
	}
	if ks := kids(m.JWKS()); !slices.Equal(ks, []string{d, a.ID}) {
		t.Fatalf("JWKS %v, want the new key and the one it retired, not the dropped next key", ks)
	}
	if _, err := os.Stat(filepath.Join(dir, next[0]+".json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dropped next key's file still there: %v", err)
	}
	clock.Add(time.Hour)
	if got := rotateDue(t, m, every); got != nil {
		t.Fatalf("published %v an hour after a rotation by hand", got)
	}
	clock.Add(4 * time.Hour) // 5h after the new key: the lead before its due time
	if got := rotateDue(t, m, every); len(got) != 1 {
		t.Fatalf("published %v, want the next key due from the rotation by hand", got)
	}
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
