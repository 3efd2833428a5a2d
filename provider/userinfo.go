package provider

// The UserInfo endpoint, OpenID Connect Core §5.3, with bearer tokens in the
// Authorization header or a form body (RFC 6750 §2.1, §2.2) and RFC 6750 §3
// errors in WWW-Authenticate.

import (
	"errors"
	"maps"
	"mime"
	"net/http"
	"strings"

	"github.com/ory/fosite"

	"github.com/smallsso/provider/storage"
)

func (p *Provider) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token, problem := bearerToken(r)
	if problem != "" {
		bearerError(w, http.StatusBadRequest, "invalid_request", problem)
		return
	}
	if token == "" {
		// §3.1: a request without credentials gets no error code.
		w.Header().Set("WWW-Authenticate", `Bearer realm="userinfo"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": "No access token was sent."})
		return
	}
	sess := newSession()
	use, ar, err := p.oauth2.IntrospectToken(ctx, token, fosite.AccessToken, sess)
	if storageDown(err) {
		p.log.ErrorContext(ctx, "userinfo", "request_id", requestID(ctx), "err", err.Error())
		writeStorageDown(w)
		return
	}
	if err != nil || use != fosite.AccessToken {
		bearerError(w, http.StatusUnauthorized, "invalid_token", "The access token is invalid, expired or revoked.")
		return
	}
	if !ar.GetGrantedScopes().Has("openid") {
		bearerError(w, http.StatusForbidden, "insufficient_scope", "The access token was not granted the openid scope.")
		return
	}
	user, err := p.store.GetUser(ctx, sess.GetSubject())
	if errors.Is(err, storage.ErrNotFound) {
		bearerError(w, http.StatusUnauthorized, "invalid_token", "The user of this token no longer exists.")
		return
	}
	if storageDown(err) {
		p.log.ErrorContext(ctx, "userinfo", "request_id", requestID(ctx), "err", err.Error())
		writeStorageDown(w)
		return
	}
	if err != nil {
		p.log.ErrorContext(ctx, "userinfo", "request_id", requestID(ctx), "err", err.Error())
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	claims := userClaims(user, ar.GetGrantedScopes())
	maps.Copy(claims, pickClaims(user, sess.UserinfoClaims))
	p.writeUserinfo(w, r, ar.GetClient(), claims)
}

// bearerToken finds the access token. Query parameters are not accepted
// (RFC 9700 §2.5), and two methods at once are an error (RFC 6750 §2).
func bearerToken(r *http.Request) (token, problem string) {
	var found []string
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, value, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(value) == "" {
			return "", "The Authorization header must be \"Bearer <token>\"."
		}
		found = append(found, strings.TrimSpace(value))
	}
	if r.Method == http.MethodPost {
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct == "application/x-www-form-urlencoded" {
			if err := r.ParseForm(); err != nil {
				return "", "The request body is not a valid form."
			}
			if v := r.PostForm.Get("access_token"); v != "" {
				found = append(found, v)
			}
		}
	}
	if r.URL.Query().Has("access_token") {
		return "", "Access tokens are not accepted in the URL; use the Authorization header."
	}
	switch len(found) {
	case 0:
		return "", ""
	case 1:
		return found[0], ""
	default:
		return "", "Send the access token in one place only."
	}
}

func bearerError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="userinfo", error="`+code+`", error_description="`+description+`"`)
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}
