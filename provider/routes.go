package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/smallsso/provider/provider/metrics"
)

// Handler returns the provider's HTTP surface. Every route is listed here.
func (p *Provider) Handler() http.Handler {
	r := mux.NewRouter()
	if p.basePath != "" {
		r = r.PathPrefix(p.basePath).Subrouter()
	}
	routes := []struct {
		methods []string
		path    string
		handler http.HandlerFunc
		noStore bool
	}{
		{[]string{"GET"}, "/.well-known/openid-configuration", p.handleDiscovery, false},
		{[]string{"GET"}, "/.well-known/oauth-authorization-server", p.handleDiscovery, false},
		{[]string{"GET"}, "/jwks", p.handleJWKS, false},
		{[]string{"GET", "POST"}, "/authorize", p.handleAuthorize, true},
		{[]string{"POST"}, "/login", p.handleLogin, true},
		{[]string{"POST"}, "/login/mfa", p.handleSecondFactor, true},
		{[]string{"POST"}, "/login/enrol", p.handleLoginEnrol, true},
		{[]string{"POST"}, "/login/continue", p.handleLoginContinue, true},
		{[]string{"POST"}, "/consent", p.handleConsent, true},
		{[]string{"POST"}, "/token", withClientMemo(p.handleToken), true},
		{[]string{"GET", "POST"}, "/userinfo", p.handleUserinfo, true},
		{[]string{"POST"}, "/revoke", withClientMemo(p.handleRevoke), true},
		{[]string{"POST"}, "/introspect", withClientMemo(p.handleIntrospect), true},
		{[]string{"POST"}, "/par", withClientMemo(p.handlePAR), true},
		{[]string{"GET", "POST"}, "/logout", p.handleLogout, true},
		{[]string{"GET"}, "/healthz", p.handleHealth, true},
		{[]string{"GET"}, "/readyz", p.handleReady, true},
		{[]string{"POST"}, "/register", p.handleRegister, true},
		{[]string{"GET", "PUT", "DELETE"}, "/register/{client_id}", p.handleClientConfiguration, true},
		{[]string{"GET"}, "/account", p.handleAccount, true},
		{[]string{"POST"}, "/account/password", p.handleChangePassword, true},
		{[]string{"POST"}, "/account/revoke", p.handleRevokeApp, true},
		{[]string{"POST"}, "/account/totp", p.handleAccountTOTP, true},
		{[]string{"POST"}, "/account/totp/confirm", p.handleAccountTOTPConfirm, true},
		{[]string{"POST"}, "/account/totp/remove", p.handleAccountTOTPRemove, true},
		{[]string{"POST"}, "/account/recovery-codes", p.handleAccountRecoveryCodes, true},
		{[]string{"GET"}, "/static/theme.css", p.handleTheme, false},
	}
	plainCORS, userinfoCORS := p.newCORS()
	crossOrigin := p.newCrossOriginGuard()
	for _, rt := range routes {
		var h http.Handler = rt.handler
		if rt.noStore {
			h = noStore(h)
		}
		if only, ok := formPaths[rt.path]; ok {
			h = p.guardForm(crossOrigin, only, h)
		}
		methods := rt.methods
		if exposeAuth, ok := corsPaths[rt.path]; ok {
			c := plainCORS
			if exposeAuth {
				c = userinfoCORS
			}
			h = withCORS(c, rt.methods, h)
			methods = append(slices.Clone(methods), http.MethodOptions)
		}
		r.Handle(rt.path, metrics.Route(rt.path, h)).Methods(methods...)
	}
	r.PathPrefix("/static/").Handler(metrics.Route("/static/", http.StripPrefix(p.path("/static/"), p.staticFiles(cacheFor(time.Hour, p.staticFilesNow())))))
	r.NotFoundHandler = metrics.Route("not_found", http.HandlerFunc(p.handleNotFound))
	r.MethodNotAllowedHandler = metrics.Route("method_not_allowed", http.HandlerFunc(p.handleMethodNotAllowed))
	h := p.withRequestID(securityHeaders(dropWhenGone(p.limitRequest(p.recoverer(r)))))
	if p.metrics != nil {
		h = p.metrics.Instrument(h)
	}
	return h
}

type ctxKey int

const requestIDKey ctxKey = iota

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// withRequestID gives every request an ID that appears in logs and on error
// pages, so a person can quote it to support.
func (p *Provider) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 8)
		rand.Read(b)
		id := hex.EncodeToString(b)
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// recoverer turns a panic into a plain 500 page, never a Go stack in the
// response, and logs it with the request ID.
func (p *Provider) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				p.log.ErrorContext(r.Context(), "panic", slog.Any("err", v), slog.String("request_id", requestID(r.Context())))
				p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; frame-ancestors 'none'; base-uri 'none'")
		next.ServeHTTP(w, r)
	})
}

func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		next.ServeHTTP(w, r)
	})
}

func cacheFor(d time.Duration, next http.Handler) http.Handler {
	v := "public, max-age=" + strconv.Itoa(int(d.Seconds()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", v)
		next.ServeHTTP(w, r)
	})
}

// staticFiles answers 404 for a name no file can have: http.FileServer
// over an fs.FS answers 500 for a path fs.ValidPath refuses (invalid
// UTF-8, say), and a directory on disk refuses a NUL byte with an error
// that is not "not found" either.
func (p *Provider) staticFiles(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.Trim(path.Clean("/"+r.URL.Path), "/")
		if name != "" && (!fs.ValidPath(name) || strings.ContainsFunc(name, func(c rune) bool { return c < 0x20 || c == 0x7f || c == '\\' })) {
			p.handleNotFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (p *Provider) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
