package storagetest

import (
	"errors"
	"testing"

	"github.com/smallsso/provider/storage"
)

func testUserCRUD(t *testing.T, s storage.Store) {
	ctx := t.Context()
	alice, bob := user("u-alice", "alice"), user("u-bob", "bob")
	ok(t, s.CreateUser(ctx, alice), "create alice")
	ok(t, s.CreateUser(ctx, bob), "create bob")

	got, err := s.GetUser(ctx, alice.ID)
	ok(t, err, "get alice")
	same(t, got, alice, "get alice")
	got, err = s.GetUserByUsername(ctx, bob.Username)
	ok(t, err, "get bob by username")
	same(t, got, bob, "get bob by username")
	users, err := s.ListUsers(ctx)
	ok(t, err, "list users")
	sortUsers(users)
	same(t, users, []storage.User{alice, bob}, "list users")

	var seen storage.User
	ok(t, s.UpdateUser(ctx, alice.ID, func(u storage.User) (storage.User, error) {
		seen = u
		u.Email = "alice@new.example"
		u.Groups = append(u.Groups, "ops")
		return u, nil
	}), "update alice")
	same(t, seen, alice, "record passed to the update closure")
	want := user("u-alice", "alice")
	want.Email = "alice@new.example"
	want.Groups = []string{"staff", "admins", "ops"}
	got, err = s.GetUser(ctx, alice.ID)
	ok(t, err, "get alice after update")
	same(t, got, want, "get alice after update")
	got, err = s.GetUserByUsername(ctx, alice.Username)
	ok(t, err, "get alice by username after update")
	same(t, got, want, "get alice by username after update")

	ok(t, s.DeleteUser(ctx, alice.ID), "delete alice")
	_, err = s.GetUser(ctx, alice.ID)
	isErr(t, err, storage.ErrNotFound, "get deleted alice")
	_, err = s.GetUserByUsername(ctx, alice.Username)
	isErr(t, err, storage.ErrNotFound, "get deleted alice by username")
	users, err = s.ListUsers(ctx)
	ok(t, err, "list users after delete")
	same(t, users, []storage.User{bob}, "list users after delete")
	ok(t, s.CreateUser(ctx, user("u-alice-2", alice.Username)), "reuse the username of a deleted user")
}

func testUserDuplicates(t *testing.T, s storage.Store) {
	ctx := t.Context()
	alice := user("u-alice", "alice")
	ok(t, s.CreateUser(ctx, alice), "create alice")

	isErr(t, s.CreateUser(ctx, user(alice.ID, "alice2")), storage.ErrAlreadyExists, "create with a taken id")
	_, err := s.GetUserByUsername(ctx, "alice2")
	isErr(t, err, storage.ErrNotFound, "username of the refused create")

	isErr(t, s.CreateUser(ctx, user("u-other", alice.Username)), storage.ErrAlreadyExists, "create with a taken username")
	_, err = s.GetUser(ctx, "u-other")
	isErr(t, err, storage.ErrNotFound, "id of the refused create")

	got, err := s.GetUserByUsername(ctx, alice.Username)
	ok(t, err, "get alice by username")
	same(t, got, alice, "alice after refused creates")
}

func testUserMissing(t *testing.T, s storage.Store) {
	ctx := t.Context()
	_, err := s.GetUser(ctx, "nobody")
	isErr(t, err, storage.ErrNotFound, "get missing user")
	_, err = s.GetUserByUsername(ctx, "nobody")
	isErr(t, err, storage.ErrNotFound, "get missing username")
	called := false
	err = s.UpdateUser(ctx, "nobody", func(u storage.User) (storage.User, error) {
		called = true
		return u, nil
	})
	isErr(t, err, storage.ErrNotFound, "update missing user")
	if called {
		t.Fatal("update of a missing user called the closure")
	}
	isErr(t, s.DeleteUser(ctx, "nobody"), storage.ErrNotFound, "delete missing user")
	users, err := s.ListUsers(ctx)
	ok(t, err, "list users of an empty store")
	if len(users) != 0 {
		t.Fatalf("list users of an empty store: got %d users", len(users))
	}
}

func testUserRename(t *testing.T, s storage.Store) {
	ctx := t.Context()
	alice, bob := user("u-alice", "alice"), user("u-bob", "bob")
	ok(t, s.CreateUser(ctx, alice), "create alice")
	ok(t, s.CreateUser(ctx, bob), "create bob")

	ok(t, s.UpdateUser(ctx, alice.ID, rename("alicia")), "rename alice to alicia")
	_, err := s.GetUserByUsername(ctx, "alice")
	isErr(t, err, storage.ErrNotFound, "old username after rename")
	got, err := s.GetUserByUsername(ctx, "alicia")
	ok(t, err, "new username after rename")
	if got.ID != alice.ID || got.Username != "alicia" {
		t.Fatalf("new username after rename: got id %q username %q", got.ID, got.Username)
	}

	err = s.UpdateUser(ctx, alice.ID, func(u storage.User) (storage.User, error) {
		u.Username = bob.Username
		u.Email = "stolen@example.com"
		return u, nil
	})
	isErr(t, err, storage.ErrAlreadyExists, "rename onto a taken username")
	got, err = s.GetUser(ctx, alice.ID)
	ok(t, err, "get alice after refused rename")
	if got.Username != "alicia" || got.Email != alice.Email {
		t.Fatalf("refused rename changed the record: username %q email %q", got.Username, got.Email)
	}
	got, err = s.GetUserByUsername(ctx, bob.Username)
	ok(t, err, "get bob after refused rename")
	same(t, got, bob, "bob after refused rename")
	got, err = s.GetUserByUsername(ctx, "alicia")
	ok(t, err, "get alicia after refused rename")
	if got.ID != alice.ID {
		t.Fatalf("refused rename moved the username index to %q", got.ID)
	}

	// An update that keeps the username must not collide with itself.
	ok(t, s.UpdateUser(ctx, bob.ID, func(u storage.User) (storage.User, error) {
		u.Name = "Robert"
		return u, nil
	}), "update that keeps the username")
	ok(t, s.CreateUser(ctx, user("u-new", "alice")), "reuse a username freed by rename")
}

func rename(username string) func(storage.User) (storage.User, error) {
	return func(u storage.User) (storage.User, error) {
		u.Username = username
		return u, nil
	}
}

func testUserUpdateErrorAborts(t *testing.T, s storage.Store) {
	ctx := t.Context()
	alice := user("u-alice", "alice")
	ok(t, s.CreateUser(ctx, alice), "create alice")
	errBoom := errors.New("boom from the update closure")
	err := s.UpdateUser(ctx, alice.ID, func(u storage.User) (storage.User, error) {
		u.Email = "changed@example.com"
		u.Username = "renamed"
		u.Groups[0] = "mutated in place"
		return u, errBoom
	})
	if err != errBoom { // the contract says "as is", which is stricter than errors.Is
		t.Fatalf("update whose closure fails: got error %v, want the closure's error as is", err)
	}
	got, err := s.GetUser(ctx, alice.ID)
	ok(t, err, "get alice after aborted update")
	same(t, got, alice, "alice after aborted update")
	_, err = s.GetUserByUsername(ctx, "renamed")
	isErr(t, err, storage.ErrNotFound, "username of aborted rename")
}

func testUserReturnedByValue(t *testing.T, s storage.Store) {
	ctx := t.Context()
	want := user("u-alice", "alice")
	in := user("u-alice", "alice")
	ok(t, s.CreateUser(ctx, in), "create alice")
	in.Groups[0] = "mutated after create"

	got, err := s.GetUser(ctx, want.ID)
	ok(t, err, "get alice")
	got.Groups[0] = "mutated after get"
	byName, err := s.GetUserByUsername(ctx, want.Username)
	ok(t, err, "get alice by username")
	byName.Groups[0] = "mutated after get by username"
	users, err := s.ListUsers(ctx)
	ok(t, err, "list users")
	users[0].Groups[0] = "mutated after list"

	got, err = s.GetUser(ctx, want.ID)
	ok(t, err, "get alice again")
	same(t, got, want, "alice after mutating returned records")
}
