package provider

// Signed userinfo responses, OIDC Core §5.3.2: a client registered with
// userinfo_signed_response_alg gets the claims as a JWS (application/jwt)
// with iss and aud, so it can tell they came from us and for it.

import (
	"encoding/json"
	"net/http"

	"github.com/ory/fosite"
)

// userinfoAlg is the client's registered userinfo algorithm; empty means
// plain JSON.
func userinfoAlg(c fosite.Client) string {
	if cl, ok := c.(*client); ok {
		return cl.rec.UserinfoSignedResponseAlg
	}
	return ""
}

// writeUserinfo answers with claims as JSON or, if the client registered
// an algorithm, as a JWS signed with our active key for it.
func (p *Provider) writeUserinfo(w http.ResponseWriter, r *http.Request, c fosite.Client, claims map[string]any) {
	alg := userinfoAlg(c)
	if alg == "" {
		writeJSON(w, http.StatusOK, claims)
		return
	}
	token, err := p.signUserinfo(alg, c.GetID(), claims)
	if err != nil {
		p.log.ErrorContext(r.Context(), "userinfo: sign", "request_id", requestID(r.Context()), "alg", alg, "err", err.Error())
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	w.Header().Set("Content-Type", "application/jwt")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(token))
}

func (p *Provider) signUserinfo(alg, clientID string, claims map[string]any) (string, error) {
	signer, err := joseSigner(p.keys, alg, "")
	if err != nil {
		return "", err
	}
	// §5.3.2: iss and aud SHOULD be there; no nonce, which belongs to the
	// ID token only.
	out := make(map[string]any, len(claims)+3)
	for name, v := range claims {
		out[name] = v
	}
	delete(out, "nonce")
	out["iss"] = p.cfg.Issuer
	out["aud"] = clientID
	out["iat"] = p.now().Unix()
	payload, err := json.Marshal(out)
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}
