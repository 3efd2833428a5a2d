package storagetest

import (
	"errors"
	"testing"

	"github.com/smallsso/provider/storage"
)

func testClientCRUD(t *testing.T, s storage.Store) {
	ctx := t.Context()
	app, cli := client("c-app"), client("c-cli")
	cli.Public = true
	cli.SecretHash = ""
	ok(t, s.CreateClient(ctx, app), "create app")
	ok(t, s.CreateClient(ctx, cli), "create cli")

	got, err := s.GetClient(ctx, app.ID)
	ok(t, err, "get app")
	same(t, got, app, "get app")
	clients, err := s.ListClients(ctx)
	ok(t, err, "list clients")
	sortClients(clients)
	same(t, clients, []storage.Client{app, cli}, "list clients")

	var seen storage.Client
	ok(t, s.UpdateClient(ctx, app.ID, func(c storage.Client) (storage.Client, error) {
		seen = c
		c.Name = "Renamed app"
		c.RedirectURIs = []string{"https://new.example/cb"}
		return c, nil
	}), "update app")
	same(t, seen, app, "record passed to the update closure")
	want := client("c-app")
	want.Name = "Renamed app"
	want.RedirectURIs = []string{"https://new.example/cb"}
	got, err = s.GetClient(ctx, app.ID)
	ok(t, err, "get app after update")
	same(t, got, want, "get app after update")

	ok(t, s.DeleteClient(ctx, app.ID), "delete app")
	_, err = s.GetClient(ctx, app.ID)
	isErr(t, err, storage.ErrNotFound, "get deleted app")
	clients, err = s.ListClients(ctx)
	ok(t, err, "list clients after delete")
	same(t, clients, []storage.Client{cli}, "list clients after delete")
}

func testClientDuplicatesAndMissing(t *testing.T, s storage.Store) {
	ctx := t.Context()
	app := client("c-app")
	ok(t, s.CreateClient(ctx, app), "create app")
	dup := client("c-app")
	dup.Name = "Impostor"
	isErr(t, s.CreateClient(ctx, dup), storage.ErrAlreadyExists, "create with a taken id")
	got, err := s.GetClient(ctx, app.ID)
	ok(t, err, "get app")
	same(t, got, app, "app after refused create")

	_, err = s.GetClient(ctx, "nobody")
	isErr(t, err, storage.ErrNotFound, "get missing client")
	called := false
	err = s.UpdateClient(ctx, "nobody", func(c storage.Client) (storage.Client, error) {
		called = true
		return c, nil
	})
	isErr(t, err, storage.ErrNotFound, "update missing client")
	if called {
		t.Fatal("update of a missing client called the closure")
	}
	isErr(t, s.DeleteClient(ctx, "nobody"), storage.ErrNotFound, "delete missing client")
}

func testClientUpdateErrorAborts(t *testing.T, s storage.Store) {
	ctx := t.Context()
	app := client("c-app")
	ok(t, s.CreateClient(ctx, app), "create app")
	errBoom := errors.New("boom from the update closure")
	err := s.UpdateClient(ctx, app.ID, func(c storage.Client) (storage.Client, error) {
		c.Name = "changed"
		c.RedirectURIs[0] = "https://evil.example/cb"
		return c, errBoom
	})
	if err != errBoom { // the contract says "as is", which is stricter than errors.Is
		t.Fatalf("update whose closure fails: got error %v, want the closure's error as is", err)
	}
	got, err := s.GetClient(ctx, app.ID)
	ok(t, err, "get app after aborted update")
	same(t, got, app, "app after aborted update")
}

func testClientReturnedByValue(t *testing.T, s storage.Store) {
	ctx := t.Context()
	want := client("c-app")
	in := client("c-app")
	ok(t, s.CreateClient(ctx, in), "create app")
	in.RedirectURIs[0] = "https://mutated-after-create.example"

	got, err := s.GetClient(ctx, want.ID)
	ok(t, err, "get app")
	got.RedirectURIs[0] = "https://mutated-after-get.example"
	clients, err := s.ListClients(ctx)
	ok(t, err, "list clients")
	clients[0].Scopes[0] = "mutated-after-list"

	got, err = s.GetClient(ctx, want.ID)
	ok(t, err, "get app again")
	same(t, got, want, "app after mutating returned records")
}
