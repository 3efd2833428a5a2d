package storagetest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smallsso/provider/storage"
)

// userToken is a token of subject granted to clientID.
func userToken(kind storage.TokenKind, sig, subject, clientID string) storage.TokenRequest {
	r := token(kind, sig, "req-"+sig)
	r.Subject, r.ClientID = subject, clientID
	return r
}

func testListSubjectTokens(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mine := userToken(storage.KindRefreshToken, "f-alice-app", "u-alice", "c-app")
	other := userToken(storage.KindRefreshToken, "f-alice-other", "u-alice", "c-other")
	other.Active = false // rotated: still listed, the caller decides
	bob := userToken(storage.KindRefreshToken, "f-bob-app", "u-bob", "c-app")
	for _, r := range []storage.TokenRequest{
		mine, other, bob,
		userToken(storage.KindRefreshToken, "f-alice2-app", "u-alice2", "c-app"),
		userToken(storage.KindAccessToken, "a-alice-app", "u-alice", "c-app"),
		userToken(storage.KindRefreshToken, "f-client-only", "", "c-app"),
	} {
		ok(t, s.CreateToken(ctx, r), "create "+r.Signature)
	}
	got, err := s.ListSubjectTokens(ctx, storage.KindRefreshToken, "u-alice")
	ok(t, err, "list alice's refresh tokens")
	slices.SortFunc(got, func(a, b storage.TokenRequest) int { return strings.Compare(a.Signature, b.Signature) })
	same(t, got, []storage.TokenRequest{mine, other}, "alice's refresh tokens")

	got, err = s.ListSubjectTokens(ctx, storage.KindRefreshToken, "u-nobody")
	ok(t, err, "list a stranger's tokens")
	if len(got) != 0 {
		t.Fatalf("a subject without tokens has %d", len(got))
	}
	got, err = s.ListSubjectTokens(ctx, storage.KindRefreshToken, "")
	ok(t, err, "list tokens without a subject")
	if len(got) != 0 {
		t.Fatalf("the empty subject has %d tokens, want none (client_credentials tokens belong to no one)", len(got))
	}

	// A token removed by any path leaves the list, and a signature taken
	// again by someone else is theirs only.
	ok(t, s.DeleteToken(ctx, other.Kind, other.Signature), "delete "+other.Signature)
	ok(t, s.RevokeByRequestID(ctx, mine.Kind, mine.RequestID), "revoke "+mine.Signature+" by request id")
	expired := userToken(storage.KindRefreshToken, "f-alice-expired", "u-alice", "c-app")
	expired.ExpiresAt = now().Add(-time.Hour)
	ok(t, s.CreateToken(ctx, expired), "create "+expired.Signature)
	_, err = s.GarbageCollect(ctx, now())
	ok(t, err, "garbage collect")
	bobs := userToken(storage.KindRefreshToken, "f-bob-other", "u-bob", "c-other")
	bobs.Signature = other.Signature
	ok(t, s.CreateToken(ctx, bobs), "create "+other.Signature+" again for bob")
	got, err = s.ListSubjectTokens(ctx, storage.KindRefreshToken, "u-alice")
	ok(t, err, "list alice's refresh tokens after removals")
	if len(got) != 0 {
		t.Fatalf("alice still has %d refresh tokens after they were removed: %+v", len(got), got)
	}
	got, err = s.ListSubjectTokens(ctx, storage.KindRefreshToken, "u-bob")
	ok(t, err, "list bob's refresh tokens")
	slices.SortFunc(got, func(a, b storage.TokenRequest) int { return strings.Compare(a.Signature, b.Signature) })
	same(t, got, []storage.TokenRequest{bobs, bob}, "bob's refresh tokens")
}

func testRevokeSubjectClient(t *testing.T, s storage.Store) {
	ctx := t.Context()
	doomed := []storage.TokenRequest{
		userToken(storage.KindAuthorizeCode, "alice-app", "u-alice", "c-app"),
		userToken(storage.KindAccessToken, "alice-app", "u-alice", "c-app"),
		userToken(storage.KindRefreshToken, "alice-app", "u-alice", "c-app"),
		userToken(storage.KindOIDC, "alice-app", "u-alice", "c-app"),
		userToken(storage.KindRefreshToken, "alice-app-2", "u-alice", "c-app"),
	}
	kept := []storage.TokenRequest{
		userToken(storage.KindRefreshToken, "alice-other", "u-alice", "c-other"),
		userToken(storage.KindRefreshToken, "bob-app", "u-bob", "c-app"),
		userToken(storage.KindAccessToken, "bob-app", "u-bob", "c-app"),
		userToken(storage.KindRefreshToken, "alice2-app", "u-alice2", "c-app"),
		userToken(storage.KindRefreshToken, "alice-app2", "u-alice", "c-app2"),
		userToken(storage.KindAccessToken, "client-only", "", "c-app"),
	}
	for _, r := range append(slices.Clone(doomed), kept...) {
		ok(t, s.CreateToken(ctx, r), "create "+string(r.Kind)+" "+r.Signature)
	}
	ok(t, s.RevokeSubjectClient(ctx, "u-alice", "c-app"), "revoke alice's tokens for c-app")
	ok(t, s.RevokeSubjectClient(ctx, "", "c-app"), "revoke with an empty subject: nothing")
	for _, r := range doomed {
		_, err := s.GetToken(ctx, r.Kind, r.Signature)
		isErr(t, err, storage.ErrNotFound, "get revoked "+string(r.Kind)+" "+r.Signature)
	}
	for _, r := range kept {
		got, err := s.GetToken(ctx, r.Kind, r.Signature)
		ok(t, err, "get kept "+string(r.Kind)+" "+r.Signature)
		same(t, got, r, "kept token")
	}
	ok(t, s.RevokeSubjectClient(ctx, "u-alice", "c-app"), "revoke again: nothing left, not an error")

	// The request ID index must not keep entries of the deleted tokens: a
	// token created again under the same signature and request ID is
	// revocable as usual.
	again := doomed[2]
	ok(t, s.CreateToken(ctx, again), "create the revoked signature again")
	ok(t, s.RevokeByRequestID(ctx, again.Kind, again.RequestID), "revoke it by request id")
	_, err := s.GetToken(ctx, again.Kind, again.Signature)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("token recreated after RevokeSubjectClient survived RevokeByRequestID: %v", err)
	}
}
