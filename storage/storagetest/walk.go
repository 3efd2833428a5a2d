package storagetest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smallsso/provider/storage"
)

// testWalk checks that the walks see every record of their family, inactive
// and expired ones included (migrate-storage moves them all), with every
// field, and that fn's error stops a walk.
func testWalk(t *testing.T, s storage.Store) {
	ctx := t.Context()
	code := token(storage.KindAuthorizeCode, "sig-code", "req-1")
	refresh := token(storage.KindRefreshToken, "sig-refresh", "req-1")
	used := token(storage.KindRefreshToken, "sig-used", "req-0")
	used.ExpiresAt = now().Add(-time.Minute)
	for _, r := range []storage.TokenRequest{code, refresh, used} {
		ok(t, s.CreateToken(ctx, r), "create "+r.Signature)
	}
	ok(t, s.DeactivateToken(ctx, storage.KindRefreshToken, used.Signature), "deactivate")
	used.Active = false
	until := now().Add(time.Minute)
	ok(t, s.SetTokenReplay(ctx, storage.KindRefreshToken, used.Signature, []byte("sealed"), until), "set replay")
	used.Replay, used.ReplayUntil = []byte("sealed"), until

	var refreshes []storage.TokenRequest
	ok(t, s.WalkTokens(ctx, storage.KindRefreshToken, func(r storage.TokenRequest) error {
		refreshes = append(refreshes, r)
		return nil
	}), "walk refresh tokens")
	slices.SortFunc(refreshes, func(a, b storage.TokenRequest) int { return strings.Compare(a.Signature, b.Signature) })
	same(t, refreshes, []storage.TokenRequest{refresh, used}, "refresh tokens walked")

	var codes []storage.TokenRequest
	ok(t, s.WalkTokens(ctx, storage.KindAuthorizeCode, func(r storage.TokenRequest) error {
		codes = append(codes, r)
		return nil
	}), "walk codes")
	same(t, codes, []storage.TokenRequest{code}, "codes walked")

	sess := session("s1", "u1")
	sess.AMR = []string{"pwd", "otp", "mfa"}
	ok(t, s.CreateBrowserSession(ctx, sess), "create session")
	var sessions []storage.BrowserSession
	ok(t, s.WalkBrowserSessions(ctx, func(b storage.BrowserSession) error {
		sessions = append(sessions, b)
		return nil
	}), "walk sessions")
	same(t, sessions, []storage.BrowserSession{sess}, "sessions walked")

	c1, c2 := consent("u1", "c1"), consent("u2", "c2")
	ok(t, s.SaveConsent(ctx, c1), "save consent")
	ok(t, s.SaveConsent(ctx, c2), "save consent")
	var consents []storage.Consent
	ok(t, s.WalkConsents(ctx, func(c storage.Consent) error {
		consents = append(consents, c)
		return nil
	}), "walk consents")
	sortConsents(consents)
	same(t, consents, []storage.Consent{c1, c2}, "consents walked")

	j := storage.JTI{ID: "jti-1", ExpiresAt: now().Add(time.Hour)}
	ok(t, s.CreateJTI(ctx, j, now()), "create jti")
	var jtis []storage.JTI
	ok(t, s.WalkJTIs(ctx, func(j storage.JTI) error {
		jtis = append(jtis, j)
		return nil
	}), "walk jtis")
	same(t, jtis, []storage.JTI{j}, "jtis walked")

	ok(t, s.CreateUser(ctx, user("u-alice", "alice")), "create alice")
	ok(t, s.CreateUser(ctx, user("u-bob", "bob")), "create bob")
	ok(t, s.CreateUser(ctx, user("u-carol", "carol")), "create carol")
	fa, fb := factors("u-alice"), factors("u-bob")
	fb.TOTP = nil
	putFactors(t, s, fa)
	putFactors(t, s, fb)
	var fs []storage.Factors
	ok(t, s.WalkFactors(ctx, func(f storage.Factors) error {
		fs = append(fs, f)
		return nil
	}), "walk factors")
	slices.SortFunc(fs, func(a, b storage.Factors) int { return strings.Compare(a.UserID, b.UserID) })
	same(t, fs, []storage.Factors{fa, fb}, "factors walked")
	calls := 0
	stop := errors.New("stop")
	isErr(t, s.WalkFactors(ctx, func(storage.Factors) error {
		calls++
		return stop
	}), stop, "factors walk stopped by fn")
	if calls != 1 {
		t.Fatalf("factors walk went on after fn failed: %d calls", calls)
	}

	calls = 0
	err := s.WalkTokens(ctx, storage.KindRefreshToken, func(storage.TokenRequest) error {
		calls++
		return stop
	})
	isErr(t, err, stop, "walk stopped by fn")
	if calls != 1 {
		t.Fatalf("walk went on after fn failed: %d calls", calls)
	}
}
