package postgres_test

import (
	"errors"
	"testing"
	"time"

	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/storage/postgres"
)

// TestClientCache: a replica sees its own client writes at once, another
// replica's within a second, and a new client at once.
func TestClientCache(t *testing.T) {
	t.Parallel()
	a, b, _ := twoReplicas(t)
	clock := &fakeClock{t: time.Now()}
	postgres.SetClock(a, clock.now)
	ctx := t.Context()
	name := func(s *postgres.Store) string {
		t.Helper()
		c, err := s.GetClient(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		return c.Name
	}
	rename := func(s *postgres.Store, to string) {
		t.Helper()
		if err := s.UpdateClient(ctx, "app", func(c storage.Client) (storage.Client, error) { c.Name = to; return c, nil }); err != nil {
			t.Fatal(err)
		}
	}

	// Added on B: A finds it at once (misses are not kept).
	if _, err := a.GetClient(ctx, "app"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("before it exists: %v", err)
	}
	if err := b.CreateClient(ctx, storage.Client{ID: "app", ClientSettings: storage.ClientSettings{Name: "one"}}); err != nil {
		t.Fatal(err)
	}
	if got := name(a); got != "one" {
		t.Fatalf("A reads %q right after B created it, want one", got)
	}
	// Changed on B: A may serve what it read for up to a second.
	rename(b, "two")
	if got := name(a); got != "one" && got != "two" {
		t.Fatalf("A reads %q", got)
	}
	clock.advance(time.Second)
	if got := name(a); got != "two" {
		t.Fatalf("A reads %q a second after B's change, want two", got)
	}
	// Changed on A: at once.
	rename(a, "three")
	if got := name(a); got != "three" {
		t.Fatalf("A reads %q right after its own change, want three", got)
	}
	// Changed in a transaction on A: the old one until it commits, the
	// new one at once after.
	txCtx, err := a.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.UpdateClient(txCtx, "app", func(c storage.Client) (storage.Client, error) { c.Name = "four"; return c, nil }); err != nil {
		t.Fatal(err)
	}
	if got := name(a); got != "three" {
		t.Fatalf("outside the open transaction A reads %q, want three", got)
	}
	if err := a.CommitTx(txCtx); err != nil {
		t.Fatal(err)
	}
	if got := name(a); got != "four" {
		t.Fatalf("A reads %q right after the commit, want four", got)
	}
	// Deleted on B: gone on A within a second.
	name(a)
	if err := b.DeleteClient(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	clock.advance(time.Second)
	if _, err := a.GetClient(ctx, "app"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a second after B deleted it, A: %v", err)
	}
	// What a caller is given is its own.
	if err := a.CreateClient(ctx, storage.Client{ID: "mut", ClientSettings: storage.ClientSettings{RedirectURIs: []string{"https://a.example/cb"}}}); err != nil {
		t.Fatal(err)
	}
	c, _ := a.GetClient(ctx, "mut")
	c.RedirectURIs[0] = "https://evil.example/cb"
	if c, _ := a.GetClient(ctx, "mut"); c.RedirectURIs[0] != "https://a.example/cb" {
		t.Fatalf("a caller's change reached the cache: %v", c.RedirectURIs)
	}
}
