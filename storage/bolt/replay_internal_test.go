package bolt

import (
	"context"
	"testing"
	"time"

	"github.com/smallsso/provider/storage"
)

// A kept refresh answer has an expiry entry of its own: the janitor's
// strip and the record's removal both leave no entry behind.
func TestReplayExpiryEntries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	now := time.Now()
	for _, sig := range []string{"stripped", "revoked"} {
		r := storage.TokenRequest{Kind: storage.KindRefreshToken, Signature: sig, RequestID: "req-" + sig, Active: true, ExpiresAt: now.Add(time.Hour)}
		if err := s.CreateToken(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := s.DeactivateToken(ctx, r.Kind, sig); err != nil {
			t.Fatal(err)
		}
		if err := s.SetTokenReplay(ctx, r.Kind, sig, []byte("sealed"), now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, s, bucketExpiry); n != 4 {
		t.Fatalf("expiry index holds %d entries, want 4 (two records, two replays)", n)
	}
	if err := s.RevokeByRequestID(ctx, storage.KindRefreshToken, "req-revoked"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, bucketExpiry); n != 2 {
		t.Fatalf("expiry index holds %d entries after revoking, want 2", n)
	}
	if n, err := s.GarbageCollect(ctx, now.Add(2*time.Minute)); err != nil || n != 0 {
		t.Fatalf("garbage collect: removed %d, err %v; want 0, nil", n, err)
	}
	if n := count(t, s, bucketExpiry); n != 1 {
		t.Fatalf("expiry index holds %d entries after the strip, want the record's", n)
	}
	r, err := s.GetToken(ctx, storage.KindRefreshToken, "stripped")
	if err != nil || r.Replay != nil || !r.ReplayUntil.IsZero() || r.Active {
		t.Fatalf("after the strip: %+v, %v; want the inactive record without its replay", r, err)
	}
}
