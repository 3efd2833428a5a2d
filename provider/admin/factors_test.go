package admin_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/smallsso/provider/provider/admin"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/mfa"
	"github.com/smallsso/provider/provider/userspec"
	"github.com/smallsso/provider/storage"
)

func testMFAKeys() *mfa.Keys {
	return mfa.NewKeys(func() ([]byte, error) { return []byte("admin test provider secret, at least 32 bytes"), nil })
}

// Operators racing to enrol an authenticator app for one person: one
// enrolment wins, the others are refused, and the stored secret is the
// winner's (the URI that person was given works).
func TestAddTOTPRace(t *testing.T) {
	t.Parallel()
	store := openStore(t, t.TempDir())
	keys := testMFAKeys()
	local := &admin.Local{Store: store, MFAKeys: keys, TOTPIssuer: "Example"}
	ctx := context.Background()
	if _, err := local.AddUser(ctx, userspec.User{Username: "alice", Password: "long-enough-password"}); err != nil {
		t.Fatal(err)
	}
	const racers = 8
	var (
		wg    sync.WaitGroup
		errs  [racers]error
		outs  [racers]admin.TOTPEnrolment
		start = make(chan struct{})
	)
	for i := range racers {
		wg.Go(func() {
			<-start
			outs[i], errs[i] = local.AddTOTP(ctx, "alice")
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		var inv *clientspec.InvalidError
		switch {
		case err == nil && winner < 0:
			winner = i
		case err == nil:
			t.Fatalf("racers %d and %d both enrolled", winner, i)
		case !errors.As(err, &inv):
			t.Errorf("racer %d: %v, want a refusal", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no racer enrolled")
	}
	u, err := store.GetUserByUsername(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	f, err := store.GetFactors(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := keys.OpenTOTP(u.ID, f.TOTP.SecretSealed)
	if err != nil {
		t.Fatal(err)
	}
	key, err := mfa.TOTPKeyFromSecret("Example", "alice", secret)
	if err != nil {
		t.Fatal(err)
	}
	if key.URL() != outs[winner].URI {
		t.Errorf("stored secret is not the winner's:\n%s\n%s", key.URL(), outs[winner].URI)
	}
	if len(outs[winner].RecoveryCodes) != mfa.RecoveryCodeCount {
		t.Errorf("winner got %d recovery codes", len(outs[winner].RecoveryCodes))
	}
	for _, c := range outs[winner].RecoveryCodes {
		if _, err := mfa.UseRecoveryCode(keys, f, c, time.Now()); err != nil {
			t.Errorf("recovery code %s: %v", c, err)
		}
	}
}

// The socket carries the factor verbs and their refusals as Local makes
// them; without keys, Local refuses to enrol.
func TestFactorVerbsOverSocket(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := openStore(t, dir)
	local := &admin.Local{Store: store, MFAKeys: testMFAKeys(), TOTPIssuer: "Example"}
	ln, err := admin.Listen(filepath.Join(dir, "p.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: admin.Handler(local), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	remote := admin.Dial(filepath.Join(dir, "p.sock"))
	ctx := context.Background()
	if _, err := local.AddUser(ctx, userspec.User{Username: "a/../b", Password: "long-enough-password"}); err != nil {
		t.Fatal(err)
	}
	var inv *clientspec.InvalidError
	if _, err := remote.AddTOTP(ctx, "nobody"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("add for nobody: %v", err)
	}
	e, err := remote.AddTOTP(ctx, "a/../b")
	if err != nil || len(e.RecoveryCodes) != mfa.RecoveryCodeCount {
		t.Fatalf("add: %+v, %v", e, err)
	}
	if _, err := remote.AddTOTP(ctx, "a/../b"); !errors.As(err, &inv) {
		t.Errorf("second add: %v, want a refusal", err)
	}
	all, err := remote.ListFactors(ctx)
	if err != nil || len(all) != 1 || !all[0].TOTP || all[0].RecoveryCodesLeft != mfa.RecoveryCodeCount {
		t.Errorf("list: %+v, %v", all, err)
	}
	if err := remote.RemoveTOTP(ctx, "a/../b"); err != nil {
		t.Errorf("remove: %v", err)
	}
	if err := remote.RemoveTOTP(ctx, "a/../b"); !errors.As(err, &inv) {
		t.Errorf("second remove: %v, want a refusal", err)
	}
	if _, err := remote.AddTOTP(ctx, "a/../b"); err != nil {
		t.Fatal(err)
	}
	had, err := remote.ResetMFA(ctx, "a/../b")
	if err != nil || !had.TOTP || had.RecoveryCodesLeft != mfa.RecoveryCodeCount {
		t.Errorf("reset: %+v, %v", had, err)
	}
	if _, err := remote.ResetMFA(ctx, "nobody"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("reset for nobody: %v", err)
	}
	if _, err := (&admin.Local{Store: store}).AddTOTP(ctx, "a/../b"); err == nil {
		t.Error("Local without keys enrolled an authenticator app")
	}
}
