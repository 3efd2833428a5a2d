package storagetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/smallsso/provider/storage"
)

// begin starts a transaction and makes sure it ends: a failed test must not
// leave it open, or Close (and every later write) would wait on it forever.
func begin(t *testing.T, s storage.Store) context.Context {
	t.Helper()
	txCtx, err := s.BeginTx(t.Context())
	ok(t, err, "begin tx")
	t.Cleanup(func() { _ = s.RollbackTx(txCtx) }) // fails harmlessly once ended
	return txCtx
}

// await waits for a result from another goroutine, so a backend that
// deadlocks fails the test instead of hanging it.
func await(t *testing.T, ch <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no result after 10s", what)
		return nil
	}
}

func testTxCommit(t *testing.T, s storage.Store) {
	ctx := t.Context()
	alice, r, c := user("u-alice", "alice"), token(storage.KindAccessToken, "a1", "r1"), consent("u-alice", "c-app")
	txCtx := begin(t, s)
	ok(t, s.CreateUser(txCtx, alice), "create user in tx")
	ok(t, s.CreateToken(txCtx, r), "create token in tx")
	ok(t, s.SaveConsent(txCtx, c), "save consent in tx")
	ok(t, s.CommitTx(txCtx), "commit")

	got, err := s.GetUser(ctx, alice.ID)
	ok(t, err, "get committed user")
	same(t, got, alice, "committed user")
	gotR, err := s.GetToken(ctx, r.Kind, r.Signature)
	ok(t, err, "get committed token")
	same(t, gotR, r, "committed token")
	gotC, err := s.GetConsent(ctx, c.UserID, c.ClientID)
	ok(t, err, "get committed consent")
	same(t, gotC, c, "committed consent")
}

func testTxRollback(t *testing.T, s storage.Store) {
	ctx := t.Context()
	bob, app, r := user("u-bob", "bob"), client("c-app"), token(storage.KindRefreshToken, "f1", "r1")
	ok(t, s.CreateUser(ctx, bob), "create bob")
	ok(t, s.CreateClient(ctx, app), "create app")
	ok(t, s.CreateToken(ctx, r), "create token")

	txCtx := begin(t, s)
	ok(t, s.CreateUser(txCtx, user("u-alice", "alice")), "create user in tx")
	ok(t, s.UpdateUser(txCtx, bob.ID, rename("robert")), "rename bob in tx")
	ok(t, s.DeleteClient(txCtx, app.ID), "delete client in tx")
	ok(t, s.DeactivateToken(txCtx, r.Kind, r.Signature), "deactivate token in tx")
	ok(t, s.RollbackTx(txCtx), "rollback")

	_, err := s.GetUser(ctx, "u-alice")
	isErr(t, err, storage.ErrNotFound, "user created in a rolled back tx")
	got, err := s.GetUserByUsername(ctx, "bob")
	ok(t, err, "get bob by his old name")
	same(t, got, bob, "bob after rolled back rename")
	_, err = s.GetUserByUsername(ctx, "robert")
	isErr(t, err, storage.ErrNotFound, "username from a rolled back rename")
	_, err = s.GetClient(ctx, app.ID)
	ok(t, err, "client deleted in a rolled back tx")
	gotR, err := s.GetToken(ctx, r.Kind, r.Signature)
	ok(t, err, "get token")
	same(t, gotR, r, "token deactivated in a rolled back tx")
}

func testTxReadsOwnWrites(t *testing.T, s storage.Store) {
	alice, r := user("u-alice", "alice"), token(storage.KindAuthorizeCode, "c1", "r1")
	txCtx := begin(t, s)
	ok(t, s.CreateUser(txCtx, alice), "create user in tx")
	got, err := s.GetUser(txCtx, alice.ID)
	ok(t, err, "get user in tx")
	same(t, got, alice, "user read in its tx")
	got, err = s.GetUserByUsername(txCtx, alice.Username)
	ok(t, err, "get user by username in tx")
	same(t, got, alice, "user read by username in its tx")
	users, err := s.ListUsers(txCtx)
	ok(t, err, "list users in tx")
	same(t, users, []storage.User{alice}, "users listed in their tx")

	ok(t, s.CreateToken(txCtx, r), "create token in tx")
	ok(t, s.DeactivateToken(txCtx, r.Kind, r.Signature), "deactivate token in tx")
	gotR, err := s.GetToken(txCtx, r.Kind, r.Signature)
	ok(t, err, "get token in tx")
	if gotR.Active {
		t.Fatal("token deactivated in a tx reads as active in that tx")
	}
	isErr(t, s.DeactivateToken(txCtx, r.Kind, r.Signature), storage.ErrInactive, "deactivate twice in tx")
	ok(t, s.RollbackTx(txCtx), "rollback")
}

func testTxIsolation(t *testing.T, s storage.Store) {
	ctx := t.Context()
	bob := user("u-bob", "bob")
	bob.Groups = nil
	ok(t, s.CreateUser(ctx, bob), "create bob")
	txCtx := begin(t, s)
	ok(t, s.CreateUser(txCtx, user("u-alice", "alice")), "create user in tx")
	ok(t, s.UpdateUser(txCtx, bob.ID, addGroup("tx")), "update bob in tx")

	// Outside calls run on another goroutine: they must neither block on
	// the open transaction (reads) nor be lost to it (writes). The write
	// is to a record the transaction updated, so it may wait for the
	// transaction (a backend that locks rows makes it) or run after it (a
	// backend that serialises writers does); either way it acts on what
	// the transaction committed. Writes to other records are not promised
	// to wait, so none is asserted to.
	read := make(chan error, 1)
	go func() {
		_, err := s.GetUser(ctx, "u-alice")
		read <- err
	}()
	isErr(t, await(t, read, "read outside an open tx"), storage.ErrNotFound, "uncommitted user read outside its tx")

	write := make(chan error, 1)
	go func() { write <- s.UpdateUser(ctx, bob.ID, addGroup("outside")) }()
	ok(t, s.CommitTx(txCtx), "commit")
	ok(t, await(t, write, "write outside an open tx"), "update bob outside the tx")

	got, err := s.GetUser(ctx, bob.ID)
	ok(t, err, "get bob")
	slices.Sort(got.Groups)
	same(t, got.Groups, []string{"outside", "tx"}, "bob's groups after racing a tx")
	_, err = s.GetUser(ctx, "u-alice")
	ok(t, err, "user committed by the tx")
}

func addGroup(g string) func(storage.User) (storage.User, error) {
	return func(u storage.User) (storage.User, error) {
		u.Groups = append(u.Groups, g)
		return u, nil
	}
}

func testTxNestingFails(t *testing.T, s storage.Store) {
	txCtx := begin(t, s)
	if _, err := s.BeginTx(txCtx); err == nil {
		t.Fatal("begin tx inside a tx: got no error")
	}
	// The outer transaction is untouched by the refused nesting.
	ok(t, s.CreateUser(txCtx, user("u-alice", "alice")), "create user in the outer tx")
	ok(t, s.CommitTx(txCtx), "commit the outer tx")
	_, err := s.GetUser(t.Context(), "u-alice")
	ok(t, err, "user committed by the outer tx")
}

func testTxEndWithoutTxFails(t *testing.T, s storage.Store) {
	ctx := t.Context()
	if err := s.CommitTx(ctx); err == nil {
		t.Fatal("commit without a tx: got no error")
	}
	if err := s.RollbackTx(ctx); err == nil {
		t.Fatal("rollback without a tx: got no error")
	}
	txCtx := begin(t, s)
	ok(t, s.CommitTx(txCtx), "commit")
	if err := s.CommitTx(txCtx); err == nil {
		t.Fatal("commit twice: got no error")
	}
	if err := s.RollbackTx(txCtx); err == nil {
		t.Fatal("rollback after commit: got no error")
	}
	// The store still works after all that.
	ok(t, s.CreateUser(ctx, user("u-alice", "alice")), "create after ended tx")
}

// testTxSentinelsKeepTx: a call that fails with a sentinel inside a
// transaction (a taken key, a missing or inactive record) leaves the
// transaction usable, and its other writes commit.
func testTxSentinelsKeepTx(t *testing.T, s storage.Store) {
	ctx := t.Context()
	ok(t, s.CreateUser(ctx, user("u-alice", "alice")), "create alice")
	ok(t, s.CreateUser(ctx, user("u-bob", "bob")), "create bob")
	used := token(storage.KindAuthorizeCode, "used", "r0")
	ok(t, s.CreateToken(ctx, used), "create code")
	ok(t, s.DeactivateToken(ctx, used.Kind, used.Signature), "use code")
	ok(t, s.CreateJTI(ctx, storage.JTI{ID: "jti", ExpiresAt: now().Add(time.Hour)}, now()), "create jti")

	txCtx := begin(t, s)
	isErr(t, s.CreateToken(txCtx, token(used.Kind, used.Signature, "r1")), storage.ErrAlreadyExists, "duplicate token in tx")
	isErr(t, s.CreateUser(txCtx, user("u-carol", "alice")), storage.ErrAlreadyExists, "taken username in tx")
	isErr(t, s.UpdateUser(txCtx, "u-bob", rename("alice")), storage.ErrAlreadyExists, "rename onto a taken username in tx")
	isErr(t, s.DeactivateToken(txCtx, used.Kind, used.Signature), storage.ErrInactive, "deactivate a used code in tx")
	isErr(t, s.DeactivateToken(txCtx, used.Kind, "never-stored"), storage.ErrNotFound, "deactivate a missing token in tx")
	isErr(t, s.DeleteClient(txCtx, "c-nobody"), storage.ErrNotFound, "delete a missing client in tx")
	isErr(t, s.CreateJTI(txCtx, storage.JTI{ID: "jti", ExpiresAt: now().Add(time.Hour)}, now()), storage.ErrAlreadyExists, "replayed jti in tx")
	r := token(storage.KindAccessToken, "after", "r2")
	ok(t, s.CreateToken(txCtx, r), "write after the refusals")
	ok(t, s.UpdateUser(txCtx, "u-bob", rename("robert")), "rename after the refusals")
	ok(t, s.CommitTx(txCtx), "commit after the refusals")

	got, err := s.GetToken(ctx, r.Kind, r.Signature)
	ok(t, err, "token of the committed tx")
	same(t, got, r, "token of the committed tx")
	bob, err := s.GetUserByUsername(ctx, "robert")
	ok(t, err, "renamed bob")
	same(t, bob.ID, "u-bob", "renamed bob")
	alice, err := s.GetUserByUsername(ctx, "alice")
	ok(t, err, "alice")
	same(t, alice.ID, "u-alice", "alice keeps her username")
}
