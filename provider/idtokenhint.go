package provider

import (
	"encoding/json"
	"errors"

	"github.com/go-jose/go-jose/v4"
)

var errBadIDTokenHint = errors.New("id_token_hint was not issued by this provider")

// verifyIDTokenHint checks that raw is a JWS one of our published keys
// signed, issued by us, and returns its claims. An expired token is
// accepted: a hint names a person and a client, and RP-Initiated Logout
// 1.0 §2 expects hints that expired long ago. "none" is not among the
// algorithms go-jose is allowed to parse, so an unsigned token never gets
// here. Our access and logout tokens are JWTs from the same keys, told
// apart by typ, and refused.
func (p *Provider) verifyIDTokenHint(raw string) (map[string]any, error) {
	jws, err := jose.ParseSignedCompact(raw, jwtVerifyAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, errBadIDTokenHint
	}
	h := jws.Signatures[0].Header
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ == atJWTType || typ == logoutJWTType {
		return nil, errBadIDTokenHint
	}
	set := p.keys.JWKS()
	candidates := set.Keys
	if h.KeyID != "" {
		candidates = set.Key(h.KeyID)
	}
	var payload []byte
	for _, k := range candidates {
		// The key decides the algorithm, so a token cannot pick a weaker
		// one for our key.
		if k.Algorithm != h.Algorithm {
			continue
		}
		if payload, err = jws.Verify(k); err == nil {
			break
		}
	}
	if payload == nil {
		return nil, errBadIDTokenHint
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, errBadIDTokenHint
	}
	if iss, _ := claims["iss"].(string); iss != p.cfg.Issuer {
		return nil, errBadIDTokenHint
	}
	return claims, nil
}
