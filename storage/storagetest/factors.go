package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/smallsso/provider/provider/mfa"
	"github.com/smallsso/provider/storage"
)

// factorRacers is how many goroutines race to use one code.
const factorRacers = 16

// testKeys are mfa.Keys from a fixed provider secret.
func testKeys() *mfa.Keys {
	return mfa.NewKeys(func() ([]byte, error) { return []byte("storagetest provider secret, 32+ bytes long"), nil })
}

// factors is a record with every field set: an authenticator app, two
// passkeys with binary IDs, and recovery codes, one of them used.
func factors(userID string) storage.Factors {
	return storage.Factors{
		UserID: userID,
		TOTP: &storage.TOTPFactor{
			SecretSealed: []byte{0x01, 0x00, 0xff, 0x80, 's', 'e', 'a', 'l', 'e', 'd'},
			LastStep:     58_000_000,
			CreatedAt:    created(),
		},
		Passkeys: []storage.Passkey{
			{ID: []byte{0x00, 0xfe, 0x10, 0x00}, Name: "Laptop", CredentialSealed: []byte("sealed-1\x00\xff"), CreatedAt: created(), LastUsedAt: created().Add(time.Hour)},
			{ID: []byte{0xff, 0xff}, Name: "Schlüssel", CredentialSealed: []byte("sealed-2"), CreatedAt: created().Add(time.Minute)},
		},
		RecoveryCodes: []storage.RecoveryCode{
			{Hash: "hash-1", UsedAt: created().Add(2 * time.Hour)},
			{Hash: "hash-2"},
			{Hash: "hash-3"},
		},
		UpdatedAt: created().Add(3 * time.Hour),
	}
}

// putFactors stores f as userID's factors, whatever was there.
func putFactors(t *testing.T, s storage.Store, f storage.Factors) {
	t.Helper()
	ok(t, s.UpdateFactors(t.Context(), f.UserID, func(storage.Factors) (storage.Factors, error) { return f, nil }), "store factors")
}

func testFactorsRoundTrip(t *testing.T, s storage.Store) {
	ctx := t.Context()
	ok(t, s.CreateUser(ctx, user("u-alice", "alice")), "create alice")
	ok(t, s.CreateUser(ctx, user("u-bob", "bob")), "create bob")

	var seen []storage.Factors
	ok(t, s.UpdateFactors(ctx, "u-alice", func(f storage.Factors) (storage.Factors, error) {
		seen = append(seen, f)
		return factors("u-alice"), nil
	}), "first update")
	for _, f := range seen {
		same(t, f, storage.Factors{UserID: "u-alice"}, "what fn gets when there are no factors yet")
	}
	want := factors("u-alice")
	got, err := s.GetFactors(ctx, "u-alice")
	ok(t, err, "get")
	same(t, got, want, "factors read back")
	if got.TOTP == nil || !got.Enrolled() {
		t.Fatal("factors read back are not enrolled")
	}

	// An update sees what was stored and replaces it whole.
	ok(t, s.UpdateFactors(ctx, "u-alice", func(f storage.Factors) (storage.Factors, error) {
		same(t, f, want, "what fn gets")
		f.TOTP = nil
		f.Passkeys = f.Passkeys[1:]
		f.RecoveryCodes[1].UsedAt = created().Add(4 * time.Hour)
		return f, nil
	}), "second update")
	want.TOTP = nil
	want.Passkeys = want.Passkeys[1:]
	want.RecoveryCodes = slices.Clone(want.RecoveryCodes)
	want.RecoveryCodes[1].UsedAt = created().Add(4 * time.Hour)
	got, err = s.GetFactors(ctx, "u-alice")
	ok(t, err, "get after second update")
	same(t, got, want, "factors after second update")

	// Another person's record is apart.
	_, err = s.GetFactors(ctx, "u-bob")
	isErr(t, err, storage.ErrNotFound, "bob has no factors")

	// The user id cannot change.
	if err := s.UpdateFactors(ctx, "u-alice", func(f storage.Factors) (storage.Factors, error) {
		f.UserID = "u-bob"
		return f, nil
	}); err == nil {
		t.Fatal("update that moved the factors to another user succeeded")
	}
	_, err = s.GetFactors(ctx, "u-bob")
	isErr(t, err, storage.ErrNotFound, "bob's factors after a refused move")
}

func testFactorsMissing(t *testing.T, s storage.Store) {
	ctx := t.Context()
	_, err := s.GetFactors(ctx, "u-alice")
	isErr(t, err, storage.ErrNotFound, "get of a user that does not exist")
	ok(t, s.CreateUser(ctx, user("u-alice", "alice")), "create alice")
	_, err = s.GetFactors(ctx, "u-alice")
	isErr(t, err, storage.ErrNotFound, "get before any factor")

	called := false
	isErr(t, s.UpdateFactors(ctx, "u-nobody", func(f storage.Factors) (storage.Factors, error) {
		called = true
		return factors("u-nobody"), nil
	}), storage.ErrNotFound, "update of an unknown user")
	if called {
		t.Error("fn ran for an unknown user")
	}
	_, err = s.GetFactors(ctx, "u-nobody")
	isErr(t, err, storage.ErrNotFound, "unknown user's factors after the refused update")
	for _, odd := range []string{"nul\x00inside", "\xff\xfe"} {
		_, err = s.GetFactors(ctx, odd)
		isErr(t, err, storage.ErrNotFound, "factors of an odd user ID")
		isErr(t, s.UpdateFactors(ctx, odd, func(f storage.Factors) (storage.Factors, error) { return f, nil }), storage.ErrNotFound, "update of an odd user ID")
	}

	ok(t, s.DeleteFactors(ctx, "u-alice"), "delete when there are none")
	ok(t, s.DeleteFactors(ctx, "u-nobody"), "delete for an unknown user")
	putFactors(t, s, factors("u-alice"))
	ok(t, s.DeleteFactors(ctx, "u-alice"), "delete")
	_, err = s.GetFactors(ctx, "u-alice")
	isErr(t, err, storage.ErrNotFound, "get after delete")
	ok(t, s.DeleteFactors(ctx, "u-alice"), "delete again")
	// After a delete, the next update starts from an empty record.
	ok(t, s.UpdateFactors(ctx, "u-alice", func(f storage.Factors) (storage.Factors, error) {
		same(t, f, storage.Factors{UserID: "u-alice"}, "what fn gets after a delete")
		return f, nil
	}), "update after delete")
}

func testFactorsUpdateErrorAborts(t *testing.T, s storage.Store) {
	ctx := t.Context()
	ok(t, s.CreateUser(ctx, user("u-alice", "alice")), "create alice")
	boom := errors.New("boom")
	err := s.UpdateFactors(ctx, "u-alice", func(f storage.Factors) (storage.Factors, error) {
		return factors("u-alice"), boom
	})
	if err != boom {
		t.Fatalf("error from fn came back as %v, want it as is", err)
	}
	_, err = s.GetFactors(ctx, "u-alice")
	isErr(t, err, storage.ErrNotFound, "a failed first update wrote nothing")

	putFactors(t, s, factors("u-alice"))
	err = s.UpdateFactors(ctx, "u-alice", func(f storage.Factors) (storage.Factors, error) {
		f.TOTP = nil
		f.RecoveryCodes = nil
		return f, boom
	})
	if err != boom {
		t.Fatalf("error from fn came back as %v, want it as is", err)
	}
	got, err := s.GetFactors(ctx, "u-alice")
	ok(t, err, "get after failed update")
	same(t, got, factors("u-alice"), "factors after a failed update")

	// In a transaction: the error is returned as is and nothing is
	// written (a failure other than a sentinel leaves the transaction
	// good only for RollbackTx, see storage.Store.BeginTx).
	txCtx := begin(t, s)
	err = s.UpdateFactors(txCtx, "u-alice", func(f storage.Factors) (storage.Factors, error) {
		f.TOTP = nil
		return f, boom
	})
	if err != boom {
		t.Fatalf("error from fn in a transaction came back as %v, want it as is", err)
	}
	ok(t, s.RollbackTx(txCtx), "rollback")
	got, err = s.GetFactors(ctx, "u-alice")
	ok(t, err, "get after the transaction")
	same(t, got, factors("u-alice"), "factors after a failed update in a transaction")
}

// testFactorsInTx: an update in a transaction is the transaction's, kept
// by a commit and undone by a rollback, even the record's creation.
func testFactorsInTx(t *testing.T, s storage.Store) {
	ctx := t.Context()
	ok(t, s.CreateUser(ctx, user("u-alice", "alice")), "create alice")
	txCtx := begin(t, s)
	ok(t, s.UpdateFactors(txCtx, "u-alice", func(storage.Factors) (storage.Factors, error) { return factors("u-alice"), nil }), "update in tx")
	got, err := s.GetFactors(txCtx, "u-alice")
	ok(t, err, "read own write in tx")
	same(t, got, factors("u-alice"), "own write in tx")
	ok(t, s.RollbackTx(txCtx), "rollback")
	_, err = s.GetFactors(ctx, "u-alice")
	isErr(t, err, storage.ErrNotFound, "factors after rollback")

	txCtx = begin(t, s)
	ok(t, s.UpdateFactors(txCtx, "u-alice", func(storage.Factors) (storage.Factors, error) { return factors("u-alice"), nil }), "update in tx")
	ok(t, s.UpdateFactors(txCtx, "u-alice", func(f storage.Factors) (storage.Factors, error) {
		f.TOTP.LastStep++
		return f, nil
	}), "second update in tx")
	ok(t, s.CommitTx(txCtx), "commit")
	want := factors("u-alice")
	want.TOTP.LastStep++
	got, err = s.GetFactors(ctx, "u-alice")
	ok(t, err, "get after commit")
	same(t, got, want, "factors after commit")
}

func testFactorsDeletedWithUser(t *testing.T, s storage.Store) {
	ctx := t.Context()
	ok(t, s.CreateUser(ctx, user("u-alice", "alice")), "create alice")
	ok(t, s.CreateUser(ctx, user("u-bob", "bob")), "create bob")
	putFactors(t, s, factors("u-alice"))
	putFactors(t, s, factors("u-bob"))
	ok(t, s.DeleteUser(ctx, "u-alice"), "delete alice")
	_, err := s.GetFactors(ctx, "u-alice")
	isErr(t, err, storage.ErrNotFound, "deleted user's factors")
	var walked []string
	ok(t, s.WalkFactors(ctx, func(f storage.Factors) error {
		walked = append(walked, f.UserID)
		return nil
	}), "walk")
	same(t, walked, []string{"u-bob"}, "factors walked after deleting alice")
	isErr(t, s.UpdateFactors(ctx, "u-alice", func(f storage.Factors) (storage.Factors, error) { return f, nil }), storage.ErrNotFound, "update of a deleted user")

	// A user created again under the same ID starts without factors.
	ok(t, s.CreateUser(ctx, user("u-alice", "alice")), "create alice again")
	_, err = s.GetFactors(ctx, "u-alice")
	isErr(t, err, storage.ErrNotFound, "factors of the recreated user")
	got, err := s.GetFactors(ctx, "u-bob")
	ok(t, err, "bob's factors")
	same(t, got, factors("u-bob"), "bob's factors kept")
}

// raceFactors runs fn from factorRacers goroutines released at once, each
// in its own UpdateFactors of userID, and returns their errors.
func raceFactors(s storage.Store, t *testing.T, userID string, fn func(storage.Factors) (storage.Factors, error)) []error {
	// A first round that changes nothing warms up a backend's connection
	// pool, so the racers of the second one are not held up one by one
	// connecting.
	for i, err := range raceFactorsOnce(s, t, userID, func(f storage.Factors) (storage.Factors, error) { return f, nil }) {
		ok(t, err, fmt.Sprintf("warm-up racer %d", i))
	}
	return raceFactorsOnce(s, t, userID, fn)
}

func raceFactorsOnce(s storage.Store, t *testing.T, userID string, fn func(storage.Factors) (storage.Factors, error)) []error {
	errs := make([]error, factorRacers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range factorRacers {
		wg.Go(func() {
			<-start
			errs[i] = s.UpdateFactors(t.Context(), userID, fn)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// oneWins checks that exactly one racer succeeded and every other was
// refused with lost.
func oneWins(t *testing.T, errs []error, lost error) {
	t.Helper()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, lost):
			t.Errorf("racer %d: %v, want nil or %v", i, err, lost)
		}
	}
	if wins != 1 {
		t.Fatalf("%d racers used the same code, want exactly 1", wins)
	}
}

// testFactorsRecoveryCodeRace: racers all try the same recovery code;
// exactly one may use it.
func testFactorsRecoveryCodeRace(t *testing.T, s storage.Store) {
	ctx := t.Context()
	keys := testKeys()
	ok(t, s.CreateUser(ctx, user("u-alice", "alice")), "create alice")
	codes, stored, err := mfa.NewRecoveryCodes(keys, "u-alice")
	ok(t, err, "new recovery codes")
	f := factors("u-alice")
	f.RecoveryCodes = stored
	putFactors(t, s, f)

	at := now()
	errs := raceFactors(s, t, "u-alice", func(f storage.Factors) (storage.Factors, error) {
		return mfa.UseRecoveryCode(keys, f, codes[3], at)
	})
	oneWins(t, errs, mfa.ErrCodeUsed)
	got, err := s.GetFactors(ctx, "u-alice")
	ok(t, err, "get after the race")
	if left := mfa.RecoveryCodesLeft(got); left != mfa.RecoveryCodeCount-1 {
		t.Fatalf("%d recovery codes left after one was used, want %d", left, mfa.RecoveryCodeCount-1)
	}
	if !got.RecoveryCodes[3].UsedAt.Equal(at) {
		t.Fatalf("used code's UsedAt is %v, want %v", got.RecoveryCodes[3].UsedAt, at)
	}
	same(t, got.TOTP, f.TOTP, "TOTP factor untouched by the race")
}

// testFactorsTOTPRace: racers all submit the code of one time step;
// exactly one may use it.
func testFactorsTOTPRace(t *testing.T, s storage.Store) {
	ctx := t.Context()
	keys := testKeys()
	ok(t, s.CreateUser(ctx, user("u-alice", "alice")), "create alice")
	key, err := mfa.NewTOTPKey("storagetest", "alice")
	ok(t, err, "new TOTP key")
	sealed, err := keys.SealTOTP("u-alice", key.Secret())
	ok(t, err, "seal")
	putFactors(t, s, storage.Factors{UserID: "u-alice", TOTP: &storage.TOTPFactor{SecretSealed: sealed, CreatedAt: created()}})

	at := time.Date(2026, 12, 3, 20, 0, 10, 0, time.UTC)
	code, err := totp.GenerateCodeCustom(key.Secret(), at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	ok(t, err, "compute code")
	errs := raceFactors(s, t, "u-alice", func(f storage.Factors) (storage.Factors, error) {
		if f.TOTP == nil {
			return f, errors.New("no TOTP factor")
		}
		secret, err := keys.OpenTOTP(f.UserID, f.TOTP.SecretSealed)
		if err != nil {
			return f, err
		}
		return mfa.CheckTOTP(f, secret, code, at)
	})
	oneWins(t, errs, mfa.ErrCodeUsed)
	got, err := s.GetFactors(ctx, "u-alice")
	ok(t, err, "get after the race")
	if want := at.Unix() / 30; got.TOTP == nil || got.TOTP.LastStep < want {
		t.Fatalf("last step after the race: %+v, want at least %d", got.TOTP, want)
	}
	secret, err := keys.OpenTOTP("u-alice", got.TOTP.SecretSealed)
	ok(t, err, "open the stored secret")
	if secret != key.Secret() {
		t.Fatal("stored secret changed")
	}
}

// testSessionAMR: a session's authentication methods are kept, and an
// update (a step-up adding a factor) replaces them.
func testSessionAMR(t *testing.T, s storage.Store) {
	ctx := t.Context()
	sess := session("sess-amr", "u-alice")
	sess.AMR = []string{"pwd"}
	ok(t, s.CreateBrowserSession(ctx, sess), "create")
	got, err := s.GetBrowserSession(ctx, sess.ID)
	ok(t, err, "get")
	same(t, got, sess, "session with amr")
	ok(t, s.UpdateBrowserSession(ctx, sess.ID, func(b storage.BrowserSession) (storage.BrowserSession, error) {
		b.AMR = append(b.AMR, "otp", "mfa")
		return b, nil
	}), "step up")
	got, err = s.GetBrowserSession(ctx, sess.ID)
	ok(t, err, "get after step-up")
	same(t, got.AMR, []string{"pwd", "otp", "mfa"}, "amr after step-up")
	list, err := s.ListUserSessions(ctx, "u-alice")
	ok(t, err, "list")
	if len(list) != 1 || strings.Join(list[0].AMR, " ") != "pwd otp mfa" {
		t.Fatalf("listed sessions: %+v", list)
	}

	old := session("sess-old", "u-bob")
	ok(t, s.CreateBrowserSession(ctx, old), "create a session without amr")
	got, err = s.GetBrowserSession(ctx, old.ID)
	ok(t, err, "get")
	if len(got.AMR) != 0 {
		t.Fatalf("session stored without amr reads back with %v", got.AMR)
	}
}
