package storagetest

import (
	"testing"
	"time"

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

// testTokenReplayCollected: GarbageCollect strips a kept replay once its
// ReplayUntil has passed, and keeps the (inactive, unexpired) record for
// reuse detection; a replay replaced with a later one lives until then.
func testTokenReplayCollected(t *testing.T, s storage.Store) {
	ctx := t.Context()
	r := token(storage.KindRefreshToken, "rotated", "req-1")
	other := token(storage.KindRefreshToken, "rotated-later", "req-2")
	until := now()
	for _, tok := range []storage.TokenRequest{r, other} {
		ok(t, s.CreateToken(ctx, tok), "create")
		ok(t, s.DeactivateToken(ctx, tok.Kind, tok.Signature), "deactivate")
	}
	ok(t, s.SetTokenReplay(ctx, r.Kind, r.Signature, []byte("sealed"), until), "replay")
	ok(t, s.SetTokenReplay(ctx, other.Kind, other.Signature, []byte("first"), until), "replay")
	ok(t, s.SetTokenReplay(ctx, other.Kind, other.Signature, []byte("second"), until.Add(time.Minute)), "replace replay")

	n, err := s.GarbageCollect(ctx, until)
	ok(t, err, "garbage collect at the end of the grace")
	got, err := s.GetToken(ctx, r.Kind, r.Signature)
	ok(t, err, "get")
	if n != 0 || string(got.Replay) != "sealed" {
		t.Fatalf("collect at ReplayUntil: %d removed, replay %q; want 0 and the replay kept", n, got.Replay)
	}

	n, err = s.GarbageCollect(ctx, until.Add(time.Second))
	ok(t, err, "garbage collect after the grace")
	if n != 0 {
		t.Errorf("collect after the grace removed %d records, want 0", n)
	}
	got, err = s.GetToken(ctx, r.Kind, r.Signature)
	ok(t, err, "get after the grace")
	want := r
	want.Active = false
	same(t, got, want, "token after the grace: inactive, without its replay")
	got, err = s.GetToken(ctx, other.Kind, other.Signature)
	ok(t, err, "get the replaced replay")
	if string(got.Replay) != "second" {
		t.Errorf("replaced replay %q after the first grace, want kept until the second", got.Replay)
	}

	ok(t, s.SetTokenReplay(ctx, other.Kind, other.Signature, nil, time.Time{}), "clear replay")
	got, err = s.GetToken(ctx, other.Kind, other.Signature)
	ok(t, err, "get the cleared replay")
	if got.Replay != nil || !got.ReplayUntil.IsZero() {
		t.Errorf("cleared replay: %q until %v", got.Replay, got.ReplayUntil)
	}
	n, err = s.GarbageCollect(ctx, until.Add(30*time.Minute))
	ok(t, err, "garbage collect after both")
	if n != 0 {
		t.Errorf("collect removed %d records, want 0 (they expire later)", n)
	}
}
