package storagetest

import (
	"testing"

	"github.com/smallsso/provider/storage"
)

// testTokenReplay: SetTokenReplay keeps what a rotated token's replay
// answers on its record, only on an inactive token, and leaves the
// indexes alone (revocation by request ID still finds it).
func testTokenReplay(t *testing.T, s storage.Store) {
	ctx := t.Context()
	r := token(storage.KindRefreshToken, "rotated", "req-1")
	ok(t, s.CreateToken(ctx, r), "create")
	until := created().Add(30e9)
	isErr(t, s.SetTokenReplay(ctx, r.Kind, r.Signature, []byte("sealed"), until), storage.ErrAlreadyExists, "replay on an active token")
	isErr(t, s.SetTokenReplay(ctx, r.Kind, "never-stored", []byte("sealed"), until), storage.ErrNotFound, "replay on a missing token")

	txCtx, err := s.BeginTx(ctx)
	ok(t, err, "begin")
	ok(t, s.DeactivateToken(txCtx, r.Kind, r.Signature), "deactivate in tx")
	ok(t, s.SetTokenReplay(txCtx, r.Kind, r.Signature, []byte("sealed"), until), "replay in tx")
	ok(t, s.CommitTx(txCtx), "commit")

	got, err := s.GetToken(ctx, r.Kind, r.Signature)
	ok(t, err, "get")
	want := r
	want.Active, want.Replay, want.ReplayUntil = false, []byte("sealed"), until
	same(t, got, want, "token with its replay")

	ok(t, s.RevokeByRequestID(ctx, r.Kind, r.RequestID), "revoke the family")
	_, err = s.GetToken(ctx, r.Kind, r.Signature)
	isErr(t, err, storage.ErrNotFound, "get after revoking")
}
