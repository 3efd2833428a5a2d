package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/smallsso/provider/storage"
)

func roundTrip(t *testing.T, r storage.TokenRequest) storage.TokenRequest {
	t.Helper()
	b, err := encode(r)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != tokenRecordV2 {
		t.Fatalf("token record starts with %#x, want version %d", b[0], tokenRecordV2)
	}
	got, err := decode[storage.TokenRequest](b)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestTokenRecordRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 3, 13, 22, 4, 0, time.UTC)
	full := storage.TokenRequest{
		Kind:            storage.KindRefreshToken,
		Signature:       "l5UOjmhlsG_CAnVPor6SDPPR7XGv8ivatsbo74sFXGQ",
		RequestID:       "6d6a796b-aa3f-48a3-974a-544b0705d026",
		ClientID:        "web",
		Subject:         "2FTMZI6PKE5ZCHM2DZGXZH3ESX",
		RequestedAt:     at.Add(524815319),
		Scopes:          []string{"openid", "offline_access"},
		GrantedScopes:   []string{"openid", "offline_access"},
		Audience:        []string{"api"},
		GrantedAudience: []string{"api"},
		Form:            map[string][]string{"redirect_uri": {"http://127.0.0.1/cb"}, "empty": {}},
		Session:         []byte{0xa1, 0x02, 0x65, 'a', 'l', 'i', 'c', 'e'},
		Active:          true,
		AccessSignature: "ChNZoZ9k5Ny6tY2jiSVkZQcLQ6iqD5go9A0fHbA4vPM",
		ExpiresAt:       at.Add(720 * time.Hour),
	}
	for name, mutate := range map[string]func(*storage.TokenRequest){
		"every field":                 func(*storage.TokenRequest) {},
		"inactive":                    func(r *storage.TokenRequest) { r.Active = false },
		"granted fewer scopes":        func(r *storage.TokenRequest) { r.GrantedScopes = []string{"openid"} },
		"granted no scope":            func(r *storage.TokenRequest) { r.GrantedScopes = nil },
		"requested no scope":          func(r *storage.TokenRequest) { r.Scopes = nil },
		"granted another audience":    func(r *storage.TokenRequest) { r.GrantedAudience = []string{"other"} },
		"granted more audience":       func(r *storage.TokenRequest) { r.GrantedAudience = []string{"api", "other"} },
		"nothing but the key":         func(r *storage.TokenRequest) { *r = storage.TokenRequest{Kind: storage.KindPKCE, Signature: "s"} },
		"a kind this build lists not": func(r *storage.TokenRequest) { r.Kind = "device" },
		"every kind":                  nil,
		"whole-second times":          func(r *storage.TokenRequest) { r.RequestedAt = at },
		"times before 1970 and far ahead": func(r *storage.TokenRequest) {
			r.RequestedAt = time.Date(1969, 7, 20, 20, 17, 40, 1, time.UTC)
			r.ExpiresAt = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
		},
		"the epoch": func(r *storage.TokenRequest) {
			r.RequestedAt, r.ExpiresAt = time.Unix(0, 0).UTC(), time.Unix(0, 1).UTC()
		},
		"identifiers as text":    func(r *storage.TokenRequest) { r.Signature, r.RequestID, r.Subject = "sig-1", "req-1", "u-alice" },
		"a session that is JSON": func(r *storage.TokenRequest) { r.Session = []byte(`{"subject":"u1"}`) },
		"strings that are not UTF-8": func(r *storage.TokenRequest) {
			r.Scopes, r.GrantedScopes = []string{"a\xff"}, []string{"\xc3"}
			r.Form = map[string][]string{"\xff": {"\xfe"}}
			r.ClientID = "c\x80"
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if mutate == nil {
				for _, kind := range storage.TokenKinds {
					r := full
					r.Kind = kind
					if got := roundTrip(t, r); !reflect.DeepEqual(got, r) {
						t.Errorf("kind %s: got %+v", kind, got)
					}
				}
				return
			}
			r := full
			r.Scopes, r.GrantedScopes = append([]string(nil), full.Scopes...), append([]string(nil), full.GrantedScopes...)
			mutate(&r)
			if got := roundTrip(t, r); !reflect.DeepEqual(got, r) {
				t.Errorf("got  %+v\nwant %+v", got, r)
			}
		})
	}
}

// Every field of storage.TokenRequest survives the codec: a field added
// to the record and forgotten here fails this test, instead of being lost
// silently on every write.
func TestTokenRecordCoversEveryField(t *testing.T) {
	t.Parallel()
	var r storage.TokenRequest
	v := reflect.ValueOf(&r).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		name := v.Type().Field(i).Name
		switch f.Kind() {
		case reflect.String:
			f.SetString("value of " + name)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Slice:
			if f.Type().Elem().Kind() == reflect.Uint8 {
				f.SetBytes([]byte("bytes of " + name))
			} else {
				f.Set(reflect.ValueOf([]string{name, "more"}))
			}
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string][]string{name: {"x"}}))
		case reflect.Struct:
			if f.Type() != reflect.TypeFor[time.Time]() {
				t.Fatalf("field %s of type %s: teach this test and the codec about it", name, f.Type())
			}
			f.Set(reflect.ValueOf(time.Unix(1700000000+int64(i), int64(i)).UTC()))
		default:
			t.Fatalf("field %s of kind %s: teach this test and the codec about it", name, f.Kind())
		}
	}
	r.Kind = storage.KindAccessToken
	got := roundTrip(t, r)
	gv := reflect.ValueOf(got)
	for i := range v.NumField() {
		if !reflect.DeepEqual(gv.Field(i).Interface(), v.Field(i).Interface()) {
			t.Errorf("field %s: got %v, want %v", v.Type().Field(i).Name, gv.Field(i).Interface(), v.Field(i).Interface())
		}
	}
}

func TestPackedString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s      string
		packed int // bytes of the packed form, 0 for text
	}{
		{"6d6a796b-aa3f-48a3-974a-544b0705d026", 17},
		{"l5UOjmhlsG_CAnVPor6SDPPR7XGv8ivatsbo74sFXGQ", 33},
		{"2FTMZI6PKE5ZCHM2DZGXZH3ESX", 18},
		{"2FTMZI6PKE5ZCHM2DZGXZH3ES7", 18},
		{"AAAAAAAAAAAAAAAAAAAAAAAAAA", 18},
		{"77777777777777777777777777", 18},
		{strings.Repeat("A", 64), 49},
		// Not canonical for a form: another form, or text.
		{"6D6A796B-AA3F-48A3-974A-544B0705D026", 28},
		{"6d6a796b-aa3f-48a3-974a-544b0705d02g", 28},
		{"l5UOjmhlsG_CAnVPor6SDPPR7XGv8ivatsbo74sFXGR", 0}, // stray bits
		{"l5UOjmhlsG_CAnVPor6SDPPR7XGv8ivatsbo74sFXGQ=", 0},
		{"2FTMZI6PKE5ZCHM2DZGXZH3ES1", 0},
		{"2ftmzi6pke5zchm2dzgxzh3esx", 0},
		{"AAAAAAAA\n\n\n\n\n\n\n\nAAAAAAAAAA", 0}, // base32 decoding skips newlines
		{"6d6a796b-aa3f-48a3-974a\n544b0705d026", 0},
		{"web", 0},
		{"", 0},
		{"u-alice", 0},
		{"authorization-code-replayed:xyz", 0},
	} {
		p := packString(tc.s)
		if len(p) != tc.packed {
			t.Errorf("packString(%q) = %d bytes, want %d", tc.s, len(p), tc.packed)
		}
		b, err := cborEnc.Marshal(packedString(tc.s))
		if err != nil {
			t.Fatal(err)
		}
		var back packedString
		if err := cborDec.Unmarshal(b, &back); err != nil || string(back) != tc.s {
			t.Errorf("%q decodes to %q, %v", tc.s, back, err)
		}
		if tc.packed > 0 && len(b) >= len(tc.s) {
			t.Errorf("%q packs to %d bytes", tc.s, len(b))
		}
	}
	text26 := append([]byte{0x52, packedText26}, bytes.Repeat([]byte{0xff}, 17)...)
	for _, bad := range [][]byte{{0x40}, {0x41, 9}, {0x42, packedUUID, 1}, text26} {
		var back packedString
		if err := cborDec.Unmarshal(bad, &back); err == nil {
			t.Errorf("%x decodes to %q", bad, back)
		}
	}
}

func TestTokenRecordRejectsDamage(t *testing.T) {
	t.Parallel()
	b, err := encode(storage.TokenRequest{Kind: storage.KindAccessToken, Signature: "s", RequestedAt: time.Unix(1, 5)})
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{
		"truncated":        b[:len(b)-1],
		"unknown version":  append([]byte{3}, b[1:]...),
		"empty":            {},
		"kind out of list": {tokenRecordV2, 0xa1, 0x01, 0x18, 0x63},
		"time of 3 parts":  {tokenRecordV2, 0xa1, 0x07, 0x83, 0x01, 0x02, 0x03},
		"nanos too large":  {tokenRecordV2, 0xa1, 0x07, 0x82, 0x01, 0x1a, 0x3b, 0x9a, 0xca, 0x00},
		"v1 of version 7":  []byte(`{"v":7,"data":{}}`),
	} {
		if r, err := decode[storage.TokenRequest](bad); err == nil {
			t.Errorf("%s: decoded to %+v", name, r)
		}
	}
}

// Files written before hold version 1 token records (JSON envelopes, the
// session in base64): they are still read, revoked, deactivated and
// collected, and a record written again is written as version 2.
func TestTokenRecordVersion1StillRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "provider.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	refresh := storage.TokenRequest{
		Kind: storage.KindRefreshToken, Signature: "l5UOjmhlsG_CAnVPor6SDPPR7XGv8ivatsbo74sFXGQ",
		RequestID: "6d6a796b-aa3f-48a3-974a-544b0705d026", ClientID: "web", Subject: "u1",
		RequestedAt: now, Scopes: []string{"openid"}, GrantedScopes: []string{"openid"},
		Form:    map[string][]string{"grant_type": {"refresh_token"}},
		Session: []byte(`{"id_token_claims":{"sub":"u1"},"subject":"u1"}`), Active: true,
		AccessSignature: "ChNZoZ9k5Ny6tY2jiSVkZQcLQ6iqD5go9A0fHbA4vPM", ExpiresAt: now.Add(time.Hour),
	}
	access := refresh
	access.Kind, access.Signature, access.AccessSignature = storage.KindAccessToken, refresh.AccessSignature, ""
	expired := refresh
	expired.Signature, expired.RequestID, expired.ExpiresAt = "expired", "r-old", now.Add(-time.Hour)
	// As the build before wrote them, and a literal of such a value.
	literal := []byte(`{"v":1,"data":{"kind":"pkce","signature":"p1","request_id":"r1","client_id":"web","requested_at":"2026-12-03T13:22:04.524815319Z","form":{"code_challenge":["E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"]},"session":"eyJzdWJqZWN0IjoidTEifQ==","active":true,"expires_at":"2026-12-03T13:32:04Z"}}`)
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, r := range []storage.TokenRequest{refresh, access, expired} {
			v, err := json.Marshal(envelope[storage.TokenRequest]{V: 1, Data: r})
			if err != nil {
				return err
			}
			if err := tx.Bucket([]byte(bucketTokens)).Bucket([]byte(r.Kind)).Put([]byte(r.Signature), v); err != nil {
				return err
			}
			if err := tx.Bucket([]byte(bucketRequestIDs)).Put(key(string(r.Kind), r.RequestID, r.Signature), nil); err != nil {
				return err
			}
			if err := tx.Bucket([]byte(bucketExpiry)).Put(expiryKey(r.ExpiresAt, familyToken, string(r.Kind), r.Signature), nil); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte(bucketTokens)).Bucket([]byte(storage.KindPKCE)).Put([]byte("p1"), literal)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.GetToken(ctx, storage.KindRefreshToken, refresh.Signature)
	if err != nil || !got.RequestedAt.Equal(refresh.RequestedAt) || !got.ExpiresAt.Equal(refresh.ExpiresAt) {
		t.Fatalf("version 1 refresh record: %+v, %v", got, err)
	}
	got.RequestedAt, got.ExpiresAt = refresh.RequestedAt, refresh.ExpiresAt
	if !reflect.DeepEqual(got, refresh) {
		t.Errorf("version 1 refresh record reads as\n%+v\nwant\n%+v", got, refresh)
	}
	pkce, err := s.GetToken(ctx, storage.KindPKCE, "p1")
	if err != nil || string(pkce.Session) != `{"subject":"u1"}` || pkce.Form["code_challenge"][0] != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" ||
		pkce.RequestedAt.Nanosecond() != 524815319 || !pkce.Active {
		t.Errorf("literal version 1 record reads as %+v, %v", pkce, err)
	}
	if err := s.DeactivateToken(ctx, storage.KindRefreshToken, refresh.Signature); err != nil {
		t.Fatal(err)
	}
	if err := s.DeactivateToken(ctx, storage.KindRefreshToken, refresh.Signature); !errors.Is(err, storage.ErrInactive) {
		t.Errorf("second deactivation: %v, want ErrInactive", err)
	}
	if n, err := s.GarbageCollect(ctx, now); err != nil || n != 1 {
		t.Errorf("garbage collect: %d, %v; want the expired version 1 record", n, err)
	}
	if err := s.RevokeByRequestID(ctx, storage.KindAccessToken, access.RequestID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetToken(ctx, storage.KindAccessToken, access.Signature); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("revoked version 1 access record: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket([]byte(bucketTokens)).Bucket([]byte(storage.KindRefreshToken)).Get([]byte(refresh.Signature))
		if len(v) == 0 || v[0] != tokenRecordV2 {
			t.Errorf("deactivated record is stored as %.20q…, want version 2", v)
		}
		if n := tx.Bucket([]byte(bucketExpiry)).Stats().KeyN; n != 1 {
			t.Errorf("%d expiry entries left, want the refresh record's", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The bytes of a token record before (version 1, JSON) and after
// (version 2), the session aside: provider/recordsize_test.go measures
// whole records with real sessions.
func TestTokenRecordSizeWithoutSession(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	r := storage.TokenRequest{
		Kind: storage.KindAccessToken, Signature: "49VSGhoDXD70C3wvmBBQBTDdktSkFFhu-4oq9zcJ5Jk",
		RequestID: "8eb520ba-a64f-4c7a-8933-662a005ccec4", ClientID: "ci-runner", Subject: "ci-runner",
		RequestedAt: now, Scopes: []string{"api:read", "api:write"}, GrantedScopes: []string{"api:read", "api:write"},
		Active: true, ExpiresAt: now.Add(time.Hour),
	}
	v1, err := json.Marshal(envelope[storage.TokenRequest]{V: 1, Data: r})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := encode(r)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("client_credentials record without session: %d bytes as version 1, %d as version 2", len(v1), len(v2))
	if len(v2)*2 > len(v1) {
		t.Errorf("version 2 is %d bytes, version 1 %d: not half", len(v2), len(v1))
	}
	if !bytes.Equal(v2[:1], []byte{tokenRecordV2}) {
		t.Errorf("version byte %x", v2[0])
	}
}

func FuzzPackedString(f *testing.F) {
	for _, s := range []string{"6d6a796b-aa3f-48a3-974a-544b0705d026", "l5UOjmhlsG_CAnVPor6SDPPR7XGv8ivatsbo74sFXGQ", "2FTMZI6PKE5ZCHM2DZGXZH3ESX", "web", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := cborEnc.Marshal(packedString(s))
		if err != nil {
			t.Fatal(err)
		}
		var back packedString
		if err := cborDec.Unmarshal(b, &back); err != nil || string(back) != s {
			t.Fatalf("%q decodes to %q, %v", s, back, err)
		}
	})
}

func FuzzTokenRecordDecode(f *testing.F) {
	b, err := encode(storage.TokenRequest{Kind: storage.KindRefreshToken, Signature: "l5UOjmhlsG_CAnVPor6SDPPR7XGv8ivatsbo74sFXGQ",
		RequestID: "6d6a796b-aa3f-48a3-974a-544b0705d026", Scopes: []string{"a"}, GrantedScopes: []string{"a"}, RequestedAt: time.Unix(5, 6)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeToken(b)
		if err != nil {
			return
		}
		again, err := encodeToken(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := decodeToken(again)
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("re-encoded record decodes to %+v, %v; want %+v", r2, err, r)
		}
	})
}
