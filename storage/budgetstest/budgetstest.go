// Package budgetstest is the conformance suite of storage.Budgets: every
// implementation's tests call Run. It must not import a backend.
package budgetstest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/smallsso/provider/storage"
)

// Open returns two handles on one fresh, empty store: for a database two
// connections pools ("replicas"), for memory the same value twice.
type Open func(t *testing.T) (a, b storage.Budgets)

// Run runs the suite; each test opens its own store.
func Run(t *testing.T, open Open) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Open)
	}{
		{"MissingAndWrite", testMissingAndWrite},
		{"Expiry", testExpiry},
		{"NoWrite", testNoWrite},
		{"DeletePrefix", testDeletePrefix},
		{"Concurrent", testConcurrent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open)
		})
	}
}

var t0 = time.Unix(1_800_000_000, 123_456_789)

// Update calls UpdateBuckets again while it reports ErrConflict, a few
// times, as the limiters do.
func Update(ctx context.Context, b storage.Budgets, now time.Time, names []string, fn func([]storage.Bucket) ([]storage.Bucket, error)) error {
	var err error
	for range 10 {
		if err = b.UpdateBuckets(ctx, now, names, fn); !errors.Is(err, storage.ErrConflict) {
			return err
		}
	}
	return err
}

func read(t *testing.T, b storage.Budgets, now time.Time, names ...string) []storage.Bucket {
	t.Helper()
	got, err := b.ReadBuckets(t.Context(), now, names)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(names) {
		t.Fatalf("ReadBuckets(%q) returned %d buckets", names, len(got))
	}
	for i, g := range got {
		if g.Name != names[i] {
			t.Fatalf("ReadBuckets(%q)[%d] is %q", names, i, g.Name)
		}
	}
	return got
}

func sameBucket(a, b storage.Bucket) bool {
	return a.Name == b.Name && a.Tokens == b.Tokens && a.At.Equal(b.At) && a.ExpiresAt.Equal(b.ExpiresAt)
}

func testMissingAndWrite(t *testing.T, open Open) {
	a, b := open(t)
	ctx := t.Context()
	names := []string{"z/last", "a/first", "m:middle/ü"}
	err := a.UpdateBuckets(ctx, t0, names, func(cur []storage.Bucket) ([]storage.Bucket, error) {
		for i, c := range cur {
			if c.Name != names[i] || !c.Missing() || c.Tokens != 0 || !c.At.IsZero() {
				t.Errorf("missing record %d: %+v", i, c)
			}
		}
		return []storage.Bucket{
			{Tokens: 4.5, At: t0, ExpiresAt: t0.Add(time.Hour)},
			{Tokens: -1, At: t0.Add(time.Nanosecond), ExpiresAt: t0.Add(time.Minute)},
			{ExpiresAt: t0.Add(30 * 24 * time.Hour)},
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []storage.Bucket{
		{Name: "z/last", Tokens: 4.5, At: t0, ExpiresAt: t0.Add(time.Hour)},
		{Name: "a/first", Tokens: -1, At: t0.Add(time.Nanosecond), ExpiresAt: t0.Add(time.Minute)},
		{Name: "m:middle/ü", ExpiresAt: t0.Add(30 * 24 * time.Hour)},
	}
	// The other handle sees the same, in the order asked, to the
	// nanosecond.
	got := read(t, b, t0, "m:middle/ü", "a/first", "z/last", "nothing")
	for i, w := range []storage.Bucket{want[2], want[1], want[0], {Name: "nothing"}} {
		if !sameBucket(got[i], w) {
			t.Errorf("read %d: %+v, want %+v", i, got[i], w)
		}
	}
	// An update sees them too, and changes one.
	err = b.UpdateBuckets(ctx, t0.Add(time.Second), []string{"a/first", "z/last"}, func(cur []storage.Bucket) ([]storage.Bucket, error) {
		if !sameBucket(cur[0], want[1]) || !sameBucket(cur[1], want[0]) {
			t.Errorf("update sees %+v", cur)
		}
		cur[1].Tokens = 2
		return cur, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, a, t0.Add(time.Second), "z/last"); got[0].Tokens != 2 || !got[0].At.Equal(t0) {
		t.Errorf("after the update: %+v", got[0])
	}
}

func testExpiry(t *testing.T, open Open) {
	a, b := open(t)
	ctx := t.Context()
	exp := t0.Add(time.Minute)
	set := func(now time.Time, name string, tokens float64, expires time.Time) {
		t.Helper()
		err := a.UpdateBuckets(ctx, now, []string{name}, func(cur []storage.Bucket) ([]storage.Bucket, error) {
			return []storage.Bucket{{Tokens: tokens, At: now, ExpiresAt: expires}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	set(t0, "x", 1, exp)
	if got := read(t, b, exp.Add(-time.Nanosecond), "x"); got[0].Missing() {
		t.Error("a record read as missing before it expired")
	}
	// Expired: missing, to readers and updaters alike; by the caller's
	// time, not the backend's.
	if got := read(t, b, exp, "x"); !got[0].Missing() || got[0].Tokens != 0 {
		t.Errorf("an expired record reads as %+v", got[0])
	}
	err := b.UpdateBuckets(ctx, exp, []string{"x"}, func(cur []storage.Bucket) ([]storage.Bucket, error) {
		if !cur[0].Missing() {
			t.Errorf("an expired record updates as %+v", cur[0])
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A write with an expiry not after now removes the record.
	set(t0, "y", 3, exp)
	set(t0, "y", 3, t0)
	if got := read(t, b, t0.Add(-time.Hour), "y"); !got[0].Missing() {
		t.Errorf("a record written expired reads as %+v", got[0])
	}
	// A record comes back to life when written again.
	set(exp.Add(time.Hour), "x", 7, exp.Add(2*time.Hour))
	if got := read(t, b, exp.Add(time.Hour), "x"); got[0].Tokens != 7 {
		t.Errorf("a rewritten record reads as %+v", got[0])
	}
}

func testNoWrite(t *testing.T, open Open) {
	a, b := open(t)
	ctx := t.Context()
	boom := errors.New("boom")
	err := a.UpdateBuckets(ctx, t0, []string{"p", "q"}, func(cur []storage.Bucket) ([]storage.Bucket, error) {
		return []storage.Bucket{{Tokens: 1, ExpiresAt: t0.Add(time.Hour)}, {Tokens: 1, ExpiresAt: t0.Add(time.Hour)}}, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("fn's error came back as %v", err)
	}
	if got := read(t, b, t0, "p", "q"); !got[0].Missing() || !got[1].Missing() {
		t.Errorf("fn failed, yet %+v was written", got)
	}
	if err := a.UpdateBuckets(ctx, t0, []string{"p"}, func([]storage.Bucket) ([]storage.Bucket, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if got := read(t, b, t0, "p"); !got[0].Missing() {
		t.Errorf("fn returned nil, yet %+v was written", got)
	}
	// A wrong number of buckets is an error, not a partial write.
	err = a.UpdateBuckets(ctx, t0, []string{"p", "q"}, func([]storage.Bucket) ([]storage.Bucket, error) {
		return []storage.Bucket{{Tokens: 1, ExpiresAt: t0.Add(time.Hour)}}, nil
	})
	if err == nil {
		t.Error("one bucket returned for two names was accepted")
	}
	if got := read(t, b, t0, "p", "q"); !got[0].Missing() || !got[1].Missing() {
		t.Errorf("a refused update wrote %+v", got)
	}
}

func testDeletePrefix(t *testing.T, open Open) {
	a, b := open(t)
	ctx := t.Context()
	names := []string{"k:alice:1", "k:alice:2", "k:alicex:1", "k:bob:1", "k:%_\\:1"}
	err := a.UpdateBuckets(ctx, t0, names, func(cur []storage.Bucket) ([]storage.Bucket, error) {
		for i := range cur {
			cur[i].ExpiresAt = t0.Add(time.Hour)
		}
		return cur, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteBuckets(ctx, "k:alice:"); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteBuckets(ctx, "k:%"); err != nil { // no pattern characters
		t.Fatal(err)
	}
	got := read(t, a, t0, names...)
	for i, wantMissing := range []bool{true, true, false, false, true} {
		if got[i].Missing() != wantMissing {
			t.Errorf("%q after deleting the prefix: %+v", names[i], got[i])
		}
	}
}

// Many goroutines, on both handles, add one to overlapping sets of
// counters named in every order: no update is lost and none deadlocks.
func testConcurrent(t *testing.T, open Open) {
	a, b := open(t)
	ctx := t.Context()
	sets := [][]string{{"c1", "c2"}, {"c2", "c1"}, {"c3", "c1", "c2"}, {"c2", "c3"}, {"c4"}}
	const perWorker = 15
	want := map[string]int{}
	var wg sync.WaitGroup
	for w := range 10 {
		names := sets[w%len(sets)]
		for _, n := range names {
			want[n] += perWorker
		}
		h := a
		if w%2 == 1 {
			h = b
		}
		wg.Go(func() {
			for range perWorker {
				err := Update(ctx, h, t0, names, func(cur []storage.Bucket) ([]storage.Bucket, error) {
					for i := range cur {
						cur[i].Tokens++
						cur[i].ExpiresAt = t0.Add(time.Hour)
					}
					return cur, nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	names := []string{"c1", "c2", "c3", "c4"}
	got := read(t, a, t0, names...)
	for i, n := range names {
		if got[i].Tokens != float64(want[n]) {
			t.Errorf("%s = %v, want %d", n, got[i].Tokens, want[n])
		}
	}
	if t.Failed() {
		t.Log(fmt.Sprint(got))
	}
}
