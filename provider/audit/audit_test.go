package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWriterJSONLines(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))
	w := NewWriter(&buf, func() time.Time { return at })
	w.Record(context.Background(), SignInFailed("app", "alice\n\"}{", ReasonBadPassword))
	e := Admin(OpUserAdd, "erin", "")
	e.Actor = &Actor{Via: "socket", UID: 1000, User: "ops", PID: 42}
	w.Record(context.Background(), e)

	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", buf.String())
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"time": "2026-01-02T02:04:05Z", "event": "signin", "outcome": "failure",
		"reason": "bad_password", "client_id": "app", "username": "alice\n\"}{"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("extra fields in %v", got)
	}
	if want := `"actor":{"via":"socket","uid":1000,"user":"ops","pid":42}`; !strings.Contains(lines[1], want) {
		t.Errorf("admin line %s does not contain %s", lines[1], want)
	}
}

// failingWriter fails while fail is set.
type failingWriter struct{ fail bool }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.fail {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestWriterReportsFailuresOnce(t *testing.T) {
	t.Parallel()
	fw := &failingWriter{fail: true}
	w := NewWriter(fw, nil)
	var reports []error
	w.OnError = func(err error) { reports = append(reports, err) }
	for range 3 {
		w.Record(context.Background(), Reloaded(""))
	}
	fw.fail = false
	w.Record(context.Background(), Reloaded(""))
	w.Record(context.Background(), Reloaded(""))
	if len(reports) != 2 || reports[0] == nil || reports[1] != nil {
		t.Errorf("reports %v, want one failure then one recovery", reports)
	}
}

func TestFanout(t *testing.T) {
	t.Parallel()
	if Fanout() != Discard || Fanout(nil, Discard) != Discard {
		t.Error("an empty fan-out is not Discard")
	}
	var a, b bytes.Buffer
	clock := func() time.Time { return time.Unix(0, 0) }
	wa, wb := NewWriter(&a, clock), NewWriter(&b, clock)
	if Fanout(wa, nil) != Sink(wa) {
		t.Error("a fan-out of one sink is not that sink")
	}
	Fanout(wa, nil, wb).Record(context.Background(), Registered("c1"))
	if !strings.Contains(a.String(), `"client_id":"c1"`) || a.String() != b.String() {
		t.Errorf("fan-out wrote %q and %q", a.String(), b.String())
	}
	OrDiscard(nil).Record(context.Background(), Registered("c1")) // no panic
}

func TestActorContext(t *testing.T) {
	t.Parallel()
	if _, ok := ActorFrom(context.Background()); ok {
		t.Error("an actor in an empty context")
	}
	ctx := WithActor(context.Background(), Actor{Via: "socket", UID: 7})
	if a, ok := ActorFrom(ctx); !ok || a.UID != 7 {
		t.Errorf("ActorFrom = %+v, %v", a, ok)
	}
}

func TestFileModeAndRotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.checkEvery = 0 // compare the path with the open file at every write
	w := NewWriter(f, nil)
	w.Record(context.Background(), Registered("before"))
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("audit log mode: %v %v, want 0600", st.Mode(), err)
	}

	// logrotate's default: move the file away; the next event goes to a
	// new file at the path.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	w.Record(context.Background(), Registered("after"))
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if !strings.Contains(string(old), "before") || strings.Contains(string(old), "after") || !strings.Contains(string(cur), "after") {
		t.Errorf("after a rename: rotated %q, current %q", old, cur)
	}

	// copytruncate: writes continue at the (new) end.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	w.Record(context.Background(), Registered("truncated"))
	cur, _ = os.ReadFile(path)
	if !strings.HasPrefix(string(cur), `{"time"`) {
		t.Errorf("after truncation the file starts %q, want a line (no hole)", cur)
	}

	// Reopen on demand (a SIGHUP).
	os.Rename(path, path+".2")
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("Reopen did not create the file: %v", err)
	}
	f.Close()
	if _, err := f.Write([]byte("x\n")); err == nil {
		t.Error("a write after Close succeeded")
	}
}

func TestFileConcurrentLinesDoNotInterleave(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := NewWriter(f, nil)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				w.Record(context.Background(), SignInFailed("app", strings.Repeat("u", i*50), ReasonBadPassword))
			}
		}()
	}
	wg.Wait()
	raw, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) != 1000 {
		t.Fatalf("%d lines, want 1000", len(lines))
	}
	for _, l := range lines {
		var e Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
	}
}

func TestOpenFileErrors(t *testing.T) {
	t.Parallel()
	if _, err := OpenFile(filepath.Join(t.TempDir(), "missing", "audit.log")); err == nil || !strings.HasPrefix(err.Error(), "audit log: ") {
		t.Errorf("OpenFile in a missing directory: %v", err)
	}
}
