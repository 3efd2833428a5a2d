package provider

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/smallsso/provider/provider/secret"
	"github.com/smallsso/provider/storage"
)

// A kept refresh answer opens only with the retired token it answers: the
// provider secret (with the database) is not enough.
func TestRefreshGraceSealNeedsTheRetiredToken(t *testing.T) {
	t.Parallel()
	providerSecret := bytes.Repeat([]byte{7}, 32)
	replays, err := newRefreshReplays(providerSecret, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	const old, sig = "ory_rt_retired-token-key.retired-token-sig", "retired-token-sig"
	now := time.Now()
	until := now.Add(30 * time.Second)
	resp := fosite.NewAccessResponse()
	resp.SetAccessToken("new-access-token")
	resp.SetTokenType("bearer")
	resp.SetExtra("refresh_token", "new-refresh-token")
	resp.SetExtra("scope", "openid offline_access")
	blob, err := replays.seal(old, "app", sig, until, now, resp)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, []byte("new-refresh-token")) || bytes.Contains(blob, []byte("new-access-token")) {
		t.Fatal("the sealed answer carries a token in the clear")
	}
	rec := storage.TokenRequest{Kind: storage.KindRefreshToken, Signature: sig, ClientID: "app", Replay: blob, ReplayUntil: until}

	// The same secret, a fresh instance (another process): opens with the
	// retired token.
	again, err := newRefreshReplays(providerSecret, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := again.open(old, rec)
	if err != nil {
		t.Fatalf("open with the retired token: %v", err)
	}
	if plain.refreshToken() != "new-refresh-token" || plain.response(now).GetAccessToken() != "new-access-token" {
		t.Errorf("opened answer %+v", plain.Fields)
	}
	if got := plain.scopes(); len(got) != 2 || got[0] != "openid" || got[1] != "offline_access" {
		t.Errorf("scopes %q", got)
	}

	for _, token := range []string{"", sig, "ory_rt_other-key.retired-token-sig", "new-refresh-token"} {
		if _, err := again.open(token, rec); err == nil {
			t.Errorf("the answer opened with %q", token)
		}
	}
	// The provider-secret-derived key alone (what sealed the answer
	// before) does not open it.
	block, err := aes.NewCipher(secret.DeriveKey(providerSecret, "refresh-replay"))
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aead.Open(nil, blob[:aead.NonceSize()], blob[aead.NonceSize():], replayAD("app", sig, until)); err == nil {
		t.Error("the answer opened with the provider secret's key alone")
	}
	// Bound to the record: another client or end of grace does not open.
	other := rec
	other.ClientID = "other"
	if _, err := again.open(old, other); err == nil {
		t.Error("the answer opened for another client")
	}
	other = rec
	other.ReplayUntil = until.Add(time.Minute)
	if _, err := again.open(old, other); err == nil {
		t.Error("the answer opened with another end of grace")
	}
}
