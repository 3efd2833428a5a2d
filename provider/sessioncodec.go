package provider

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/smallsso/provider/storage"
)

// The session is stored with every token record, so its encoding decides
// most of a record's size. The compact form (compactSession, CBOR) holds
// only what is set: no zero-valued claims, times as unix seconds, the
// subject once (the record has it), the ID token claims' subject only when
// it differs from the session's, the usual extra claims (email, groups,
// sid…) under small integer keys.
//
// Decoding is exactly what json.Unmarshal of the JSON form into the same
// target did, because fosite decodes several records into one session
// (the code's, then the PKCE and OIDC records' at a code exchange) and
// relies on that: fields are replaced, while maps (ExpiresAt, the extra
// claims and headers) are merged into the target's, a map stored as nil
// resets the target's to nil, and UserinfoClaims (omitempty in JSON) is
// left alone when the stored one is empty. Extra claims decode to the
// types JSON gives: float64, string, bool, []any, map[string]any, nil.
//
// Records written before hold the session as JSON (json.Marshal of
// *session); decodeSession still reads them. JSON starts with '{', the
// compact form with a CBOR map header.

// compactSession is *session as stored.
type compactSession struct {
	// Subject is set only when it differs from the record's subject (it
	// never does: create takes the record's from the session).
	Subject  *string `cbor:"1,keyasint,omitempty"`
	Username string  `cbor:"2,keyasint,omitempty"`

	// ID token claims.
	ClaimsSubject   *string     `cbor:"3,keyasint,omitempty"` // nil: the session's subject
	Issuer          string      `cbor:"4,keyasint,omitempty"`
	Audience        []string    `cbor:"5,keyasint,omitempty"`
	Nonce           string      `cbor:"6,keyasint,omitempty"`
	JTI             string      `cbor:"7,keyasint,omitempty"`
	ExpiresAt       sessionTime `cbor:"8,keyasint,omitzero"`
	IssuedAt        sessionTime `cbor:"9,keyasint,omitzero"`
	RequestedAt     sessionTime `cbor:"10,keyasint,omitzero"`
	AuthTime        sessionTime `cbor:"11,keyasint,omitzero"`
	AccessTokenHash string      `cbor:"12,keyasint,omitempty"`
	ACR             string      `cbor:"13,keyasint,omitempty"`
	AMR             []string    `cbor:"14,keyasint,omitempty"`
	CodeHash        string      `cbor:"15,keyasint,omitempty"`
	// Extra holds the extra claims whose names are in knownClaims under
	// their index, ExtraByName the others.
	Extra       map[uint8]any  `cbor:"16,keyasint,omitempty"`
	ExtraByName map[string]any `cbor:"17,keyasint,omitempty"`
	// Headers is the ID token header extras, as a JSON object.
	Headers        []byte        `cbor:"18,keyasint,omitempty"`
	UserinfoClaims []string      `cbor:"19,keyasint,omitempty"`
	Expiry         sessionExpiry `cbor:"20,keyasint,omitzero"`
	// Nil says which of the session's pointers and maps were nil (nilClaims…).
	Nil uint8 `cbor:"21,keyasint,omitempty"`
}

const (
	nilClaims uint8 = 1 << iota
	nilExtra
	nilHeaders
	nilHeaderExtra
	nilExpiry
)

// knownClaims are the extra claims stored under their index (one byte in
// CBOR for the first 23): what userClaims, pickClaims and sid put in ID
// tokens. The order is part of the stored format: append only.
var knownClaims = []string{
	"", // 0 is not used
	sidClaim, "email", "email_verified", "name", "given_name", "family_name",
	"preferred_username", "groups", "updated_at", "phone_number",
	"phone_number_verified", "address", "picture", "locale", "middle_name",
	"nickname", "profile", "website", "gender", "birthdate", "zoneinfo",
}

var knownClaimIndex = func() map[string]uint8 {
	m := make(map[string]uint8, len(knownClaims))
	for i, name := range knownClaims[1:] {
		m[name] = uint8(i + 1)
	}
	return m
}()

// sessionExpiry is the session's ExpiresAt map: the token types fosite
// uses under small keys, any other under its name.
type sessionExpiry struct {
	AccessToken   sessionTime            `cbor:"1,keyasint,omitzero"`
	RefreshToken  sessionTime            `cbor:"2,keyasint,omitzero"`
	AuthorizeCode sessionTime            `cbor:"3,keyasint,omitzero"`
	IDToken       sessionTime            `cbor:"4,keyasint,omitzero"`
	PAR           sessionTime            `cbor:"5,keyasint,omitzero"`
	Other         map[string]sessionTime `cbor:"6,keyasint,omitempty"`
	// Zero has bit n set for the n-th key above (1 << 1 for AccessToken)
	// when the map holds the zero time for it: decoding replaces the
	// target's entry with it, as JSON did.
	Zero uint8 `cbor:"7,keyasint,omitempty"`
}

var expirySlots = []fosite.TokenType{
	1: fosite.AccessToken, 2: fosite.RefreshToken, 3: fosite.AuthorizeCode,
	4: fosite.IDToken, 5: fosite.PushedAuthorizeRequestContext,
}

func (e sessionExpiry) IsZero() bool {
	return e.AccessToken.IsZero() && e.RefreshToken.IsZero() && e.AuthorizeCode.IsZero() &&
		e.IDToken.IsZero() && e.PAR.IsZero() && len(e.Other) == 0 && e.Zero == 0
}

func (e *sessionExpiry) slot(tt fosite.TokenType) *sessionTime {
	switch tt {
	case fosite.AccessToken:
		return &e.AccessToken
	case fosite.RefreshToken:
		return &e.RefreshToken
	case fosite.AuthorizeCode:
		return &e.AuthorizeCode
	case fosite.IDToken:
		return &e.IDToken
	case fosite.PushedAuthorizeRequestContext:
		return &e.PAR
	}
	return nil
}

var (
	sessionEnc = func() cbor.EncMode {
		m, err := cbor.EncOptions{}.EncMode()
		if err != nil {
			panic(err)
		}
		return m
	}()
	sessionDec = func() cbor.DecMode {
		m, err := cbor.DecOptions{
			DupMapKey:      cbor.DupMapKeyEnforcedAPF,
			DefaultMapType: reflect.TypeOf(map[string]any(nil)),
			// A nonce or username is request input: its bytes come back as
			// they were written, valid UTF-8 or not.
			UTF8: cbor.UTF8DecodeInvalid,
		}.DecMode()
		if err != nil {
			panic(err)
		}
		return m
	}()
)

// encodeSession returns what a record of kind stores of sess; subject is
// the record's subject, which the compact form does not repeat, and only
// the expiries keepExpiry names are kept. A session of another type than
// ours is stored as JSON.
func encodeSession(sess fosite.Session, subject string, kind storage.TokenKind) ([]byte, error) {
	var ds *openid.DefaultSession
	var userinfo []string
	switch s := sess.(type) {
	case nil:
		return nil, nil
	case *session:
		if s == nil {
			return nil, nil
		}
		ds, userinfo = &s.DefaultSession, s.UserinfoClaims
	default:
		return json.Marshal(sess)
	}
	c := compactSession{Username: ds.Username, UserinfoClaims: userinfo}
	if ds.Subject != subject {
		c.Subject = &ds.Subject
	}
	if ds.ExpiresAt == nil {
		c.Nil |= nilExpiry
	}
	for tt, at := range ds.ExpiresAt {
		if !keepExpiry(kind, tt) {
			continue
		}
		if p := c.Expiry.slot(tt); p != nil {
			*p = sessionTime(at)
			if at.IsZero() {
				c.Expiry.Zero |= 1 << slices.Index(expirySlots, tt)
			}
			continue
		}
		if c.Expiry.Other == nil {
			c.Expiry.Other = map[string]sessionTime{}
		}
		c.Expiry.Other[string(tt)] = sessionTime(at)
	}
	if cl := ds.Claims; cl == nil {
		c.Nil |= nilClaims
	} else {
		if cl.Subject != ds.Subject {
			c.ClaimsSubject = &cl.Subject
		}
		c.Issuer, c.Audience, c.Nonce, c.JTI = cl.Issuer, cl.Audience, cl.Nonce, cl.JTI
		c.ExpiresAt, c.IssuedAt = sessionTime(cl.ExpiresAt), sessionTime(cl.IssuedAt)
		c.RequestedAt, c.AuthTime = sessionTime(cl.RequestedAt), sessionTime(cl.AuthTime)
		c.AccessTokenHash, c.CodeHash = cl.AccessTokenHash, cl.CodeHash
		c.ACR, c.AMR = cl.AuthenticationContextClassReference, cl.AuthenticationMethodsReferences
		if cl.Extra == nil {
			c.Nil |= nilExtra
		}
		if err := c.setExtra(cl.Extra); err != nil {
			return nil, err
		}
	}
	switch h := ds.Headers; {
	case h == nil:
		c.Nil |= nilHeaders
	case h.Extra == nil:
		c.Nil |= nilHeaderExtra
	case len(h.Extra) > 0:
		b, err := json.Marshal(h.Extra)
		if err != nil {
			return nil, fmt.Errorf("encode ID token headers: %w", err)
		}
		c.Headers = b
	}
	return sessionEnc.Marshal(c)
}

// setExtra stores the extra claims as JSON would see them: the values go
// through JSON first (a struct becomes its JSON object, every number a
// float64; the common types take a shortcut to the same result), then
// whole numbers are stored as CBOR integers.
func (c *compactSession) setExtra(extra map[string]any) error {
	var other map[string]any
	for k, v := range extra {
		p, ok, err := plainJSON(v)
		if err != nil {
			return fmt.Errorf("encode ID token claims: %w", err)
		}
		if !ok {
			if other == nil {
				other = map[string]any{}
			}
			other[k] = v
			continue
		}
		c.putExtra(k, p)
	}
	if len(other) == 0 {
		return nil
	}
	b, err := json.Marshal(other)
	if err != nil {
		return fmt.Errorf("encode ID token claims: %w", err)
	}
	var plain map[string]any
	if err := json.Unmarshal(b, &plain); err != nil {
		return fmt.Errorf("encode ID token claims: %w", err)
	}
	for k, v := range plain {
		c.putExtra(k, v)
	}
	return nil
}

// plainJSON is v as json.Unmarshal(json.Marshal(v)) into an any gives it,
// for the types claims usually have; ok is false for the others.
func plainJSON(v any) (p any, ok bool, err error) {
	switch x := v.(type) {
	case nil, string, bool:
		return x, true, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, false, fmt.Errorf("unsupported value %v", x)
		}
		return x, true, nil
	case int64:
		return float64(x), true, nil
	case int:
		return float64(x), true, nil
	case []string:
		if x == nil {
			return nil, true, nil
		}
		a := make([]any, len(x))
		for i, s := range x {
			a[i] = s
		}
		return a, true, nil
	}
	return nil, false, nil
}

func (c *compactSession) putExtra(k string, v any) {
	v = wholeNumbers(v)
	if sid, ok := v.(string); ok && k == sidClaim {
		// A sid (secret.NewToken) is unpadded base64url: its bytes are
		// shorter. No other value is a byte string.
		if raw, err := base64.RawURLEncoding.DecodeString(sid); err == nil && base64.RawURLEncoding.EncodeToString(raw) == sid {
			v = raw
		}
	}
	if i, ok := knownClaimIndex[k]; ok {
		if c.Extra == nil {
			c.Extra = map[uint8]any{}
		}
		c.Extra[i] = v
		return
	}
	if c.ExtraByName == nil {
		c.ExtraByName = map[string]any{}
	}
	c.ExtraByName[k] = v
}

// wholeNumbers turns the float64s of a value decoded from JSON that are
// whole (and exact in a float64) into int64s, which CBOR stores in fewer
// bytes; jsonNumbers turns them back.
func wholeNumbers(v any) any {
	switch v := v.(type) {
	case float64:
		// -0 stays a float: as an integer it would lose its sign.
		if v == math.Trunc(v) && math.Abs(v) <= 1<<53 && (v != 0 || !math.Signbit(v)) {
			return int64(v)
		}
	case []any:
		for i := range v {
			v[i] = wholeNumbers(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = wholeNumbers(v[k])
		}
	}
	return v
}

func jsonNumbers(v any) (any, error) {
	var err error
	switch x := v.(type) {
	case uint64:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case float64, string, bool, nil:
		return v, nil
	case []any:
		for i := range x {
			if x[i], err = jsonNumbers(x[i]); err != nil {
				return nil, err
			}
		}
		return x, nil
	case map[string]any:
		for k := range x {
			if x[k], err = jsonNumbers(x[k]); err != nil {
				return nil, err
			}
		}
		return x, nil
	}
	return nil, fmt.Errorf("extra claim of type %T", v)
}

var errSessionType = errors.New("a compact session decodes only into the provider's session")

// decodeSession fills sess from b, the compact form or the JSON one, as
// json.Unmarshal of the JSON form would. subject is the record's subject.
func decodeSession(b []byte, subject string, sess fosite.Session) error {
	if len(b) == 0 {
		return nil
	}
	if b[0] == '{' {
		return json.Unmarshal(b, sess)
	}
	var c compactSession
	if err := sessionDec.Unmarshal(b, &c); err != nil {
		return err
	}
	var ds *openid.DefaultSession
	switch s := sess.(type) {
	case *session:
		ds = &s.DefaultSession
		if len(c.UserinfoClaims) > 0 {
			s.UserinfoClaims = c.UserinfoClaims
		}
	case *openid.DefaultSession:
		ds = s
	default:
		return fmt.Errorf("%w, not %T", errSessionType, sess)
	}
	ds.Subject, ds.Username = subject, c.Username
	if c.Subject != nil {
		ds.Subject = *c.Subject
	}

	if c.Nil&nilExpiry != 0 {
		ds.ExpiresAt = nil
	} else {
		if ds.ExpiresAt == nil {
			ds.ExpiresAt = map[fosite.TokenType]time.Time{}
		}
		set := func(tt fosite.TokenType, at sessionTime) {
			if !at.IsZero() || c.Expiry.Zero&(1<<slices.Index(expirySlots, tt)) != 0 {
				ds.ExpiresAt[tt] = time.Time(at)
			}
		}
		set(fosite.AccessToken, c.Expiry.AccessToken)
		set(fosite.RefreshToken, c.Expiry.RefreshToken)
		set(fosite.AuthorizeCode, c.Expiry.AuthorizeCode)
		set(fosite.IDToken, c.Expiry.IDToken)
		set(fosite.PushedAuthorizeRequestContext, c.Expiry.PAR)
		for tt, at := range c.Expiry.Other {
			ds.ExpiresAt[fosite.TokenType(tt)] = time.Time(at)
		}
	}

	if c.Nil&nilClaims != 0 {
		ds.Claims = nil
	} else {
		if ds.Claims == nil {
			ds.Claims = &jwt.IDTokenClaims{}
		}
		cl := ds.Claims
		cl.Subject = ds.Subject
		if c.ClaimsSubject != nil {
			cl.Subject = *c.ClaimsSubject
		}
		cl.Issuer, cl.Audience, cl.Nonce, cl.JTI = c.Issuer, c.Audience, c.Nonce, c.JTI
		cl.ExpiresAt, cl.IssuedAt = time.Time(c.ExpiresAt), time.Time(c.IssuedAt)
		cl.RequestedAt, cl.AuthTime = time.Time(c.RequestedAt), time.Time(c.AuthTime)
		cl.AccessTokenHash, cl.CodeHash = c.AccessTokenHash, c.CodeHash
		cl.AuthenticationContextClassReference, cl.AuthenticationMethodsReferences = c.ACR, c.AMR
		if c.Nil&nilExtra != 0 {
			cl.Extra = nil
		} else {
			if cl.Extra == nil {
				cl.Extra = map[string]any{}
			}
			for i, v := range c.Extra {
				if int(i) >= len(knownClaims) || i == 0 {
					return fmt.Errorf("extra claim %d, this build knows %d", i, len(knownClaims)-1)
				}
				if raw, ok := v.([]byte); ok && knownClaims[i] == sidClaim {
					v = base64.RawURLEncoding.EncodeToString(raw)
				}
				v, err := jsonNumbers(v)
				if err != nil {
					return err
				}
				cl.Extra[knownClaims[i]] = v
			}
			for k, v := range c.ExtraByName {
				v, err := jsonNumbers(v)
				if err != nil {
					return err
				}
				cl.Extra[k] = v
			}
		}
	}

	switch {
	case c.Nil&nilHeaders != 0:
		ds.Headers = nil
	default:
		if ds.Headers == nil {
			ds.Headers = &jwt.Headers{}
		}
		if c.Nil&nilHeaderExtra != 0 {
			ds.Headers.Extra = nil
		} else if len(c.Headers) > 0 || ds.Headers.Extra == nil {
			if ds.Headers.Extra == nil {
				ds.Headers.Extra = map[string]any{}
			}
			if len(c.Headers) > 0 {
				if err := json.Unmarshal(c.Headers, &ds.Headers.Extra); err != nil {
					return fmt.Errorf("ID token headers: %w", err)
				}
			}
		}
	}
	return nil
}

// sessionTime is a time in the compact session: whole unix seconds as an
// integer (what fosite's expiries and our claim stamps are), or [seconds,
// nanoseconds] when there is a fraction, so that every time round-trips
// to the same instant, in UTC as from JSON. The zero time is omitted.
type sessionTime time.Time

func (t sessionTime) IsZero() bool { return time.Time(t).IsZero() }

func (t sessionTime) MarshalCBOR() ([]byte, error) {
	tt := time.Time(t)
	if ns := tt.Nanosecond(); ns != 0 {
		return sessionEnc.Marshal([2]int64{tt.Unix(), int64(ns)})
	}
	return sessionEnc.Marshal(tt.Unix())
}

var errSessionTime = errors.New("time is neither seconds nor [seconds, nanoseconds]")

func (t *sessionTime) UnmarshalCBOR(b []byte) error {
	if len(b) > 0 && b[0]>>5 == 4 { // major type 4: array
		var a []int64
		if err := sessionDec.Unmarshal(b, &a); err != nil {
			return err
		}
		if len(a) != 2 || a[1] < 0 || a[1] >= int64(time.Second) {
			return errSessionTime
		}
		*t = sessionTime(time.Unix(a[0], a[1]).UTC())
		return nil
	}
	var s int64
	if err := sessionDec.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%w: %w", errSessionTime, err)
	}
	*t = sessionTime(time.Unix(s, 0).UTC())
	return nil
}
