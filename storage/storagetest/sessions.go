package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smallsso/provider/storage"
)

func testBrowserSessions(t *testing.T, s storage.Store) {
	ctx := t.Context()
	sess := session("sess-1", "u-alice")
	ok(t, s.CreateBrowserSession(ctx, sess), "create")
	got, err := s.GetBrowserSession(ctx, sess.ID)
	ok(t, err, "get")
	same(t, got, sess, "get")

	dup := session(sess.ID, "u-mallory")
	isErr(t, s.CreateBrowserSession(ctx, dup), storage.ErrAlreadyExists, "create with a taken id")
	got, err = s.GetBrowserSession(ctx, sess.ID)
	ok(t, err, "get after refused create")
	same(t, got, sess, "session after refused create")

	// Adding a client and extending the session is one atomic update;
	// an error from fn changes nothing.
	later := sess.ExpiresAt.Add(time.Hour)
	ok(t, s.UpdateBrowserSession(ctx, sess.ID, func(b storage.BrowserSession) (storage.BrowserSession, error) {
		b.ClientIDs = append(b.ClientIDs, "c1")
		b.ExpiresAt = later
		return b, nil
	}), "update")
	want := sess
	want.ClientIDs, want.ExpiresAt = []string{"c1"}, later
	got, err = s.GetBrowserSession(ctx, sess.ID)
	ok(t, err, "get after update")
	same(t, got, want, "session after update")
	boom := errors.New("boom")
	isErr(t, s.UpdateBrowserSession(ctx, sess.ID, func(b storage.BrowserSession) (storage.BrowserSession, error) {
		b.ClientIDs = nil
		return b, boom
	}), boom, "update with failing fn")
	got, err = s.GetBrowserSession(ctx, sess.ID)
	ok(t, err, "get after failed update")
	same(t, got, want, "session after failed update")
	isErr(t, s.UpdateBrowserSession(ctx, "never-stored", func(b storage.BrowserSession) (storage.BrowserSession, error) { return b, nil }), storage.ErrNotFound, "update missing")
	// The extended expiry is what garbage collection goes by.
	n, err := s.GarbageCollect(ctx, sess.ExpiresAt.Add(time.Minute))
	ok(t, err, "gc before the new expiry")
	_, err = s.GetBrowserSession(ctx, sess.ID)
	ok(t, err, fmt.Sprintf("session kept by gc (%d removed)", n))

	_, err = s.GetBrowserSession(ctx, "never-stored")
	isErr(t, err, storage.ErrNotFound, "get missing")
	ok(t, s.DeleteBrowserSession(ctx, sess.ID), "delete")
	_, err = s.GetBrowserSession(ctx, sess.ID)
	isErr(t, err, storage.ErrNotFound, "get deleted")
	isErr(t, s.DeleteBrowserSession(ctx, sess.ID), storage.ErrNotFound, "delete twice")
}

func testConsents(t *testing.T, s storage.Store) {
	ctx := t.Context()
	_, err := s.GetConsent(ctx, "u1", "c1")
	isErr(t, err, storage.ErrNotFound, "get missing")
	list, err := s.ListConsents(ctx, "u1")
	ok(t, err, "list for a user without consents")
	if len(list) != 0 {
		t.Fatalf("list for a user without consents: got %d", len(list))
	}

	c1, c2 := consent("u1", "c1"), consent("u1", "c2")
	other := consent("u2", "c1")
	prefixed := consent("u10", "c1") // its user ID starts with "u1"
	for _, c := range []storage.Consent{c1, c2, other, prefixed} {
		ok(t, s.SaveConsent(ctx, c), "save "+c.UserID+"/"+c.ClientID)
	}
	got, err := s.GetConsent(ctx, "u1", "c1")
	ok(t, err, "get u1/c1")
	same(t, got, c1, "get u1/c1")
	list, err = s.ListConsents(ctx, "u1")
	ok(t, err, "list u1")
	sortConsents(list)
	same(t, list, []storage.Consent{c1, c2}, "list u1")

	replaced := consent("u1", "c1")
	replaced.Scopes = []string{"openid"}
	replaced.GrantedAt = created().Add(time.Hour)
	replaced.ExpiresAt = now().Add(time.Hour)
	ok(t, s.SaveConsent(ctx, replaced), "save u1/c1 again")
	got, err = s.GetConsent(ctx, "u1", "c1")
	ok(t, err, "get replaced u1/c1")
	same(t, got, replaced, "replaced u1/c1")
	list, err = s.ListConsents(ctx, "u1")
	ok(t, err, "list u1 after replace")
	sortConsents(list)
	same(t, list, []storage.Consent{replaced, c2}, "list u1 after replace")

	ok(t, s.DeleteConsent(ctx, "u1", "c1"), "delete u1/c1")
	_, err = s.GetConsent(ctx, "u1", "c1")
	isErr(t, err, storage.ErrNotFound, "get deleted u1/c1")
	isErr(t, s.DeleteConsent(ctx, "u1", "c1"), storage.ErrNotFound, "delete u1/c1 twice")
	list, err = s.ListConsents(ctx, "u1")
	ok(t, err, "list u1 after delete")
	same(t, list, []storage.Consent{c2}, "list u1 after delete")
	got, err = s.GetConsent(ctx, "u2", "c1")
	ok(t, err, "get u2/c1 after deleting u1/c1")
	same(t, got, other, "u2/c1 after deleting u1/c1")
}

func testJTIs(t *testing.T, s storage.Store) {
	ctx := t.Context()
	_, err := s.GetJTI(ctx, "never-stored")
	isErr(t, err, storage.ErrNotFound, "get missing")

	live := storage.JTI{ID: "jti-live", ExpiresAt: now().Add(time.Hour)}
	ok(t, s.CreateJTI(ctx, live, now()), "create")
	got, err := s.GetJTI(ctx, live.ID)
	ok(t, err, "get")
	same(t, got, live, "get")
	replay := storage.JTI{ID: live.ID, ExpiresAt: now().Add(2 * time.Hour)}
	isErr(t, s.CreateJTI(ctx, replay, now()), storage.ErrAlreadyExists, "create an unexpired id again")
	got, err = s.GetJTI(ctx, live.ID)
	ok(t, err, "get after refused create")
	same(t, got, live, "jti after refused create")

	expired := storage.JTI{ID: "jti-expired", ExpiresAt: now().Add(-time.Hour)}
	ok(t, s.CreateJTI(ctx, expired, now()), "create expired")
	fresh := storage.JTI{ID: expired.ID, ExpiresAt: now().Add(time.Hour)}
	ok(t, s.CreateJTI(ctx, fresh, now()), "create over an expired id")
	got, err = s.GetJTI(ctx, expired.ID)
	ok(t, err, "get replaced")
	same(t, got, fresh, "replaced jti")
	isErr(t, s.CreateJTI(ctx, fresh, now()), storage.ErrAlreadyExists, "create the replacement again")

	// Expiry is judged by the caller's clock, not the backend's.
	later := storage.JTI{ID: live.ID, ExpiresAt: now().Add(3 * time.Hour)}
	ok(t, s.CreateJTI(ctx, later, now().Add(2*time.Hour)), "create at a time the old one has expired")
	got, err = s.GetJTI(ctx, live.ID)
	ok(t, err, "get after reuse")
	same(t, got, later, "jti reused at a later time")
}

func testListUserSessions(t *testing.T, s storage.Store) {
	ctx := t.Context()
	a1, a2 := session("sess-a1", "u-alice"), session("sess-a2", "u-alice")
	a2.ClientIDs = []string{"c1"}
	for _, sess := range []storage.BrowserSession{a1, a2, session("sess-b", "u-bob"), session("sess-a10", "u-alice0")} {
		ok(t, s.CreateBrowserSession(ctx, sess), "create "+sess.ID)
	}
	got, err := s.ListUserSessions(ctx, "u-alice")
	ok(t, err, "list alice's sessions")
	slices.SortFunc(got, func(x, y storage.BrowserSession) int { return strings.Compare(x.ID, y.ID) })
	same(t, got, []storage.BrowserSession{a1, a2}, "alice's sessions")

	ok(t, s.DeleteBrowserSession(ctx, a1.ID), "delete one")
	got, err = s.ListUserSessions(ctx, "u-alice")
	ok(t, err, "list after delete")
	same(t, got, []storage.BrowserSession{a2}, "alice's sessions after a delete")

	got, err = s.ListUserSessions(ctx, "u-nobody")
	ok(t, err, "list a stranger's sessions")
	if len(got) != 0 {
		t.Fatalf("a user without sessions has %d", len(got))
	}
}
