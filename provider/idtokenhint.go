package provider

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// errBadIDTokenHint is returned, wrapped with the reason, for every hint
// verifyIDTokenHint refuses.
var errBadIDTokenHint = errors.New("id_token_hint is not an ID token of this provider")

// verifyIDTokenHint checks that raw is an ID token we issued: signed by one
// of our published keys (found by kid, meant for the header's algorithm)
// and with our issuer. It does not check exp: OIDC Core §3.1.2.1 and
// RP-Initiated Logout §2 accept an expired ID token as a hint. Checking aud
// against a client is the caller's business.
func (p *Provider) verifyIDTokenHint(raw string) (map[string]any, error) {
	jws, err := jose.ParseSignedCompact(raw, jwtVerifyAlgs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadIDTokenHint, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: %d signatures", errBadIDTokenHint, len(jws.Signatures))
	}
	h := jws.Signatures[0].Header
	// Our access tokens (at+jwt) and logout tokens (logout+jwt) are signed
	// with the same keys and must not pass for ID tokens.
	if typ, ok := h.ExtraHeaders[jose.HeaderType].(string); ok && typ != "JWT" {
		return nil, fmt.Errorf("%w: typ %q", errBadIDTokenHint, typ)
	}
	set := p.keys.JWKS()
	found := set.Key(h.KeyID)
	if h.KeyID == "" || len(found) != 1 || found[0].Algorithm != h.Algorithm {
		return nil, fmt.Errorf("%w: unknown key %q for %s", errBadIDTokenHint, h.KeyID, h.Algorithm)
	}
	payload, err := jws.Verify(found[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadIDTokenHint, err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", errBadIDTokenHint, err)
	}
	if iss, _ := claims["iss"].(string); iss != p.cfg.Issuer {
		return nil, fmt.Errorf("%w: iss %q", errBadIDTokenHint, iss)
	}
	return claims, nil
}
