package oidcctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// IDToken is a verified ID token.
type IDToken struct {
	Raw    string
	Alg    string
	KeyID  string
	Claims map[string]any
}

// Str returns a string claim, "" when absent.
func (tok *IDToken) Str(name string) string { s, _ := tok.Claims[name].(string); return s }

// Num returns a numeric claim and whether it was there.
func (tok *IDToken) Num(name string) (float64, bool) {
	n, ok := tok.Claims[name].(float64)
	return n, ok
}

// IDTokenCheck is what a module knows about the token it expects.
type IDTokenCheck struct {
	// Nonce is the request's nonce; empty means the token must carry none
	// (ValidateIdTokenNonce).
	Nonce string
	// AccessToken and Code are checked against at_hash and c_hash when
	// those are present; RequireAtHash and RequireCHash make them
	// mandatory (authorization endpoint ID tokens, OIDCCServerTest).
	AccessToken, Code           string
	RequireAtHash, RequireCHash bool
}

// signingAlgs are the algorithms an ID token may be parsed with; the check
// that the token used the client's registered one comes after.
var signingAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

// CheckIDToken applies PerformStandardIdTokenChecks: ValidateIdToken
// (iss, aud, azp, exp, iat), ValidateIdTokenStandardClaims,
// ValidateIdTokenNonce, ValidateIdTokenACRClaimAgainstRequest (type only),
// ValidateIdTokenSignature and ValidateIdTokenSignatureUsingKid against the
// provider's JWKS, CheckForSubjectInIdToken, EnsureIdTokenUpdatedAtValid,
// plus EnsureIdTokenContainsKid, CheckIdTokenSignatureAlgorithm and the
// at_hash / c_hash validation of OIDCCServerTest.
func (op *OP) CheckIDToken(t testing.TB, c *Client, raw string, want IDTokenCheck) *IDToken {
	t.Helper()
	if raw == "" {
		t.Fatal("no id_token")
	}
	jws, err := jose.ParseSigned(raw, signingAlgs)
	if err != nil {
		t.Fatalf("ValidateIdTokenSignature: the id_token is not a JWS with an accepted algorithm: %v", err)
	}
	if len(jws.Signatures) != 1 {
		t.Fatalf("the id_token has %d signatures", len(jws.Signatures))
	}
	h := jws.Signatures[0].Header
	tok := &IDToken{Raw: raw, Alg: h.Algorithm, KeyID: h.KeyID}
	if h.KeyID == "" {
		t.Fatal("EnsureIdTokenContainsKid: the id_token header has no kid")
	}
	if h.Algorithm != c.idTokenAlg() {
		t.Fatalf("CheckIdTokenSignatureAlgorithm: alg = %s, want %s", h.Algorithm, c.idTokenAlg())
	}
	payload := op.verifyWithKid(t, "id_token", jws, h)
	if err := json.Unmarshal(payload, &tok.Claims); err != nil {
		t.Fatalf("the id_token payload is not a JSON object: %v", err)
	}
	op.checkIDTokenClaims(t, c, tok, want)
	return tok
}

// verifyWithKid is AbstractVerifyJwsSignatureUsingKid: exactly one key has
// the kid, its kty fits the alg, its alg (if any) is the header's, its use
// (if any) is sig, and it verifies the signature.
func (op *OP) verifyWithKid(t testing.TB, what string, jws *jose.JSONWebSignature, h jose.Header) []byte {
	t.Helper()
	matches := op.JWKS.Key(h.KeyID)
	if len(matches) != 1 {
		t.Fatalf("ValidateIdTokenSignatureUsingKid: %d keys in the JWKS have kid %q, want exactly 1", len(matches), h.KeyID)
	}
	k := matches[0]
	if k.Algorithm != "" && k.Algorithm != h.Algorithm {
		t.Fatalf("%s: key %q has alg %s but the header says %s", what, h.KeyID, k.Algorithm, h.Algorithm)
	}
	if k.Use != "" && k.Use != "sig" {
		t.Fatalf("%s: key %q has use %q", what, h.KeyID, k.Use)
	}
	if !ktyFits(k, h.Algorithm) {
		t.Fatalf("%s: key %q does not fit alg %s", what, h.KeyID, h.Algorithm)
	}
	payload, err := jws.Verify(k)
	if err != nil {
		t.Fatalf("ValidateIdTokenSignature: %s does not verify with key %q: %v", what, h.KeyID, err)
	}
	return payload
}

func ktyFits(k jose.JSONWebKey, alg string) bool {
	switch k.Public().Key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		return strings.HasPrefix(alg, "ES")
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

func (op *OP) checkIDTokenClaims(t testing.TB, c *Client, tok *IDToken, want IDTokenCheck) {
	t.Helper()
	cl := tok.Claims
	if tok.Str("iss") != op.Issuer {
		t.Fatalf("ValidateIdToken: iss = %v, want exactly %q", cl["iss"], op.Issuer)
	}
	switch aud := cl["aud"].(type) {
	case string:
		if aud != c.ID {
			t.Fatalf("ValidateIdToken: aud = %q, want %q", aud, c.ID)
		}
	case []any:
		found := false
		for _, a := range aud {
			found = found || a == c.ID
		}
		if !found {
			t.Fatalf("ValidateIdToken: aud %v does not contain %q", aud, c.ID)
		}
		if len(aud) > 1 && tok.Str("azp") != c.ID {
			t.Fatalf("ValidateIdToken: several audiences but azp = %v", cl["azp"])
		}
	default:
		t.Fatalf("ValidateIdToken: aud missing or of the wrong type: %v", cl["aud"])
	}
	if azp, ok := cl["azp"]; ok && azp != c.ID {
		t.Fatalf("ValidateIdToken: azp = %v, want %q", azp, c.ID)
	}
	now := op.now()
	skew := 5 * time.Minute
	exp, ok := tok.Num("exp")
	if !ok || time.Unix(int64(exp), 0).Before(now.Add(-skew)) {
		t.Fatalf("ValidateIdToken: exp missing or in the past: %v", cl["exp"])
	}
	iat, ok := tok.Num("iat")
	if !ok || time.Unix(int64(iat), 0).After(now.Add(skew)) {
		t.Fatalf("ValidateIdToken: iat missing or in the future: %v", cl["iat"])
	}
	if tok.Str("sub") == "" {
		t.Fatal("CheckForSubjectInIdToken: no sub")
	}
	switch {
	case want.Nonce == "" && cl["nonce"] != nil:
		t.Fatalf("ValidateIdTokenNonce: no nonce was sent but the id_token has %v", cl["nonce"])
	case want.Nonce != "" && tok.Str("nonce") != want.Nonce:
		t.Fatalf("ValidateIdTokenNonce: nonce = %v, want %q", cl["nonce"], want.Nonce)
	}
	if v, ok := cl["acr"]; ok {
		if _, isStr := v.(string); !isStr {
			t.Fatalf("ValidateIdTokenACRClaimAgainstRequest: acr is not a string: %v", v)
		}
	}
	if v, ok := cl["auth_time"]; ok {
		if _, isNum := v.(float64); !isNum {
			t.Fatalf("auth_time is not a number: %v", v)
		}
	}
	CheckStandardClaims(t, "id_token", cl, now)
	checkHash(t, "at_hash", tok, want.AccessToken, want.RequireAtHash)
	checkHash(t, "c_hash", tok, want.Code, want.RequireCHash)
}

// CheckStandardClaims is ValidateIdTokenStandardClaims /
// ValidateUserInfoStandardClaims with EnsureIdTokenUpdatedAtValid: every
// OIDC Core §5.1 claim present has its JSON type.
func CheckStandardClaims(t testing.TB, where string, cl map[string]any, now time.Time) {
	t.Helper()
	for _, name := range []string{"sub", "name", "given_name", "family_name", "middle_name", "nickname", "preferred_username", "profile", "picture", "website", "email", "gender", "birthdate", "zoneinfo", "locale", "phone_number"} {
		if v, ok := cl[name]; ok {
			if _, isStr := v.(string); !isStr {
				t.Fatalf("%s: %s is not a string: %v", where, name, v)
			}
		}
	}
	for _, name := range []string{"email_verified", "phone_number_verified"} {
		if v, ok := cl[name]; ok {
			if _, isBool := v.(bool); !isBool {
				t.Fatalf("%s: %s is not a boolean: %v", where, name, v)
			}
		}
	}
	if v, ok := cl["updated_at"]; ok {
		n, isNum := v.(float64)
		if !isNum {
			t.Fatalf("%s: updated_at is not a number: %v", where, v)
		}
		at := time.Unix(int64(n), 0)
		if at.After(now.Add(5*time.Minute)) || at.Year() < 1990 {
			t.Fatalf("%s: updated_at %v is in the future or before 1990", where, at)
		}
	}
	if v, ok := cl["address"]; ok {
		addr, isObj := v.(map[string]any)
		if !isObj || len(addr) == 0 {
			t.Fatalf("%s: address is not a non-empty object: %v", where, v)
		}
		for k, part := range addr {
			if _, isStr := part.(string); !isStr {
				t.Fatalf("%s: address.%s is not a string", where, k)
			}
		}
	}
	if v, ok := cl["birthdate"].(string); ok && !validBirthdate(v) {
		t.Fatalf("%s: birthdate %q is not YYYY-MM-DD, YYYY or 0000-MM-DD", where, v)
	}
}

func validBirthdate(s string) bool {
	for _, layout := range []string{"2006-01-02", "2006"} {
		if _, err := time.Parse(layout, s); err == nil {
			return true
		}
	}
	if strings.HasPrefix(s, "0000-") {
		_, err := time.Parse("2006-01-02", "2000"+s[4:])
		return err == nil
	}
	return false
}

// checkHash validates at_hash or c_hash: the left half of the hash of the
// ASCII value, with the hash of the alg (SHA-512 for EdDSA, as the suite
// and OIDC implementations use for Ed25519).
func checkHash(t testing.TB, claim string, tok *IDToken, value string, required bool) {
	t.Helper()
	got, present := tok.Claims[claim]
	if !present {
		if required {
			t.Fatalf("%s is required in this id_token and missing", claim)
		}
		return
	}
	if value == "" {
		return // nothing to compare with (e.g. c_hash in a token-endpoint id_token)
	}
	if got != HalfHash(tok.Alg, value) {
		t.Fatalf("%s = %v, want %s (alg %s)", claim, got, HalfHash(tok.Alg, value), tok.Alg)
	}
}

// HalfHash is the at_hash / c_hash of value for an ID token signed with alg.
func HalfHash(alg, value string) string {
	var h crypto.Hash
	switch {
	case alg == "EdDSA", strings.HasSuffix(alg, "512"):
		h = crypto.SHA512
	case strings.HasSuffix(alg, "384"):
		h = crypto.SHA384
	default:
		h = crypto.SHA256
	}
	var sum []byte
	switch h {
	case crypto.SHA512:
		s := sha512.Sum512([]byte(value))
		sum = s[:]
	case crypto.SHA384:
		s := sha512.Sum384([]byte(value))
		sum = s[:]
	default:
		s := sha256.Sum256([]byte(value))
		sum = s[:]
	}
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// shannonBits is the suite's entropy estimate: the Shannon entropy of the
// character frequencies times the length.
func shannonBits(s string) float64 {
	counts := map[rune]int{}
	n := 0
	for _, c := range s {
		counts[c]++
		n++
	}
	var perChar float64
	for _, k := range counts {
		p := float64(k) / float64(n)
		perChar -= p * math.Log2(p)
	}
	return perChar * float64(n)
}
