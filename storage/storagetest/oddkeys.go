package storagetest

import (
	"testing"
	"time"

	"github.com/smallsso/provider/storage"
)

// testOddKeys stores and looks up what requests may carry: NUL bytes and
// invalid UTF-8 in a username, a client_id or a JWT ID typed or sent by
// anyone, and a NUL in a form value kept with a code. A backend whose
// text cannot hold them must still answer as for any other key: not
// found, a replay refused, the form kept.
func testOddKeys(t *testing.T, s storage.Store) {
	ctx := t.Context()
	for _, odd := range []string{"nul\x00inside", "\xff\xfe", "\x00"} {
		_, err := s.GetUserByUsername(ctx, odd)
		isErr(t, err, storage.ErrNotFound, "user by an odd username")
		_, err = s.GetUser(ctx, odd)
		isErr(t, err, storage.ErrNotFound, "user by an odd ID")
		_, err = s.GetClient(ctx, odd)
		isErr(t, err, storage.ErrNotFound, "client by an odd ID")
		_, err = s.GetTrustedIssuer(ctx, odd)
		isErr(t, err, storage.ErrNotFound, "trusted issuer by an odd ID")
		_, err = s.GetJTI(ctx, odd)
		isErr(t, err, storage.ErrNotFound, "odd JWT ID before it is recorded")
		j := storage.JTI{ID: odd, ExpiresAt: now().Add(time.Hour)}
		ok(t, s.CreateJTI(ctx, j, now()), "record an odd JWT ID")
		isErr(t, s.CreateJTI(ctx, j, now()), storage.ErrAlreadyExists, "replay of an odd JWT ID")
		_, err = s.GetJTI(ctx, odd)
		ok(t, err, "odd JWT ID once recorded")
	}
	r := token(storage.KindAuthorizeCode, "sig-odd", "req-odd")
	r.Form = map[string][]string{"state": {"a\x00b"}, "nonce": {"\x00"}}
	ok(t, s.CreateToken(ctx, r), "create a code whose form holds NUL bytes")
	got, err := s.GetToken(ctx, storage.KindAuthorizeCode, "sig-odd")
	ok(t, err, "get it")
	same(t, got, r, "code with NUL bytes in its form")
}
