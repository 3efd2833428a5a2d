package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/smallsso/provider/storage"
)

const racers = 20

// race runs fn(i) for i in [0, racers) on as many goroutines released at
// once, and returns their errors by index.
func race(fn func(i int) error) []error {
	errs := make([]error, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// everyRacer formats i into format for every racer, in sorted order as long
// as format pads i.
func everyRacer(format string) []string {
	var out []string
	for i := range racers {
		out = append(out, fmt.Sprintf(format, i))
	}
	return out
}

func testConcurrentUserUpdates(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := user("u-alice", "alice")
	u.Groups = nil
	ok(t, s.CreateUser(ctx, u), "create")
	const group = "g%02d"
	errs := race(func(i int) error {
		return s.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) {
			u.Groups = append(u.Groups, fmt.Sprintf(group, i))
			return u, nil
		})
	})
	ok(t, errors.Join(errs...), "concurrent updates")
	got, err := s.GetUser(ctx, u.ID)
	ok(t, err, "get after concurrent updates")
	slices.Sort(got.Groups)
	same(t, got.Groups, everyRacer(group), "groups after concurrent updates")
}

func testConcurrentClientUpdates(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c := client("c-app")
	c.RedirectURIs = nil
	ok(t, s.CreateClient(ctx, c), "create")
	const uri = "https://%02d.example/cb"
	errs := race(func(i int) error {
		return s.UpdateClient(ctx, c.ID, func(c storage.Client) (storage.Client, error) {
			c.RedirectURIs = append(c.RedirectURIs, fmt.Sprintf(uri, i))
			return c, nil
		})
	})
	ok(t, errors.Join(errs...), "concurrent updates")
	got, err := s.GetClient(ctx, c.ID)
	ok(t, err, "get after concurrent updates")
	slices.Sort(got.RedirectURIs)
	same(t, got.RedirectURIs, everyRacer(uri), "redirect URIs after concurrent updates")
}

func testConcurrentCreateSameUsername(t *testing.T, s storage.Store) {
	ctx := t.Context()
	errs := race(func(i int) error {
		return s.CreateUser(ctx, user(fmt.Sprintf("u-%02d", i), "contested"))
	})
	winner := ""
	for i, err := range errs {
		switch {
		case err == nil && winner != "":
			t.Fatalf("both u-%s and u-%02d created username contested", winner, i)
		case err == nil:
			winner = fmt.Sprintf("%02d", i)
		case !errors.Is(err, storage.ErrAlreadyExists):
			t.Fatalf("racer %d: got error %v, want nil or one matching %q", i, err, storage.ErrAlreadyExists)
		}
	}
	if winner == "" {
		t.Fatal("no racer created username contested")
	}
	got, err := s.GetUserByUsername(ctx, "contested")
	ok(t, err, "get contested")
	if got.ID != "u-"+winner {
		t.Fatalf("username contested belongs to %q, but u-%s won the create", got.ID, winner)
	}
	users, err := s.ListUsers(ctx)
	ok(t, err, "list users")
	if len(users) != 1 {
		t.Fatalf("list users after the race: got %d, want 1", len(users))
	}
}
