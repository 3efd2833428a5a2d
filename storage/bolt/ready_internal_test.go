package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallsso/provider/storage"
)

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// bigToken is an access token record of a few kilobytes, so the file
// fills up in a few dozen writes.
func bigToken(sig string) storage.TokenRequest {
	r := accessToken(sig)
	r.Form = map[string][]string{"pad": {strings.Repeat("x", 3000)}}
	return r
}

// A file that cannot grow (bbolt's MaxSize stands in for a full disk:
// the commit fails the same way, before any meta page is written): every
// write that needs the file to grow fails with storage.ErrUnavailable and
// leaves nothing behind, the store reports itself unwritable, reads go
// on, and once the file can grow again every writer succeeds, without
// reopening. Nothing committed before or after is lost across a reopen.
func TestWritesWhenTheFileCannotGrow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "provider.db")
	s, err := Open(path, Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if err := s.CheckWritable(ctx); err != nil {
		t.Fatalf("fresh store: %v", err)
	}
	if err := s.CreateToken(ctx, bigToken("before")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	s.db.MaxSize = int(fi.Size())

	kept := []string{"before"}
	var failed error
	for i := 0; i < 1000 && failed == nil; i++ {
		sig := fmt.Sprintf("fill-%d", i)
		if failed = s.CreateToken(ctx, bigToken(sig)); failed == nil {
			kept = append(kept, sig)
		}
	}
	switch {
	case failed == nil:
		t.Fatal("1000 writes of 3 KB fitted in a file that could not grow")
	case !errors.Is(failed, storage.ErrUnavailable):
		t.Fatalf("write to a full file: %v, want storage.ErrUnavailable", failed)
	}
	t.Logf("first failed write: %v", failed)

	// A batch of concurrent writers: each one either committed, and
	// reads back, or failed as unavailable and left nothing.
	var wg sync.WaitGroup
	results := make([]error, 8)
	for i := range results {
		wg.Go(func() { results[i] = s.CreateToken(ctx, bigToken(fmt.Sprintf("batch-%d", i))) })
	}
	wg.Wait()
	var lost []string
	for i, err := range results {
		sig := fmt.Sprintf("batch-%d", i)
		_, gerr := s.GetToken(ctx, storage.KindAccessToken, sig)
		switch {
		case err == nil && gerr == nil:
			kept = append(kept, sig)
		case errors.Is(err, storage.ErrUnavailable) && errors.Is(gerr, storage.ErrNotFound):
			lost = append(lost, sig)
		default:
			t.Errorf("%s: write %v, read %v", sig, err, gerr)
		}
	}
	if len(lost) == 0 {
		t.Error("every write of the concurrent batch fitted")
	}

	if err := s.CheckWritable(ctx); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("check writable after a failed write: %v, want storage.ErrUnavailable", err)
	}
	for _, sig := range kept {
		if _, err := s.GetToken(ctx, storage.KindAccessToken, sig); err != nil {
			t.Errorf("read %s while the file is full: %v", sig, err)
		}
	}

	// Space returns: no reopen needed.
	s.db.MaxSize = 0
	clk.advance(readyFailFor)
	if err := s.CheckWritable(ctx); err != nil {
		t.Errorf("check writable once the file can grow: %v", err)
	}
	for _, sig := range lost {
		if err := s.CreateToken(ctx, bigToken(sig)); err != nil {
			t.Errorf("retry %s once the file can grow: %v", sig, err)
		}
		kept = append(kept, sig)
	}
	for i := range 20 {
		sig := fmt.Sprintf("after-%d", i)
		if err := s.CreateToken(ctx, bigToken(sig)); err != nil {
			t.Fatalf("write once the file can grow: %v", err)
		}
		kept = append(kept, sig)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range kept {
		if _, err := s.GetToken(ctx, storage.KindAccessToken, sig); err != nil {
			t.Errorf("read %s after reopening: %v", sig, err)
		}
	}
}

// The probe is cached: within readyCacheFor a second check makes no
// commit; after it, one does. A failed commit is reported at once, even
// with a fresh good result cached, and for readyFailFor after it.
func TestCheckWritableCaches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, err := Open(filepath.Join(t.TempDir(), "provider.db"), Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	check := func(what string, wantCommits int64, wantErr bool) {
		t.Helper()
		before := s.w.commits.Load()
		err := s.CheckWritable(ctx)
		if got := s.w.commits.Load() - before; got != wantCommits {
			t.Errorf("%s: %d commits, want %d", what, got, wantCommits)
		}
		if (err != nil) != wantErr {
			t.Errorf("%s: %v, want error %v", what, err, wantErr)
		}
	}
	check("first check", 1, false)
	check("second check at once", 0, false)
	clk.advance(readyCacheFor - time.Millisecond)
	check("check within the cache time", 0, false)
	clk.advance(time.Millisecond)
	check("check after the cache time", 1, false)

	s.w.failed(fmt.Errorf("%w: test", storage.ErrUnavailable))
	check("check after a failed commit", 0, true)
	clk.advance(readyFailFor - time.Millisecond)
	check("check just before the failure is forgotten", 0, true)
	clk.advance(time.Millisecond)
	check("check once the failure is old", 1, false)
}
