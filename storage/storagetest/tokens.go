package storagetest

import (
	"errors"
	"sync"
	"testing"

	"github.com/smallsso/provider/storage"
)

func testTokenCRUDPerKind(t *testing.T, s storage.Store) {
	ctx := t.Context()
	for _, kind := range storage.TokenKinds {
		r := token(kind, "sig-"+string(kind), "req-1")
		ok(t, s.CreateToken(ctx, r), "create "+string(kind))
		got, err := s.GetToken(ctx, kind, r.Signature)
		ok(t, err, "get "+string(kind))
		same(t, got, r, "get "+string(kind))
	}
	for _, kind := range storage.TokenKinds {
		sig := "sig-" + string(kind)
		ok(t, s.DeleteToken(ctx, kind, sig), "delete "+string(kind))
		_, err := s.GetToken(ctx, kind, sig)
		isErr(t, err, storage.ErrNotFound, "get deleted "+string(kind))
		isErr(t, s.DeleteToken(ctx, kind, sig), storage.ErrNotFound, "delete "+string(kind)+" twice")
	}
	_, err := s.GetToken(ctx, storage.KindAccessToken, "never-stored")
	isErr(t, err, storage.ErrNotFound, "get missing token")
}

func testTokenKindsIndependent(t *testing.T, s storage.Store) {
	ctx := t.Context()
	code := token(storage.KindAuthorizeCode, "shared-sig", "req-code")
	access := token(storage.KindAccessToken, "shared-sig", "req-access")
	access.Subject = "u-bob"
	ok(t, s.CreateToken(ctx, code), "create code")
	ok(t, s.CreateToken(ctx, access), "create access with the code's signature")

	got, err := s.GetToken(ctx, storage.KindAuthorizeCode, code.Signature)
	ok(t, err, "get code")
	same(t, got, code, "get code")
	got, err = s.GetToken(ctx, storage.KindAccessToken, access.Signature)
	ok(t, err, "get access")
	same(t, got, access, "get access")

	ok(t, s.DeactivateToken(ctx, storage.KindAuthorizeCode, code.Signature), "deactivate code")
	got, err = s.GetToken(ctx, storage.KindAccessToken, access.Signature)
	ok(t, err, "get access after deactivating code")
	same(t, got, access, "access after deactivating code")

	ok(t, s.DeleteToken(ctx, storage.KindAuthorizeCode, code.Signature), "delete code")
	got, err = s.GetToken(ctx, storage.KindAccessToken, access.Signature)
	ok(t, err, "get access after deleting code")
	same(t, got, access, "access after deleting code")
}

func testTokenDuplicate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	r := token(storage.KindRefreshToken, "sig", "req-1")
	ok(t, s.CreateToken(ctx, r), "create")
	dup := token(storage.KindRefreshToken, "sig", "req-2")
	dup.Subject = "u-mallory"
	isErr(t, s.CreateToken(ctx, dup), storage.ErrAlreadyExists, "create with a taken (kind, signature)")
	got, err := s.GetToken(ctx, r.Kind, r.Signature)
	ok(t, err, "get after refused create")
	same(t, got, r, "token after refused create")
	// The refused token's request ID must not have been indexed.
	ok(t, s.RevokeByRequestID(ctx, r.Kind, "req-2"), "revoke the refused request id")
	_, err = s.GetToken(ctx, r.Kind, r.Signature)
	ok(t, err, "get after revoking the refused request id")
}

func testTokenDeactivate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	r := token(storage.KindAuthorizeCode, "code-sig", "req-1")
	ok(t, s.CreateToken(ctx, r), "create")
	ok(t, s.DeactivateToken(ctx, r.Kind, r.Signature), "deactivate")
	got, err := s.GetToken(ctx, r.Kind, r.Signature)
	ok(t, err, "get after deactivate")
	want := r
	want.Active = false
	same(t, got, want, "token after deactivate")

	isErr(t, s.DeactivateToken(ctx, r.Kind, r.Signature), storage.ErrInactive, "deactivate twice")
	isErr(t, s.DeactivateToken(ctx, r.Kind, "never-stored"), storage.ErrNotFound, "deactivate missing")

	inactive := token(storage.KindRefreshToken, "born-inactive", "req-1")
	inactive.Active = false
	ok(t, s.CreateToken(ctx, inactive), "create inactive")
	isErr(t, s.DeactivateToken(ctx, inactive.Kind, inactive.Signature), storage.ErrInactive, "deactivate a token created inactive")
}

func testTokenDeactivateRace(t *testing.T, s storage.Store) {
	ctx := t.Context()
	r := token(storage.KindRefreshToken, "contested", "req-1")
	ok(t, s.CreateToken(ctx, r), "create")

	const n = 16
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.DeactivateToken(ctx, r.Kind, r.Signature)
		})
	}
	close(start)
	wg.Wait()

	winners := 0
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
		case !errors.Is(err, storage.ErrInactive):
			t.Errorf("racer %d: got error %v, want nil or one matching %q", i, err, storage.ErrInactive)
		}
	}
	if winners != 1 {
		t.Fatalf("%d of %d racing deactivations succeeded, want exactly 1", winners, n)
	}
}

func testTokenRevokeByRequestID(t *testing.T, s storage.Store) {
	ctx := t.Context()
	a1 := token(storage.KindAccessToken, "a1", "r1")
	a2 := token(storage.KindAccessToken, "a2", "r1")
	a3 := token(storage.KindAccessToken, "a3", "r10") // shares a prefix with r1
	a4 := token(storage.KindAccessToken, "a4", "r2")
	f1 := token(storage.KindRefreshToken, "f1", "r1")
	c1 := token(storage.KindAuthorizeCode, "a1", "r1") // same signature too
	for _, r := range []storage.TokenRequest{a1, a2, a3, a4, f1, c1} {
		ok(t, s.CreateToken(ctx, r), "create "+string(r.Kind)+" "+r.Signature)
	}
	ok(t, s.DeactivateToken(ctx, a2.Kind, a2.Signature), "deactivate a2")

	ok(t, s.RevokeByRequestID(ctx, storage.KindAccessToken, "r1"), "revoke access r1")
	for _, r := range []storage.TokenRequest{a1, a2} {
		_, err := s.GetToken(ctx, r.Kind, r.Signature)
		isErr(t, err, storage.ErrNotFound, "revoked "+string(r.Kind)+" "+r.Signature)
	}
	for _, r := range []storage.TokenRequest{a3, a4, f1, c1} {
		got, err := s.GetToken(ctx, r.Kind, r.Signature)
		ok(t, err, "kept "+string(r.Kind)+" "+r.Signature)
		same(t, got, r, "kept "+string(r.Kind)+" "+r.Signature)
	}

	ok(t, s.RevokeByRequestID(ctx, storage.KindAccessToken, "r1"), "revoke access r1 again")
	ok(t, s.RevokeByRequestID(ctx, storage.KindAccessToken, "unknown"), "revoke an unknown request id")
	ok(t, s.RevokeByRequestID(ctx, storage.KindRefreshToken, "r1"), "revoke refresh r1")
	_, err := s.GetToken(ctx, f1.Kind, f1.Signature)
	isErr(t, err, storage.ErrNotFound, "revoked refresh f1")
	_, err = s.GetToken(ctx, c1.Kind, c1.Signature)
	ok(t, err, "code of r1 survives revoking other kinds")
}

func testTokenRevokeAfterDeleteAndRecreate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	old := token(storage.KindAccessToken, "sig", "r-old")
	ok(t, s.CreateToken(ctx, old), "create")
	ok(t, s.DeleteToken(ctx, old.Kind, old.Signature), "delete")
	reborn := token(storage.KindAccessToken, "sig", "r-new")
	ok(t, s.CreateToken(ctx, reborn), "create again under the same signature")

	ok(t, s.RevokeByRequestID(ctx, old.Kind, "r-old"), "revoke the deleted token's request id")
	got, err := s.GetToken(ctx, reborn.Kind, reborn.Signature)
	ok(t, err, "recreated token after revoking the old request id")
	same(t, got, reborn, "recreated token after revoking the old request id")

	ok(t, s.RevokeByRequestID(ctx, reborn.Kind, "r-new"), "revoke the new request id")
	_, err = s.GetToken(ctx, reborn.Kind, reborn.Signature)
	isErr(t, err, storage.ErrNotFound, "recreated token after revoking its request id")
}
