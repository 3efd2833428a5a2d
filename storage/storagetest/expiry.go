package storagetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/smallsso/provider/storage"
)

func testGarbageCollect(t *testing.T, s storage.Store) {
	ctx := t.Context()
	gcAt := now()
	past, future := gcAt.Add(-time.Hour), gcAt.Add(time.Hour)

	expiredCode := token(storage.KindAuthorizeCode, "expired-code", "r1")
	expiredCode.ExpiresAt = past
	usedAccess := token(storage.KindAccessToken, "expired-used", "r1")
	usedAccess.ExpiresAt = past
	atCutoff := token(storage.KindAccessToken, "expires-at-cutoff", "r2")
	atCutoff.ExpiresAt = gcAt // not before now, so kept
	live := token(storage.KindRefreshToken, "live", "r1")
	live.ExpiresAt = future
	forever := token(storage.KindAccessToken, "no-expiry", "r3")
	forever.ExpiresAt = time.Time{}
	for _, r := range []storage.TokenRequest{expiredCode, usedAccess, atCutoff, live, forever} {
		ok(t, s.CreateToken(ctx, r), "create token "+r.Signature)
	}
	ok(t, s.DeactivateToken(ctx, usedAccess.Kind, usedAccess.Signature), "deactivate expired-used")

	expiredSess, liveSess := session("sess-expired", "u1"), session("sess-live", "u1")
	expiredSess.ExpiresAt = past
	liveSess.ExpiresAt = future
	expiredCons, liveCons, foreverCons := consent("u1", "c-expired"), consent("u1", "c-live"), consent("u1", "c-forever")
	expiredCons.ExpiresAt = past
	liveCons.ExpiresAt = future
	expiredJTI := storage.JTI{ID: "jti-expired", ExpiresAt: past}
	liveJTI := storage.JTI{ID: "jti-live", ExpiresAt: future}
	ok(t, s.CreateBrowserSession(ctx, expiredSess), "create expired session")
	ok(t, s.CreateBrowserSession(ctx, liveSess), "create live session")
	for _, c := range []storage.Consent{expiredCons, liveCons, foreverCons} {
		ok(t, s.SaveConsent(ctx, c), "save consent "+c.ClientID)
	}
	ok(t, s.CreateJTI(ctx, expiredJTI, now()), "create expired jti")
	ok(t, s.CreateJTI(ctx, liveJTI, now()), "create live jti")

	n, err := s.GarbageCollect(ctx, gcAt)
	ok(t, err, "garbage collect")
	if n != 5 {
		t.Errorf("garbage collect removed %d records, want 5", n)
	}

	for _, r := range []storage.TokenRequest{expiredCode, usedAccess} {
		_, err := s.GetToken(ctx, r.Kind, r.Signature)
		isErr(t, err, storage.ErrNotFound, "collected token "+r.Signature)
	}
	for _, r := range []storage.TokenRequest{atCutoff, live, forever} {
		got, err := s.GetToken(ctx, r.Kind, r.Signature)
		ok(t, err, "kept token "+r.Signature)
		same(t, got, r, "kept token "+r.Signature)
	}
	_, err = s.GetBrowserSession(ctx, expiredSess.ID)
	isErr(t, err, storage.ErrNotFound, "collected session")
	_, err = s.GetBrowserSession(ctx, liveSess.ID)
	ok(t, err, "kept session")
	_, err = s.GetConsent(ctx, expiredCons.UserID, expiredCons.ClientID)
	isErr(t, err, storage.ErrNotFound, "collected consent")
	list, err := s.ListConsents(ctx, "u1")
	ok(t, err, "list consents after garbage collect")
	sortConsents(list)
	same(t, list, []storage.Consent{foreverCons, liveCons}, "consents after garbage collect")
	_, err = s.GetJTI(ctx, expiredJTI.ID)
	isErr(t, err, storage.ErrNotFound, "collected jti")
	_, err = s.GetJTI(ctx, liveJTI.ID)
	ok(t, err, "kept jti")

	n, err = s.GarbageCollect(ctx, gcAt)
	ok(t, err, "garbage collect again")
	if n != 0 {
		t.Errorf("second garbage collect removed %d records, want 0", n)
	}
}

// testGarbageCollectCleansIndexes checks that collected and deleted
// records leave nothing behind that a later record could trip over.
func testGarbageCollectCleansIndexes(t *testing.T, s storage.Store) {
	ctx := t.Context()
	past := now().Add(-time.Hour)
	old := token(storage.KindAccessToken, "sig", "r-old")
	old.ExpiresAt = past
	deleted := token(storage.KindAccessToken, "deleted", "r-old")
	deleted.ExpiresAt = past
	sess := session("sess", "u1")
	sess.ExpiresAt = past
	ok(t, s.CreateToken(ctx, old), "create expired token")
	ok(t, s.CreateToken(ctx, deleted), "create expired token to delete")
	ok(t, s.DeleteToken(ctx, deleted.Kind, deleted.Signature), "delete it before collection")
	ok(t, s.CreateBrowserSession(ctx, sess), "create expired session")

	n, err := s.GarbageCollect(ctx, now())
	ok(t, err, "garbage collect")
	if n != 2 {
		t.Fatalf("garbage collect removed %d records, want 2 (a deleted record is not counted)", n)
	}

	reborn := token(storage.KindAccessToken, "sig", "r-new")
	ok(t, s.CreateToken(ctx, reborn), "create under a collected signature")
	ok(t, s.RevokeByRequestID(ctx, reborn.Kind, "r-old"), "revoke the collected request id")
	got, err := s.GetToken(ctx, reborn.Kind, reborn.Signature)
	ok(t, err, "new token after revoking the collected request id")
	same(t, got, reborn, "new token after revoking the collected request id")
	ok(t, s.RevokeByRequestID(ctx, reborn.Kind, "r-new"), "revoke the new request id")
	_, err = s.GetToken(ctx, reborn.Kind, reborn.Signature)
	isErr(t, err, storage.ErrNotFound, "new token after revoking its request id")

	ok(t, s.CreateBrowserSession(ctx, session(sess.ID, "u2")), "create under a collected session id")
}

// testGarbageCollectSkipsReplaced checks that replacing a record drops its
// old expiry, so collection goes by the record as it is now.
func testGarbageCollectSkipsReplaced(t *testing.T, s storage.Store) {
	ctx := t.Context()
	past, future := now().Add(-time.Hour), now().Add(time.Hour)

	extended := consent("u1", "c-extended")
	extended.ExpiresAt = past
	ok(t, s.SaveConsent(ctx, extended), "save expired consent")
	extended.ExpiresAt = future
	ok(t, s.SaveConsent(ctx, extended), "extend it")

	unbounded := consent("u1", "c-unbounded")
	unbounded.ExpiresAt = past
	ok(t, s.SaveConsent(ctx, unbounded), "save expired consent")
	unbounded.ExpiresAt = time.Time{}
	ok(t, s.SaveConsent(ctx, unbounded), "make it never expire")

	ok(t, s.CreateJTI(ctx, storage.JTI{ID: "jti", ExpiresAt: past}, now()), "create expired jti")
	ok(t, s.CreateJTI(ctx, storage.JTI{ID: "jti", ExpiresAt: future}, now()), "reuse its id")

	n, err := s.GarbageCollect(ctx, now())
	ok(t, err, "garbage collect")
	if n != 0 {
		t.Errorf("garbage collect removed %d records, want 0", n)
	}
	for _, c := range []storage.Consent{extended, unbounded} {
		got, err := s.GetConsent(ctx, c.UserID, c.ClientID)
		ok(t, err, "replaced consent "+c.ClientID)
		same(t, got, c, "replaced consent "+c.ClientID)
	}
	_, err = s.GetJTI(ctx, "jti")
	ok(t, err, "replaced jti")
}

// testGarbageCollectKeepsReuseDetection checks that collection goes by
// ExpiresAt alone: a used code or a rotated refresh token that has not
// expired is what detects its replay, and stays.
func testGarbageCollectKeepsReuseDetection(t *testing.T, s storage.Store) {
	ctx := t.Context()
	gcAt := now()
	usedCode := token(storage.KindAuthorizeCode, "used-code", "r1")
	rotated := token(storage.KindRefreshToken, "rotated", "r1")
	liveRefresh := token(storage.KindRefreshToken, "live", "r1")
	expiredUsed := token(storage.KindRefreshToken, "expired-used", "r0")
	expiredUsed.ExpiresAt = gcAt.Add(-time.Hour)
	for _, r := range []storage.TokenRequest{usedCode, rotated, liveRefresh, expiredUsed} {
		ok(t, s.CreateToken(ctx, r), "create "+r.Signature)
	}
	for _, r := range []storage.TokenRequest{usedCode, rotated, expiredUsed} {
		ok(t, s.DeactivateToken(ctx, r.Kind, r.Signature), "deactivate "+r.Signature)
	}

	n, err := s.GarbageCollect(ctx, gcAt)
	ok(t, err, "garbage collect")
	if n != 1 {
		t.Errorf("garbage collect removed %d records, want 1 (the expired one)", n)
	}
	_, err = s.GetToken(ctx, expiredUsed.Kind, expiredUsed.Signature)
	isErr(t, err, storage.ErrNotFound, "expired used token")
	for _, r := range []storage.TokenRequest{usedCode, rotated} {
		got, err := s.GetToken(ctx, r.Kind, r.Signature)
		ok(t, err, "unexpired used token "+r.Signature)
		r.Active = false
		same(t, got, r, "unexpired used token "+r.Signature)
		// The replay is still told apart from an unknown token.
		isErr(t, s.DeactivateToken(ctx, r.Kind, r.Signature), storage.ErrInactive, "replay of "+r.Signature)
	}
	got, err := s.GetToken(ctx, liveRefresh.Kind, liveRefresh.Signature)
	ok(t, err, "live token")
	same(t, got, liveRefresh, "live token")
}

// testGarbageCollectLetsWritersIn checks that a pass over a large backlog
// is many transactions, not one: writes made while it runs complete
// between two of them. No clock is read; the proof is in what the writer
// sees. Records expire one second apart and are removed oldest first, so
// while the first is gone and the last is not, the pass has committed part
// of its work and not the rest.
func testGarbageCollectLetsWritersIn(t *testing.T, s storage.Store) {
	ctx := t.Context()
	const expired = 20000
	gcAt := now()
	base := gcAt.Truncate(time.Second).Add(-(expired + 1) * time.Second)
	sig := func(i int) string { return fmt.Sprintf("expired-%05d", i) }
	txCtx, err := s.BeginTx(ctx)
	ok(t, err, "begin seeding")
	for i := range expired {
		r := storage.TokenRequest{
			Kind: storage.KindAccessToken, Signature: sig(i), RequestID: sig(i), ClientID: "c-app",
			RequestedAt: created(), Active: true, ExpiresAt: base.Add(time.Duration(i) * time.Second),
		}
		if err := s.CreateToken(txCtx, r); err != nil {
			_ = s.RollbackTx(txCtx)
			t.Fatalf("seed %s: %v", r.Signature, err)
		}
	}
	ok(t, s.CommitTx(txCtx), "commit seeding")

	gone := func(i int) bool {
		_, err := s.GetToken(ctx, storage.KindAccessToken, sig(i))
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("get %s during garbage collection: %v", sig(i), err)
		}
		return err != nil
	}
	done := make(chan struct{})
	var (
		removed int
		gcErr   error
	)
	go func() {
		defer close(done)
		removed, gcErr = s.GarbageCollect(ctx, gcAt)
	}()

	var written []storage.TokenRequest
	inside := 0 // writes that completed while the pass was under way
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		started := gone(0)
		r := token(storage.KindRefreshToken, fmt.Sprintf("written-%05d", len(written)), "r-writer")
		ok(t, s.CreateToken(ctx, r), "create during garbage collection")
		written = append(written, r)
		if started && !gone(expired-1) {
			inside++
		}
	}
	ok(t, gcErr, "garbage collect")
	if removed != expired {
		t.Errorf("garbage collect removed %d records, want %d", removed, expired)
	}
	t.Logf("%d writes during the pass, %d of them between two of its transactions", len(written), inside)
	if inside == 0 {
		t.Errorf("none of %d writes completed between two transactions of the pass over %d expired records: it ran as one transaction", len(written), expired)
	}
	for _, i := range []int{0, expired / 2, expired - 1} {
		if !gone(i) {
			t.Errorf("expired %s kept", sig(i))
		}
	}
	for _, r := range written {
		got, err := s.GetToken(ctx, r.Kind, r.Signature)
		ok(t, err, "token written during garbage collection "+r.Signature)
		same(t, got, r, "token written during garbage collection")
	}
	n, err := s.GarbageCollect(ctx, gcAt)
	ok(t, err, "garbage collect again")
	if n != 0 {
		t.Errorf("second garbage collect removed %d records, want 0", n)
	}
}
