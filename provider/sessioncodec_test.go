package provider

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/smallsso/provider/provider/secret"
	"github.com/smallsso/provider/storage"
)

const notUTF8 = "request input that is not UTF-8"

// sessionFixtures are sessions as our handlers and fosite leave them
// when a record is stored, and the odd ones a codec must not lose.
func sessionFixtures() map[string]func() *session {
	at := time.Date(2026, 12, 3, 13, 22, 4, 0, time.UTC)
	frac := at.Add(522214546 * time.Nanosecond)
	return map[string]func() *session{
		"client credentials": func() *session {
			s := newSession()
			s.Subject = "svc"
			s.SetExpiresAt(fosite.AccessToken, frac.Add(time.Hour))
			return s
		},
		"signed-in user, every claim": func() *session {
			s := userSession("https://sso.example.com", "0b8e2f8e-0c3f-4a59-9a49-6f0d1f3b7a21", "alice", at, at)
			s.Claims.Nonce = "n-0S6_WzA2Mj"
			s.Claims.AuthenticationContextClassReference = acrPassword
			s.Claims.AuthenticationMethodsReferences = []string{amrPassword}
			s.Claims.Audience = []string{"web", "api"}
			s.Claims.JTI = "8f0c3c5e-1b5a-4f53-9a3e-2d3c2e1f0a9b"
			s.Claims.ExpiresAt = frac.Add(time.Hour)
			s.Claims.IssuedAt = frac
			s.Claims.AccessTokenHash = "77QmUPtjPfzWtF2AnpK9RQ"
			s.Claims.CodeHash = "LDktKdoQak3Pk0cnXxCltA"
			s.Claims.Extra[sidClaim] = secret.NewToken()
			s.Claims.Extra["email"] = "alice@example.org"
			s.Claims.Extra["email_verified"] = true
			s.Claims.Extra["name"] = "Alice Liddell"
			s.Claims.Extra["groups"] = []string{"admins", "staff"}
			s.Claims.Extra["updated_at"] = at.Unix()
			s.Claims.Extra["address"] = storage.Address{Locality: "Oxford", Country: "UK"}
			s.Claims.Extra["phone_number_verified"] = false
			s.Claims.Extra["x-custom"] = map[string]any{"n": 1.5, "big": int64(1) << 60, "neg": -3, "negzero": math.Copysign(0, -1), "huge": 1e300, "list": []any{1, "a", nil, true}}
			s.Claims.Extra["x-empty"] = []string{}
			s.Headers.Extra["alg"] = "RS256"
			s.Headers.Extra["kid"] = "k1"
			s.UserinfoClaims = []string{"email", "picture"}
			s.SetExpiresAt(fosite.AuthorizeCode, frac.Add(10*time.Minute))
			s.SetExpiresAt(fosite.AccessToken, at.Add(time.Hour))
			s.SetExpiresAt(fosite.RefreshToken, at.Add(720*time.Hour))
			s.SetExpiresAt(fosite.IDToken, at.Add(time.Hour))
			s.SetExpiresAt(fosite.PushedAuthorizeRequestContext, at.Add(time.Minute))
			s.SetExpiresAt(fosite.TokenType("device_code"), frac)
			return s
		},
		"sid that is no token, subjects that differ": func() *session {
			s := userSession("https://sso.example.com", "u1", "", at, at)
			s.Claims.Extra[sidClaim] = "not base64url!"
			s.Claims.Subject = "someone else"
			return s
		},
		notUTF8: func() *session {
			s := userSession("https://sso.example.com", "u1", "al\xffice", at, at)
			s.Claims.Nonce = "n\xc3"
			return s
		},
		"ID token subject empty": func() *session {
			s := newSession()
			s.Subject = "u1"
			s.Claims.Subject = ""
			return s
		},
		"session subject empty": func() *session {
			s := newSession()
			s.Claims.Subject = "u1"
			return s
		},
		"nil claims, headers and expiries": func() *session {
			return &session{}
		},
		"nil extras": func() *session {
			s := newSession()
			s.Subject = "u1"
			s.Claims.Extra = nil
			s.Headers.Extra = nil
			s.SetExpiresAt(fosite.AccessToken, at)
			return s
		},
		"zero expiry entry, times before 1970 and far ahead": func() *session {
			s := newSession()
			s.Subject = "u1"
			s.SetExpiresAt(fosite.AccessToken, time.Time{})
			s.SetExpiresAt(fosite.RefreshToken, time.Date(9999, 1, 1, 0, 0, 0, 1, time.UTC))
			s.Claims.AuthTime = time.Date(1969, 7, 20, 20, 17, 40, 5, time.UTC)
			s.Claims.RequestedAt = time.Unix(0, 0).UTC()
			return s
		},
	}
}

// decode targets: what fosite passes to the storage's getters. At a code
// exchange the code's record was decoded into the session already, and
// the PKCE and OIDC records are decoded into it again.
func targetFixtures() map[string]func() fosite.Session {
	return map[string]func() fosite.Session{
		"fresh session": func() fosite.Session { return newSession() },
		"session filled before": func() fosite.Session {
			s := userSession("https://old.example.com", "old", "old", time.Unix(1, 0).UTC(), time.Unix(2, 0).UTC())
			s.Claims.Extra["kept"] = "yes"
			s.Claims.Extra["email"] = "old@example.org"
			s.Headers.Extra["kid"] = "old"
			s.UserinfoClaims = []string{"old"}
			s.SetExpiresAt(fosite.AccessToken, time.Unix(3, 0).UTC())
			s.SetExpiresAt(fosite.RefreshToken, time.Unix(4, 0).UTC())
			s.Claims.AuthenticationMethodsReferences = []string{"old"}
			return s
		},
		"empty session": func() fosite.Session { return &session{} },
		"fosite's default session": func() fosite.Session {
			return &openid.DefaultSession{Claims: &jwt.IDTokenClaims{Extra: map[string]any{}}, Headers: &jwt.Headers{}}
		},
	}
}

// The compact session decodes to exactly what the JSON form decoded to,
// into every kind of target: the codec changes the bytes, not what fosite
// and our handlers read back.
func TestSessionCodecDecodesAsJSONDid(t *testing.T) {
	t.Parallel()
	for name, fixture := range sessionFixtures() {
		for tname, target := range targetFixtures() {
			t.Run(name+"/"+tname, func(t *testing.T) {
				t.Parallel()
				orig := fixture()
				legacy, err := json.Marshal(orig)
				if err != nil {
					t.Fatal(err)
				}
				want := target()
				if err := decodeSession(legacy, orig.Subject, want); err != nil {
					t.Fatalf("decode JSON: %v", err)
				}
				compact, err := encodeSession(orig, orig.Subject, storage.KindAuthorizeCode)
				if err != nil {
					t.Fatal(err)
				}
				if len(compact) >= len(legacy) {
					t.Errorf("compact session is %d bytes, JSON %d", len(compact), len(legacy))
				}
				got := target()
				if err := decodeSession(compact, orig.Subject, got); err != nil {
					t.Fatalf("decode compact: %v", err)
				}
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(want)
				if name == notUTF8 {
					// JSON wrote U+FFFD for the bytes; the compact form
					// keeps them, and every output (ID token, introspection)
					// is JSON again: the same.
					var gv, wv any
					if json.Unmarshal(g, &gv) != nil || json.Unmarshal(w, &wv) != nil || !reflect.DeepEqual(gv, wv) {
						t.Errorf("compact decodes to\n%s\nJSON to\n%s", g, w)
					}
				} else if !reflect.DeepEqual(got, want) {
					t.Errorf("compact decodes to\n%s\nJSON to\n%s\n(%#v\n%#v)", g, w, got, want)
				}
				// Encoding is not affected by what it encodes being
				// decoded later: the stored bytes decode the same twice.
				again := target()
				if err := decodeSession(compact, orig.Subject, again); err != nil || !reflect.DeepEqual(again, got) {
					t.Errorf("second decode differs: %v", err)
				}
			})
		}
	}
}

// A session decoded from a record is what fosite and our handlers read:
// spelled out for the fields they read, beside the JSON comparison.
func TestSessionCodecFieldsReadBack(t *testing.T) {
	t.Parallel()
	orig := sessionFixtures()["signed-in user, every claim"]()
	b, err := encodeSession(orig, orig.Subject, storage.KindRefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	got := newSession()
	if err := decodeSession(b, orig.Subject, got); err != nil {
		t.Fatal(err)
	}
	c, oc := got.IDTokenClaims(), orig.Claims
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"subject", got.GetSubject(), orig.Subject},
		{"username", got.GetUsername(), "alice"},
		{"access expiry", got.GetExpiresAt(fosite.AccessToken), orig.GetExpiresAt(fosite.AccessToken)},
		{"refresh expiry", got.GetExpiresAt(fosite.RefreshToken), orig.GetExpiresAt(fosite.RefreshToken)},
		{"ID token expiry", got.GetExpiresAt(fosite.IDToken), orig.GetExpiresAt(fosite.IDToken)},
		{"claims subject", c.Subject, oc.Subject},
		{"issuer", c.Issuer, oc.Issuer},
		{"nonce", c.Nonce, oc.Nonce},
		{"auth_time", c.AuthTime, oc.AuthTime},
		{"rat", c.RequestedAt, oc.RequestedAt},
		{"iat", c.IssuedAt, oc.IssuedAt},
		{"exp", c.ExpiresAt, oc.ExpiresAt},
		{"jti", c.JTI, oc.JTI},
		{"aud", c.Audience, oc.Audience},
		{"acr", c.AuthenticationContextClassReference, acrPassword},
		{"amr", c.AuthenticationMethodsReferences, []string{amrPassword}},
		{"at_hash", c.AccessTokenHash, oc.AccessTokenHash},
		{"c_hash", c.CodeHash, oc.CodeHash},
		{"sid", c.Extra[sidClaim], oc.Extra[sidClaim]},
		{"email", c.Extra["email"], "alice@example.org"},
		{"groups", c.Extra["groups"], []any{"admins", "staff"}},
		{"updated_at", c.Extra["updated_at"], float64(oc.Extra["updated_at"].(int64))},
		{"address", c.Extra["address"], map[string]any{"locality": "Oxford", "country": "UK"}},
		{"header alg", got.IDTokenHeaders().Get("alg"), "RS256"},
		{"userinfo claims", got.UserinfoClaims, []string{"email", "picture"}},
	} {
		if !reflect.DeepEqual(f.got, f.want) {
			t.Errorf("%s = %#v, want %#v", f.name, f.got, f.want)
		}
	}
	// Access and refresh records drop the expiries only the code's and
	// the pushed request's records are read for.
	for _, tt := range []fosite.TokenType{fosite.AuthorizeCode, fosite.PushedAuthorizeRequestContext} {
		if at := got.GetExpiresAt(tt); !at.IsZero() {
			t.Errorf("refresh record keeps the %s expiry %v", tt, at)
		}
	}
	if got.GetExpiresAt("device_code").IsZero() {
		t.Error("an expiry of a type the codec has no key for was lost")
	}
}

// A session of another type than ours is stored as JSON, and a compact
// session is not decoded into a session it does not fit.
func TestSessionCodecOtherTypes(t *testing.T) {
	t.Parallel()
	other := &fosite.DefaultSession{Subject: "u1", ExpiresAt: map[fosite.TokenType]time.Time{fosite.AccessToken: time.Unix(5, 0).UTC()}}
	b, err := encodeSession(other, "u1", storage.KindAccessToken)
	if err != nil || len(b) == 0 || b[0] != '{' {
		t.Fatalf("encode %T = %q, %v; want JSON", other, b, err)
	}
	back := &fosite.DefaultSession{}
	if err := decodeSession(b, "u1", back); err != nil || !reflect.DeepEqual(back, other) {
		t.Errorf("decode = %+v, %v", back, err)
	}
	if b, err := encodeSession(nil, "", storage.KindAccessToken); b != nil || err != nil {
		t.Errorf("encode nil = %q, %v", b, err)
	}
	compact, err := encodeSession(newSession(), "", storage.KindAccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := decodeSession(compact, "", &fosite.DefaultSession{}); err == nil {
		t.Error("a compact session decoded into a fosite.DefaultSession")
	}
}

// Damaged bytes are an error, never a session with made-up values.
func TestSessionCodecRejectsDamage(t *testing.T) {
	t.Parallel()
	orig := sessionFixtures()["signed-in user, every claim"]()
	b, err := encodeSession(orig, orig.Subject, storage.KindAuthorizeCode)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{b[:len(b)-1], {0xa1, 0x18, 0x10, 0xa1, 0x18, 0xff, 0x01}, {0xa1, 0x08, 0x82, 0x01, 0x1a, 0x3b, 0x9a, 0xca, 0x00}} {
		if err := decodeSession(bad, "", newSession()); err == nil {
			t.Errorf("decodeSession(%x) succeeded", bad)
		}
	}
}

func FuzzSessionCodec(f *testing.F) {
	for _, fixture := range sessionFixtures() {
		b, err := encodeSession(fixture(), "", storage.KindAuthorizeCode)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := newSession()
		if decodeSession(b, "s", s) != nil {
			return
		}
		// Whatever decodes, re-encodes and decodes to the same session.
		again, err := encodeSession(s, s.Subject, storage.KindAuthorizeCode)
		if err != nil {
			return // values JSON cannot hold (NaN) fail as they would have
		}
		s2 := newSession()
		if err := decodeSession(again, s.Subject, s2); err != nil {
			t.Fatalf("re-encoded session does not decode: %v", err)
		}
	})
}

// The codec runs on every token written and read: compare it with the
// JSON it replaces.
func BenchmarkSessionCodec(b *testing.B) {
	orig := sessionFixtures()["signed-in user, every claim"]()
	compact, err := encodeSession(orig, orig.Subject, storage.KindRefreshToken)
	if err != nil {
		b.Fatal(err)
	}
	legacy, err := json.Marshal(orig)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode compact", func(b *testing.B) {
		for b.Loop() {
			if _, err := encodeSession(orig, orig.Subject, storage.KindRefreshToken); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode JSON", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(orig); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode compact", func(b *testing.B) {
		for b.Loop() {
			if err := decodeSession(compact, orig.Subject, newSession()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode JSON", func(b *testing.B) {
		for b.Loop() {
			if err := decodeSession(legacy, orig.Subject, newSession()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
