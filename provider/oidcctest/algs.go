package oidcctest

// Checks for the modules about signing algorithms, signed userinfo,
// refresh tokens, key rotation and the discovery document.

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// CheckSignedUserinfo applies oidcc-userinfo-rs256's checks to a response
// the client registered userinfo_signed_response_alg=alg for: HTTP 200,
// Content-Type application/jwt, a JWS verifiable with the JWKS key its kid
// names (ValidateUserInfoResponseSignature), the registered alg, iss and
// aud (ValidateSignedUserInfoResponseStandardJWTClaims; exp, iat and nbf
// only if present), no nonce, sub equal to the ID token's, and standard
// claim types. It returns the claims and the JWS header.
func (op *OP) CheckSignedUserinfo(t testing.TB, c *Client, ur *UserinfoResponse, alg, sub string) (map[string]any, jose.Header) {
	t.Helper()
	if ur.Status != http.StatusOK {
		t.Fatalf("userinfo: HTTP %d %s", ur.Status, ur.Body)
	}
	if mt, _, _ := mime.ParseMediaType(ur.Header.Get("Content-Type")); mt != "application/jwt" {
		t.Fatalf("userinfo: Content-Type %q, want application/jwt", ur.Header.Get("Content-Type"))
	}
	jws, err := jose.ParseSigned(string(ur.Body), signingAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		t.Fatalf("ValidateUserInfoResponseSignature: not a JWS with one signature: %v", err)
	}
	h := jws.Signatures[0].Header
	if h.Algorithm != alg {
		t.Fatalf("userinfo alg = %s, want the registered %s", h.Algorithm, alg)
	}
	if h.KeyID == "" {
		t.Fatal("userinfo JWS has no kid")
	}
	payload := op.verifyWithKid(t, "userinfo", jws, h)
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatalf("userinfo JWS payload is not a JSON object: %v", err)
	}
	if claims["iss"] != op.Issuer {
		t.Fatalf("ValidateSignedUserInfoResponseStandardJWTClaims: iss = %v, want %q", claims["iss"], op.Issuer)
	}
	if !audHas(claims["aud"], c.ID) {
		t.Fatalf("ValidateSignedUserInfoResponseStandardJWTClaims: aud = %v, want %q", claims["aud"], c.ID)
	}
	now := op.now()
	if v, ok := claims["exp"]; ok {
		if n, isNum := v.(float64); !isNum || time.Unix(int64(n), 0).Before(now.Add(-5*time.Minute)) {
			t.Fatalf("userinfo exp %v is not a number in the future", v)
		}
	}
	for _, name := range []string{"iat", "nbf"} {
		if v, ok := claims[name]; ok {
			if n, isNum := v.(float64); !isNum || time.Unix(int64(n), 0).After(now.Add(5*time.Minute)) {
				t.Fatalf("userinfo %s %v is not a number in the past", name, v)
			}
		}
	}
	if _, ok := claims["nonce"]; ok {
		t.Fatal("userinfo JWS has a nonce")
	}
	if s, _ := claims["sub"].(string); s == "" || (sub != "" && s != sub) {
		t.Fatalf("userinfo sub = %v, want the id_token's %q", claims["sub"], sub)
	}
	CheckStandardClaims(t, "userinfo", claims, now)
	return claims, h
}

func audHas(aud any, id string) bool {
	switch a := aud.(type) {
	case string:
		return a == id
	case []any:
		return slices.Contains(a, any(id))
	}
	return false
}

// CompareIDTokenClaims is CompareIdTokenClaims (OIDC Core §12.2) for the
// ID token of a refresh: iss, sub and aud as in the first, a new iat,
// auth_time unchanged if present, azp unchanged and absent if it was.
func CompareIDTokenClaims(t testing.TB, first, second *IDToken) {
	t.Helper()
	for _, name := range []string{"iss", "sub"} {
		if first.Str(name) == "" || first.Str(name) != second.Str(name) {
			t.Fatalf("CompareIdTokenClaims: %s %q then %q", name, first.Str(name), second.Str(name))
		}
	}
	iat1, ok1 := first.Num("iat")
	iat2, ok2 := second.Num("iat")
	if !ok1 || !ok2 || iat1 == iat2 {
		t.Fatalf("CompareIdTokenClaims: iat %v then %v, want a new one", first.Claims["iat"], second.Claims["iat"])
	}
	a1, a2 := first.Claims["aud"], second.Claims["aud"]
	if arr1, isArr := a1.([]any); isArr {
		arr2, ok := a2.([]any)
		if !ok || !sameSet(arr1, arr2) {
			t.Fatalf("CompareIdTokenClaims: aud %v then %v", a1, a2)
		}
	} else if a1 == nil || a1 != a2 {
		t.Fatalf("CompareIdTokenClaims: aud %v then %v", a1, a2)
	}
	if at2, ok := second.Claims["auth_time"]; ok && at2 != first.Claims["auth_time"] {
		t.Fatalf("CompareIdTokenClaims: auth_time %v then %v", first.Claims["auth_time"], at2)
	}
	azp1, had := first.Claims["azp"]
	azp2, has := second.Claims["azp"]
	if had != has || azp1 != azp2 {
		t.Fatalf("CompareIdTokenClaims: azp %v then %v", azp1, azp2)
	}
}

func sameSet(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for _, v := range a {
		if !slices.Contains(b, v) {
			return false
		}
	}
	return true
}

// CheckRotatedJWKS is oidcc-server-rotate-keys' comparison of the JWKS
// before and after a rotation: the new set passes the JWKS checks, has a
// signing key the old one lacked, and still has the old keys (a warning in
// the suite; a failure here).
func CheckRotatedJWKS(t testing.TB, before, after jose.JSONWebKeySet) (added []string) {
	t.Helper()
	for _, k := range after.Keys {
		if len(before.Key(k.KeyID)) == 0 && k.Use != "enc" {
			added = append(added, k.KeyID)
		}
	}
	if len(added) == 0 {
		t.Fatal("the JWKS after rotation has no new signing key")
	}
	for _, k := range before.Keys {
		if len(after.Key(k.KeyID)) == 0 {
			t.Fatalf("the JWKS after rotation lost key %q", k.KeyID)
		}
	}
	return added
}

// CheckDiscoveryDocument applies oidcc-discovery-endpoint-verification's
// failure-level checks (checklist §3.10) for the static_client variant or,
// with dynamic, the dynamic_client one.
func (op *OP) CheckDiscoveryDocument(t testing.TB, dynamic bool) {
	t.Helper()
	discoveryURL := strings.TrimSuffix(op.Issuer, "/") + "/.well-known/openid-configuration"
	status, hdr, body := op.get(t, discoveryURL)
	if status != http.StatusOK {
		t.Fatalf("EnsureDiscoveryEndpointResponseStatusCodeIs200: HTTP %d", status)
	}
	requireJSON(t, "CheckDiscoveryEndpointReturnedJsonContentType", hdr)
	var d map[string]any
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("discovery is not a JSON object: %v", err)
	}
	array := func(name string, required bool) []string {
		v, ok := d[name]
		if !ok {
			if required {
				t.Errorf("%s is missing", name)
			}
			return nil
		}
		arr, isArr := v.([]any)
		if !isArr {
			t.Errorf("%s is not an array: %v", name, v)
			return nil
		}
		var out []string
		for _, e := range arr {
			s, isStr := e.(string)
			if !isStr {
				t.Errorf("%s has a non-string entry %v", name, e)
				continue
			}
			out = append(out, s)
		}
		return out
	}

	rts := array("response_types_supported", true)
	if dynamic {
		for _, want := range []string{"code", "id_token", "id_token token"} {
			if !slices.ContainsFunc(rts, func(s string) bool { return sameWords(s, want) }) {
				t.Errorf("OIDCCCheckDiscEndpointResponseTypesSupportedDynamic: %q missing from %v", want, rts)
			}
		}
	} else if !slices.ContainsFunc(rts, func(s string) bool {
		return slices.ContainsFunc([]string{"code", "id_token", "id_token token", "code id_token", "code token", "code id_token token"}, func(w string) bool { return sameWords(s, w) })
	}) {
		t.Errorf("OIDCCCheckDiscEndpointResponseTypesSupported: no OIDC response type in %v", rts)
	}

	if err := SecureURL(discoveryURL); err != nil || !strings.HasSuffix(discoveryURL, "/.well-known/openid-configuration") {
		t.Errorf("CheckDiscEndpointDiscoveryUrl: %s (%v)", discoveryURL, err)
	}
	iss, _ := d["issuer"].(string)
	if strings.TrimSuffix(iss, "/") != strings.TrimSuffix(strings.TrimSuffix(discoveryURL, "/.well-known/openid-configuration"), "/") {
		t.Errorf("CheckDiscEndpointIssuer: issuer %q does not match the discovery URL %s", iss, discoveryURL)
	}
	if u, err := url.Parse(iss); err != nil || SecureURL(iss) != nil || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.Contains(iss, "#") {
		t.Errorf("CheckDiscEndpointIssuerIsValidUrl: %q", iss)
	}
	if st := array("subject_types_supported", true); !slices.Contains(st, "public") && !slices.Contains(st, "pairwise") {
		t.Errorf("CheckDiscEndpointSubjectTypesSupported: %v", st)
	}
	if algs := array("id_token_signing_alg_values_supported", true); !slices.Contains(algs, "RS256") {
		t.Errorf("OIDCCCheckDiscEndpointIdTokenSigningAlgValuesSupported: RS256 missing from %v", algs)
	}
	array("userinfo_signing_alg_values_supported", false)
	for _, name := range []string{"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"} {
		s, _ := d[name].(string)
		if err := SecureURL(s); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Every *_endpoint, registration_endpoint included, must be https
	// (CheckDiscEndpointAllEndpointsAreHttps).
	for name, v := range d {
		if !strings.HasSuffix(name, "_endpoint") {
			continue
		}
		s, _ := v.(string)
		if err := SecureURL(s); err != nil {
			t.Errorf("CheckDiscEndpointAllEndpointsAreHttps: %s: %v", name, err)
		}
	}
	op.FetchJWKS(t) // CheckJwksUri, FetchServerKeys, ValidateServerJWKs, no private keys

	array("claims_supported", true) // a warning in the suite
	gts := array("grant_types_supported", false)
	if _, present := d["grant_types_supported"]; present {
		if len(gts) == 0 {
			t.Error("OIDCCCheckDiscEndpointGrantTypesSupported: an empty array")
		}
		if dynamic && (!slices.Contains(gts, "authorization_code") || !slices.Contains(gts, "implicit")) {
			t.Errorf("OIDCCCheckDiscEndpointGrantTypesSupportedDynamic: %v lacks authorization_code or implicit", gts)
		}
	}
	scopes := array("scopes_supported", true)
	if !slices.Contains(scopes, "openid") {
		t.Errorf("CheckDiscEndpointScopesSupportedContainsOpenId: %v", scopes)
	}
	for _, s := range scopes {
		if !scopeToken.MatchString(s) {
			t.Errorf("CheckDiscEndpointScopesSupportedSyntax: %q is not a scope token", s)
		}
	}
	for _, name := range []string{"ui_locales_supported", "claims_locales_supported"} {
		for _, tag := range array(name, false) {
			if !languageTag.MatchString(tag) {
				t.Errorf("CheckDiscEndpointLocalesSyntax: %s has %q", name, tag)
			}
		}
	}
	if _, present := d["code_challenge_methods_supported"]; present {
		m := array("code_challenge_methods_supported", false)
		if len(m) > 0 && !slices.Contains(m, "S256") && !slices.Contains(m, "plain") {
			t.Errorf("EnsureServerConfigurationCodeChallengeMethodsSupportedIsAnArray: %v", m)
		}
	}
}

// sameWords compares space-separated lists as sets, as response types are.
func sameWords(a, b string) bool {
	x, y := strings.Fields(a), strings.Fields(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

var (
	// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
	scopeToken = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`)
	// RFC 5646 well-formedness, short of the subtag registry.
	languageTag = regexp.MustCompile(`^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$`)
)
