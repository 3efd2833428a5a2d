package storagetest

import (
	"testing"
	"time"

	"github.com/smallsso/provider/storage"
)

// Opener opens a Store over one fixed location (a file, a database). Each
// call returns a new Store over the same data; it fails t itself.
type Opener func() storage.Store

// RunReopen checks that data and indexes survive Close and a fresh open.
// It is a separate entry point because not every backend can reopen (an
// in-memory one cannot). newOpener is called once per subtest and returns
// an Opener over a new, empty location. The suite closes every Store it
// opens.
func RunReopen(t *testing.T, newOpener func(t *testing.T) Opener) {
	for _, st := range []struct {
		name string
		run  func(t *testing.T, h *handle)
	}{
		{"RecordsSurvive", testRecordsSurvive},
		{"IndexesSurvive", testIndexesSurvive},
		{"CommittedTxSurvives", testCommittedTxSurvives},
	} {
		t.Run(st.name, func(t *testing.T) {
			h := &handle{open: newOpener(t)}
			h.s = h.open()
			t.Cleanup(func() {
				if h.s == nil {
					return
				}
				if err := h.s.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			st.run(t, h)
		})
	}
}

// handle tracks the one open Store of a reopen subtest, so cleanup closes
// it whichever step the test stops at.
type handle struct {
	open Opener
	s    storage.Store
}

func (h *handle) reopen(t *testing.T) storage.Store {
	t.Helper()
	s := h.s
	h.s = nil
	ok(t, s.Close(), "close before reopen")
	h.s = h.open()
	return h.s
}

func testRecordsSurvive(t *testing.T, h *handle) {
	ctx := t.Context()
	s := h.s
	u, c := user("u-alice", "alice"), client("c-app")
	var tokens []storage.TokenRequest
	for _, kind := range storage.TokenKinds {
		tokens = append(tokens, token(kind, "sig-"+string(kind), "req-1"))
	}
	sess := session("sess-1", u.ID)
	cons := consent(u.ID, c.ID)
	j := storage.JTI{ID: "jti-1", ExpiresAt: now().Add(time.Hour)}

	ok(t, s.CreateUser(ctx, u), "create user")
	ok(t, s.CreateClient(ctx, c), "create client")
	for _, r := range tokens {
		ok(t, s.CreateToken(ctx, r), "create "+string(r.Kind)+" token")
	}
	ok(t, s.DeactivateToken(ctx, storage.KindRefreshToken, "sig-refresh"), "deactivate refresh token")
	ok(t, s.CreateBrowserSession(ctx, sess), "create session")
	ok(t, s.SaveConsent(ctx, cons), "save consent")
	ok(t, s.CreateJTI(ctx, j, now()), "create jti")

	s = h.reopen(t)

	gotU, err := s.GetUser(ctx, u.ID)
	ok(t, err, "get user after reopen")
	same(t, gotU, u, "user after reopen")
	gotC, err := s.GetClient(ctx, c.ID)
	ok(t, err, "get client after reopen")
	same(t, gotC, c, "client after reopen")
	for _, want := range tokens {
		if want.Kind == storage.KindRefreshToken {
			want.Active = false
		}
		got, err := s.GetToken(ctx, want.Kind, want.Signature)
		ok(t, err, "get "+string(want.Kind)+" token after reopen")
		same(t, got, want, string(want.Kind)+" token after reopen")
	}
	gotS, err := s.GetBrowserSession(ctx, sess.ID)
	ok(t, err, "get session after reopen")
	same(t, gotS, sess, "session after reopen")
	gotCons, err := s.GetConsent(ctx, cons.UserID, cons.ClientID)
	ok(t, err, "get consent after reopen")
	same(t, gotCons, cons, "consent after reopen")
	gotJ, err := s.GetJTI(ctx, j.ID)
	ok(t, err, "get jti after reopen")
	same(t, gotJ, j, "jti after reopen")
}

func testIndexesSurvive(t *testing.T, h *handle) {
	ctx := t.Context()
	s := h.s
	ok(t, s.CreateUser(ctx, user("u-alice", "alice")), "create user")
	ok(t, s.CreateToken(ctx, token(storage.KindAccessToken, "a1", "req-1")), "create a1")
	ok(t, s.CreateToken(ctx, token(storage.KindAccessToken, "a2", "req-1")), "create a2")
	ok(t, s.SaveConsent(ctx, consent("u-alice", "c1")), "save consent c1")
	ok(t, s.SaveConsent(ctx, consent("u-alice", "c2")), "save consent c2")
	expired := session("sess-old", "u-alice")
	expired.ExpiresAt = now().Add(-time.Hour)
	ok(t, s.CreateBrowserSession(ctx, expired), "create expired session")

	s = h.reopen(t)

	got, err := s.GetUserByUsername(ctx, "alice")
	ok(t, err, "get user by username after reopen")
	if got.ID != "u-alice" {
		t.Fatalf("username index after reopen points at %q", got.ID)
	}
	isErr(t, s.CreateUser(ctx, user("u-other", "alice")), storage.ErrAlreadyExists, "duplicate username after reopen")
	consents, err := s.ListConsents(ctx, "u-alice")
	ok(t, err, "list consents after reopen")
	if len(consents) != 2 {
		t.Fatalf("list consents after reopen: got %d, want 2", len(consents))
	}
	ok(t, s.RevokeByRequestID(ctx, storage.KindAccessToken, "req-1"), "revoke after reopen")
	for _, sig := range []string{"a1", "a2"} {
		_, err := s.GetToken(ctx, storage.KindAccessToken, sig)
		isErr(t, err, storage.ErrNotFound, "token "+sig+" revoked after reopen")
	}
	n, err := s.GarbageCollect(ctx, now())
	ok(t, err, "garbage collect after reopen")
	if n != 1 {
		t.Fatalf("garbage collect after reopen removed %d records, want 1", n)
	}
}

func testCommittedTxSurvives(t *testing.T, h *handle) {
	ctx := t.Context()
	s := h.s
	txCtx, err := s.BeginTx(ctx)
	ok(t, err, "begin committed tx")
	ok(t, s.CreateUser(txCtx, user("u-alice", "alice")), "create in committed tx")
	ok(t, s.CommitTx(txCtx), "commit")
	txCtx, err = s.BeginTx(ctx)
	ok(t, err, "begin rolled back tx")
	ok(t, s.CreateUser(txCtx, user("u-bob", "bob")), "create in rolled back tx")
	ok(t, s.RollbackTx(txCtx), "rollback")

	s = h.reopen(t)

	_, err = s.GetUser(ctx, "u-alice")
	ok(t, err, "committed user after reopen")
	_, err = s.GetUser(ctx, "u-bob")
	isErr(t, err, storage.ErrNotFound, "rolled back user after reopen")
}
