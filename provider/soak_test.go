package provider_test

// Soak: eight simulated weeks of refresh token rotations, with the
// janitor once a simulated day, leave the database the size it had after
// four.

import (
	"context"
	"encoding/binary"
	"net/http"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/storage"
)

// soakClock is the provider's clock in the soak, moved by hand.
type soakClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *soakClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *soakClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// shiftedExpiry stores token records with their expiry moved onto the
// simulated clock. fosite computes a token's expiry from the real clock
// (see provider.Deps.Now), and checks it against the real clock too,
// from the session the record carries, which is left as it is; the
// record's ExpiresAt is what the janitor goes by, so it follows the
// simulated weeks.
type shiftedExpiry struct {
	storage.Store
	clock *soakClock
}

func (s *shiftedExpiry) CreateToken(ctx context.Context, r storage.TokenRequest) error {
	if !r.ExpiresAt.IsZero() {
		r.ExpiresAt = r.ExpiresAt.Add(s.clock.now().Sub(time.Now()))
	}
	return s.Store.CreateToken(ctx, r)
}

// highWater reads the number of pages bbolt has allocated (the meta's
// high-water mark, of the meta with the higher transaction ID) from the
// file: what the file would need, whatever slack its last growth left.
func highWater(t *testing.T, path string) uint64 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const pageHeader, pgidAt, txidAt = 16, 40, 48
	pageSize := int(binary.LittleEndian.Uint32(raw[pageHeader+8:]))
	var hwm, bestTxid uint64
	for i := range 2 {
		m := raw[i*pageSize+pageHeader:]
		if txid := binary.LittleEndian.Uint64(m[txidAt:]); txid >= bestTxid {
			hwm, bestTxid = binary.LittleEndian.Uint64(m[pgidAt:]), txid
		}
	}
	return hwm
}

func TestSoakRotationsOverWeeks(t *testing.T) {
	t.Parallel()
	const (
		families        = 4
		rotationsPerDay = 16 // each family every six simulated hours
		weeks           = 8
		refreshLife     = 7 * 24 * time.Hour
	)
	clk := &soakClock{t: time.Now().UTC()}
	ts := newTestServerDeps(t, func(d *provider.Deps) {
		d.Now = clk.now
		d.Store = &shiftedExpiry{Store: d.Store, clock: clk}
	}, func(c *provider.Config) { c.RefreshTokenLifespan = refreshLife })
	ts.addClient(t, clientspec.Spec{ID: "soak", Secret: "soak-secret-0123456789", ClientSettings: storage.ClientSettings{
		GrantTypes: []string{"password", "refresh_token"}, Scopes: []string{"offline_access"},
	}})
	token := func(form url.Values) map[string]any {
		t.Helper()
		status, _, body := postForm(t, ts.URL+"/token", form, "soak", "soak-secret-0123456789")
		if status != http.StatusOK {
			t.Fatalf("token request at %s: HTTP %d %v", clk.now().Format(time.DateTime), status, body)
		}
		return body
	}
	refresh := make([]string, families)
	for i := range refresh {
		refresh[i] = token(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePass}, "scope": {"offline_access"}})["refresh_token"].(string)
	}

	ctx := context.Background()
	type sample struct {
		fileSize  int64
		pages     uint64
		records   int
		collected int
	}
	measure := func(collected int) sample {
		t.Helper()
		fi, err := os.Stat(ts.DBPath)
		if err != nil {
			t.Fatal(err)
		}
		s := sample{fileSize: fi.Size(), pages: highWater(t, ts.DBPath), collected: collected}
		for _, kind := range storage.TokenKinds {
			rs, err := ts.Store.ListSubjectTokens(ctx, kind, ts.alice.ID)
			if err != nil {
				t.Fatal(err)
			}
			s.records += len(rs)
		}
		return s
	}
	var samples []sample
	step := 24 * time.Hour / rotationsPerDay
	for day := 1; day <= weeks*7; day++ {
		for i := range rotationsPerDay {
			clk.advance(step)
			f := i % families
			refresh[f] = token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh[f]}})["refresh_token"].(string)
		}
		// The janitor's daily run, at the simulated time.
		n, err := ts.Store.GarbageCollect(ctx, clk.now())
		if err != nil {
			t.Fatal(err)
		}
		if day%7 == 0 {
			samples = append(samples, measure(n))
		}
	}
	for i, s := range samples {
		t.Logf("week %d: file %d bytes, %d pages allocated, %d token records of alice, %d collected that day", i+1, s.fileSize, s.pages, s.records, s.collected)
	}

	week4, week8 := samples[3], samples[7]
	// bbolt doubles a small file when it needs one page more, so the
	// file's size alone jumps when the high-water mark crosses a power of
	// two, whichever week that happens: what must stay flat is the pages
	// in use, and the file must be no larger than one doubling above them.
	if pageSize := int64(os.Getpagesize()); week8.fileSize > 2*int64(week8.pages)*pageSize && week8.fileSize > week4.fileSize {
		t.Errorf("the file grew from %d bytes after week 4 to %d after week 8, more than one doubling above its %d pages", week4.fileSize, week8.fileSize, week8.pages)
	}
	if week8.pages > week4.pages+week4.pages/10 {
		t.Errorf("allocated pages grew from %d after week 4 to %d after week 8", week4.pages, week8.pages)
	}
	// Live records: the rotated refresh tokens of the last refresh
	// lifetime (kept for reuse detection), plus a day of slack as the
	// janitor runs daily, and each family's current pair.
	bound := (int(refreshLife/(24*time.Hour))+1)*rotationsPerDay + 2*families
	for i, s := range samples[1:] {
		if s.records > bound {
			t.Errorf("week %d: %d token records, want at most %d", i+2, s.records, bound)
		}
	}
	if week8.collected == 0 {
		t.Error("the janitor collected nothing on the last day")
	}
}
