package bolt

import (
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/smallsso/provider/storage"
)

// Token records (version 2) are the bulk of the file: a busy CI or a
// million live tokens means a million of them. They are CBOR, not JSON:
// integer keys, byte strings for the session (no base64), times as unix
// seconds, and nothing written for a field that is empty.
//
// A version 2 value is tokenRecordV2 byte followed by the CBOR of
// tokenRecord; every version 1 value is a JSON envelope and starts with
// '{', so the first byte tells them apart. Version 1 records (files
// written before) are still read; any write stores version 2.
const tokenRecordV2 = 2

// tokenRecord is storage.TokenRequest as stored. Kind is the index of the
// kind in storage.TokenKinds plus one (KindName holds a kind the list does
// not know). Scopes and audiences granted as requested are stored once
// (flagGrantedAsRequested…). Active, true for nearly every record, is
// stored as its negation. TestTokenRecordCoversEveryField fails when
// storage.TokenRequest gains a field this struct does not carry.
type tokenRecord struct {
	Kind            uint8               `cbor:"1,keyasint,omitempty"`
	KindName        string              `cbor:"2,keyasint,omitempty"`
	Signature       packedString        `cbor:"3,keyasint,omitzero"`
	RequestID       packedString        `cbor:"4,keyasint,omitzero"`
	ClientID        packedString        `cbor:"5,keyasint,omitzero"`
	Subject         packedString        `cbor:"6,keyasint,omitzero"`
	RequestedAt     unixTime            `cbor:"7,keyasint,omitzero"`
	ExpiresAt       unixTime            `cbor:"8,keyasint,omitzero"`
	Flags           uint8               `cbor:"9,keyasint,omitempty"`
	Scopes          []string            `cbor:"10,keyasint,omitempty"`
	GrantedScopes   []string            `cbor:"11,keyasint,omitempty"`
	Audience        []string            `cbor:"12,keyasint,omitempty"`
	GrantedAudience []string            `cbor:"13,keyasint,omitempty"`
	Form            map[string][]string `cbor:"14,keyasint,omitempty"`
	Session         []byte              `cbor:"15,keyasint,omitempty"`
	AccessSignature packedString        `cbor:"16,keyasint,omitzero"`
	Replay          []byte              `cbor:"17,keyasint,omitempty"`
	ReplayUntil     unixTime            `cbor:"18,keyasint,omitzero"`
}

const (
	flagInactive uint8 = 1 << iota
	flagGrantedScopesAsRequested
	flagGrantedAudienceAsRequested
)

var (
	cborEnc = mustEncMode(cbor.EncOptions{})
	cborDec = mustDecMode(cbor.DecOptions{
		DupMapKey:   cbor.DupMapKeyEnforcedAPF,
		MaxMapPairs: 1 << 16,
		// Go strings may hold any bytes, and the encoder writes them as
		// they are: read them back the same.
		UTF8: cbor.UTF8DecodeInvalid,
	})
)

func mustEncMode(o cbor.EncOptions) cbor.EncMode {
	m, err := o.EncMode()
	if err != nil {
		panic(err)
	}
	return m
}

func mustDecMode(o cbor.DecOptions) cbor.DecMode {
	m, err := o.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}

func encodeToken(r storage.TokenRequest) ([]byte, error) {
	rec := tokenRecord{
		Signature:       packedString(r.Signature),
		RequestID:       packedString(r.RequestID),
		ClientID:        packedString(r.ClientID),
		Subject:         packedString(r.Subject),
		RequestedAt:     unixTime(r.RequestedAt),
		ExpiresAt:       unixTime(r.ExpiresAt),
		Scopes:          r.Scopes,
		GrantedScopes:   r.GrantedScopes,
		Audience:        r.Audience,
		GrantedAudience: r.GrantedAudience,
		Form:            r.Form,
		Session:         r.Session,
		AccessSignature: packedString(r.AccessSignature),
		Replay:          r.Replay,
		ReplayUntil:     unixTime(r.ReplayUntil),
	}
	if i := slices.Index(storage.TokenKinds, r.Kind); i >= 0 {
		rec.Kind = uint8(i + 1)
	} else {
		rec.KindName = string(r.Kind)
	}
	if !r.Active {
		rec.Flags |= flagInactive
	}
	if len(r.GrantedScopes) > 0 && slices.Equal(r.Scopes, r.GrantedScopes) {
		rec.Flags |= flagGrantedScopesAsRequested
		rec.GrantedScopes = nil
	}
	if len(r.GrantedAudience) > 0 && slices.Equal(r.Audience, r.GrantedAudience) {
		rec.Flags |= flagGrantedAudienceAsRequested
		rec.GrantedAudience = nil
	}
	b, err := cborEnc.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return append([]byte{tokenRecordV2}, b...), nil
}

func decodeToken(b []byte) (storage.TokenRequest, error) {
	if len(b) == 0 || b[0] != tokenRecordV2 {
		var v int
		if len(b) > 0 {
			v = int(b[0])
		}
		return storage.TokenRequest{}, fmt.Errorf("decode: token record of unknown format (first byte %#x)", v)
	}
	var rec tokenRecord
	if err := cborDec.Unmarshal(b[1:], &rec); err != nil {
		return storage.TokenRequest{}, fmt.Errorf("decode: %w", err)
	}
	r := storage.TokenRequest{
		Kind:            storage.TokenKind(rec.KindName),
		Signature:       string(rec.Signature),
		RequestID:       string(rec.RequestID),
		ClientID:        string(rec.ClientID),
		Subject:         string(rec.Subject),
		RequestedAt:     time.Time(rec.RequestedAt),
		ExpiresAt:       time.Time(rec.ExpiresAt),
		Scopes:          rec.Scopes,
		GrantedScopes:   rec.GrantedScopes,
		Audience:        rec.Audience,
		GrantedAudience: rec.GrantedAudience,
		Form:            rec.Form,
		Session:         rec.Session,
		Active:          rec.Flags&flagInactive == 0,
		AccessSignature: string(rec.AccessSignature),
		Replay:          rec.Replay,
		ReplayUntil:     time.Time(rec.ReplayUntil),
	}
	if rec.Kind > 0 {
		if int(rec.Kind) > len(storage.TokenKinds) {
			return storage.TokenRequest{}, fmt.Errorf("decode: token kind %d, this build knows %d", rec.Kind, len(storage.TokenKinds))
		}
		r.Kind = storage.TokenKinds[rec.Kind-1]
	}
	if rec.Flags&flagGrantedScopesAsRequested != 0 {
		r.GrantedScopes = slices.Clone(r.Scopes)
	}
	if rec.Flags&flagGrantedAudienceAsRequested != 0 {
		r.GrantedAudience = slices.Clone(r.Audience)
	}
	return r, nil
}

// unixTime is a time as CBOR: whole unix seconds as an integer (what
// expiries and most stamps are), or [seconds, nanoseconds] when there is
// a fraction, so every time.Time round-trips to the same instant (in
// UTC). The zero time is omitted (omitzero).
type unixTime time.Time

func (t unixTime) IsZero() bool { return time.Time(t).IsZero() }

func (t unixTime) MarshalCBOR() ([]byte, error) {
	tt := time.Time(t)
	if ns := tt.Nanosecond(); ns != 0 {
		return cborEnc.Marshal([2]int64{tt.Unix(), int64(ns)})
	}
	return cborEnc.Marshal(tt.Unix())
}

var errBadTime = errors.New("time is neither seconds nor [seconds, nanoseconds]")

func (t *unixTime) UnmarshalCBOR(b []byte) error {
	if len(b) > 0 && b[0]>>5 == 4 { // major type 4: array
		var a []int64
		if err := cborDec.Unmarshal(b, &a); err != nil {
			return err
		}
		if len(a) != 2 || a[1] < 0 || a[1] >= int64(time.Second) {
			return errBadTime
		}
		*t = unixTime(time.Unix(a[0], a[1]).UTC())
		return nil
	}
	var s int64
	if err := cborDec.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%w: %w", errBadTime, err)
	}
	*t = unixTime(time.Unix(s, 0).UTC())
	return nil
}

// packedString is an identifier as CBOR: the bytes it encodes when it is
// the canonical text of some (a UUID, a fosite signature or sid in
// unpadded base64url, a crypto/rand.Text value), after one byte naming the
// form; any other string as text. Decoding re-encodes the bytes, and a
// string is packed only when that gives it back exactly.
type packedString string

// Forms of a packed string: the first byte of its CBOR byte string.
const (
	packedUUID      = 1 // 8-4-4-4-12 lowercase hex: 16 bytes
	packedBase64URL = 2 // base64.RawURLEncoding of the bytes
	packedText26    = 3 // 26 characters of the base32 alphabet (rand.Text): 17 bytes
)

func (s packedString) MarshalCBOR() ([]byte, error) {
	if b := packString(string(s)); b != nil {
		return cborEnc.Marshal(b)
	}
	return cborEnc.Marshal(string(s))
}

func (s *packedString) UnmarshalCBOR(b []byte) error {
	if len(b) > 0 && b[0]>>5 == 2 { // major type 2: byte string
		var raw []byte
		if err := cborDec.Unmarshal(b, &raw); err != nil {
			return err
		}
		v, err := unpackString(raw)
		*s = packedString(v)
		return err
	}
	var v string
	err := cborDec.Unmarshal(b, &v)
	*s = packedString(v)
	return err
}

func packString(s string) []byte {
	p := packAs(s)
	if back, err := unpackString(p); p == nil || err != nil || back != s {
		return nil // never a form that does not give s back
	}
	return p
}

func packAs(s string) []byte {
	if len(s) == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-' {
		h := s[:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
		if raw, err := hex.DecodeString(h); err == nil && hex.EncodeToString(raw) == h {
			return append([]byte{packedUUID}, raw...)
		}
	}
	if len(s) == 26 {
		// 130 bits: decoded with 6 more zero symbols, the first 17 bytes
		// hold them all. Any 26 symbols of the alphabet pack.
		if raw, err := base32.StdEncoding.DecodeString(s + "AAAAAA"); err == nil && len(raw) == 20 {
			return append([]byte{packedText26}, raw[:17]...)
		}
	}
	if len(s) >= 16 {
		if raw, err := base64.RawURLEncoding.DecodeString(s); err == nil && base64.RawURLEncoding.EncodeToString(raw) == s {
			return append([]byte{packedBase64URL}, raw...)
		}
	}
	return nil
}

var errPacked = errors.New("packed string of unknown form")

func unpackString(b []byte) (string, error) {
	if len(b) == 0 {
		return "", errPacked
	}
	raw := b[1:]
	switch b[0] {
	case packedUUID:
		if len(raw) != 16 {
			return "", errPacked
		}
		h := hex.EncodeToString(raw)
		return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
	case packedBase64URL:
		return base64.RawURLEncoding.EncodeToString(raw), nil
	case packedText26:
		if len(raw) != 17 || raw[16]&0x3f != 0 {
			return "", errPacked
		}
		return base32.StdEncoding.EncodeToString(append(raw, 0, 0, 0))[:26], nil
	}
	return "", errPacked
}
