package provider

// Bounds on what one request may make the provider read, store or echo
// back: the body is read through http.MaxBytesReader before any handler
// sees it (413 beyond the limit), the request-target is bounded (414),
// multipart bodies are refused (they would be spooled to temp files),
// except on the token endpoint where their fields are read in memory, and the parameters that end up in a redirect, a page or a
// sealed interaction are bounded one by one (invalid_request).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
)

// Defaults of Limits, documented in config.example.yaml.
const (
	DefaultFormBodyBytes  = 64 << 10
	DefaultJSONBodyBytes  = 64 << 10
	DefaultParameterBytes = 2048
	DefaultHeaderBytes    = 16 << 10
	DefaultURIBytes       = 8 << 10
)

// Limits bound the size of what a request may carry: the config's
// limits block (zero or absent is the default).
type Limits struct {
	// FormBodyBytes bounds a form body (every endpoint but registration).
	FormBodyBytes int64 `yaml:"form_body_bytes"`
	// JSONBodyBytes bounds a registration request (RFC 7591/7592).
	JSONBodyBytes int64 `yaml:"json_body_bytes"`
	// ParameterBytes bounds each parameter that is echoed back or carried
	// through the sign-in (state, nonce, redirect_uri, logout parameters).
	ParameterBytes int `yaml:"parameter_bytes"`
	// HeaderBytes is the server's MaxHeaderBytes; the provider does not
	// enforce it itself, the http.Server of the caller does.
	HeaderBytes int `yaml:"header_bytes"`
	// URIBytes bounds the request-target (path and query): 414 beyond.
	URIBytes int `yaml:"uri_bytes"`
}

// Defaults fills zero limits with the defaults.
func (l Limits) Defaults() Limits {
	if l.FormBodyBytes == 0 {
		l.FormBodyBytes = DefaultFormBodyBytes
	}
	if l.JSONBodyBytes == 0 {
		l.JSONBodyBytes = DefaultJSONBodyBytes
	}
	if l.ParameterBytes == 0 {
		l.ParameterBytes = DefaultParameterBytes
	}
	if l.HeaderBytes == 0 {
		l.HeaderBytes = DefaultHeaderBytes
	}
	if l.URIBytes == 0 {
		l.URIBytes = DefaultURIBytes
	}
	return l
}

// Bounds of the limits block: below the minimum the provider's own forms
// (the sign-in form carries the sealed request) or ordinary requests no
// longer fit; bodies are held in memory, hence the maximum.
const (
	minBodyLimit      = 8 << 10
	maxBodyLimit      = 16 << 20
	minParameterLimit = 512
	minHeaderLimit    = 4 << 10
	maxHeaderLimit    = 1 << 20
	minURILimit       = 1 << 10
)

// Problems lists what is wrong with limits an operator set, each as
// "key: problem" with the key of the config's limits block.
func (l Limits) Problems() []string {
	var out []string
	between := func(key string, v, lo, hi int64) {
		if v != 0 && (v < lo || v > hi) {
			out = append(out, fmt.Sprintf("%s: %d must be between %d and %d bytes (0 or absent: the default)", key, v, lo, hi))
		}
	}
	between("form_body_bytes", l.FormBodyBytes, minBodyLimit, maxBodyLimit)
	between("json_body_bytes", l.JSONBodyBytes, minBodyLimit, maxBodyLimit)
	between("parameter_bytes", int64(l.ParameterBytes), minParameterLimit, maxBodyLimit)
	between("header_bytes", int64(l.HeaderBytes), minHeaderLimit, maxHeaderLimit)
	between("uri_bytes", int64(l.URIBytes), minURILimit, maxHeaderLimit)
	if eff := l.Defaults(); eff.URIBytes > eff.HeaderBytes {
		// The request line counts against the header limit: a longer URI
		// would be refused with 431 before its length is checked.
		out = append(out, fmt.Sprintf("uri_bytes: %d must not exceed limits.header_bytes (%d)", eff.URIBytes, eff.HeaderBytes))
	}
	return out
}

// Messages of refused requests, on the pages of browser endpoints.
const (
	msgTooLarge   = "This request is too large."
	msgURITooLong = "This address is too long."
	msgMultipart  = "This form was sent in a way this site does not accept."
	msgBodyUnread = "The request could not be read."
)

// jsonEndpoint reports whether the endpoint at path (below the issuer)
// answers in JSON, so a refused request gets an RFC 6749 error object
// rather than a page.
func jsonEndpoint(path string) bool {
	switch path {
	case "/token", "/revoke", "/introspect", "/par", "/userinfo", "/register", "/jwks", "/healthz":
		return true
	}
	return strings.HasPrefix(path, "/register/") || strings.HasPrefix(path, "/.well-known/")
}

// isRegistration reports whether r is for the registration endpoints,
// whose bodies are JSON.
func isRegistration(r *http.Request, basePath string) bool {
	path := strings.TrimPrefix(r.URL.Path, basePath)
	return path == "/register" || strings.HasPrefix(path, "/register/")
}

// refuseRequest answers a request refused before any handler saw it.
func (p *Provider) refuseRequest(w http.ResponseWriter, r *http.Request, status int, desc, page string) {
	p.log.InfoContext(r.Context(), "request refused", slog.String("request_id", requestID(r.Context())),
		slog.Int("status", status), slog.String("reason", desc))
	w.Header().Set("Cache-Control", "no-store")
	if path := strings.TrimPrefix(r.URL.Path, p.basePath); jsonEndpoint(path) {
		code := "invalid_request"
		if isRegistration(r, p.basePath) {
			code = "invalid_client_metadata" // RFC 7591 §3.2.2 has no invalid_request
		}
		writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
		return
	}
	p.renderError(w, r, pageError{Status: status, Message: page})
}

// limitRequest enforces the request-target and body limits, and refuses
// multipart bodies, before anything parses the request. The body is read
// here, at most FormBodyBytes (JSONBodyBytes for registration) through
// http.MaxBytesReader, and handed on from memory: every parser after this
// (fosite's, net/http's) sees a body that is known to fit, and an
// over-long one is answered 413 without being read to its end.
//
// Multipart is refused on every endpoint but /token: nothing else needs
// it, and net/http spools multipart file parts to temp files that a
// handler working on a copy of the request never removes. On /token its
// fields are converted in memory (multipartToURLEncoded).
func (p *Provider) limitRequest(next http.Handler) http.Handler {
	lim := p.cfg.Limits
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.RequestURI) > lim.URIBytes {
			p.refuseRequest(w, r, http.StatusRequestURITooLong, fmt.Sprintf("The request URI is longer than %d bytes.", lim.URIBytes), msgURITooLong)
			return
		}
		limit := lim.FormBodyBytes
		if isRegistration(r, p.basePath) {
			limit = lim.JSONBodyBytes
		}
		// Formatted only for a refusal: this runs on every request.
		tooLarge := func() string { return fmt.Sprintf("The request body is larger than %d bytes.", limit) }
		if r.ContentLength > limit {
			// Known too large before reading: not a byte is read (a client
			// that sent Expect: 100-continue is spared sending it), and the
			// connection is closed after the answer.
			w.Header().Set("Connection", "close")
			p.refuseRequest(w, r, http.StatusRequestEntityTooLarge, tooLarge(), msgTooLarge)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "" {
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil {
				// An unreadable media type: net/http's parsers would
				// ignore the body or fail; say so plainly.
				mt = strings.ToLower(strings.TrimSpace(ct))
			}
			if strings.HasPrefix(mt, "multipart/") && !(mt == "multipart/form-data" && p.isTokenEndpoint(r)) {
				want := "application/x-www-form-urlencoded"
				if isRegistration(r, p.basePath) {
					want = "application/json"
				}
				p.refuseRequest(w, r, http.StatusBadRequest, "Multipart bodies are not accepted; send "+want+".", msgMultipart)
				return
			}
		}
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			p.refuseRequest(w, r, http.StatusRequestEntityTooLarge, tooLarge(), msgTooLarge)
			return
		case err != nil:
			// Shorter than its Content-Length, or the connection broke.
			p.log.DebugContext(r.Context(), "request body unreadable", slog.String("request_id", requestID(r.Context())), slog.String("err", err.Error()))
			p.refuseRequest(w, r, http.StatusBadRequest, "The request body could not be read.", msgBodyUnread)
			return
		}
		if mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
			// Only /token gets here (see above).
			if body, err = multipartToURLEncoded(body, params["boundary"]); err != nil {
				p.refuseRequest(w, r, http.StatusBadRequest, "The multipart body could not be read: "+err.Error()+"; send application/x-www-form-urlencoded.", msgMultipart)
				return
			}
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

func (p *Provider) isTokenEndpoint(r *http.Request) bool {
	return strings.TrimPrefix(r.URL.Path, p.basePath) == "/token" && r.Method == http.MethodPost
}

// maxMultipartFields bounds the parts of a multipart token request; a
// token request has a handful of parameters.
const maxMultipartFields = 64

// multipartToURLEncoded turns the fields of a multipart/form-data body
// into an application/x-www-form-urlencoded one. The token endpoint takes
// both because `curl -F` (the Authlib tutorial's client) sends multipart;
// the body is already in memory and bounded, and converting it here,
// rather than letting net/http's ParseMultipartForm see it, means no part
// is ever spooled to a temp file. File parts are refused: a token request
// has none.
func multipartToURLEncoded(body []byte, boundary string) ([]byte, error) {
	if boundary == "" {
		return nil, errors.New("no boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	form := url.Values{}
	for n := 0; ; n++ {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, errors.New("malformed")
		}
		if n == maxMultipartFields {
			return nil, errors.New("too many parts")
		}
		if part.FileName() != "" {
			return nil, errors.New("file parts are not accepted")
		}
		name := part.FormName()
		if name == "" {
			return nil, errors.New("a part has no name")
		}
		v, err := io.ReadAll(part)
		if err != nil {
			return nil, errors.New("malformed")
		}
		form.Add(name, string(v))
	}
	return []byte(form.Encode()), nil
}

// Parameters bounded by Limits.ParameterBytes: those a redirect, a page or
// a sealed interaction carries back, and the ones naming where to go.
var (
	authorizeBoundedParams = []string{
		"state", "nonce", "redirect_uri", "response_mode", "response_type", "client_id", "scope", "prompt",
		"max_age", "login_hint", "id_token_hint", "request_uri", "ui_locales", "claims_locales", "acr_values",
		"display", "code_challenge", "code_challenge_method",
		// fosite's hint for a refused audience quotes it.
		"resource", "audience",
	}
	// echoedAuthorizeParams go back to the client in an error redirect
	// (or decide where it goes): when one of them is the over-long one,
	// the error is a page, never a redirect carrying it.
	echoedAuthorizeParams = []string{"state", "redirect_uri", "response_mode"}
)

// overlongParam names the first of names whose value (any of its values)
// in form is longer than Limits.ParameterBytes, or "".
func (p *Provider) overlongParam(form url.Values, names []string) string {
	for _, n := range names {
		for _, v := range form[n] {
			if len(v) > p.paramLimit(n) {
				return n
			}
		}
	}
	return ""
}

func (p *Provider) overlongError(name string) string {
	return fmt.Sprintf("The %s parameter is longer than %d bytes.", name, p.paramLimit(name))
}

// paramLimit is the bound of one parameter. An id_token_hint is an ID
// token we issued, never echoed; one for a person in many groups is
// longer than a state or a redirect URI may be, so it gets four times the
// bound.
func (p *Provider) paramLimit(name string) int {
	if name == "id_token_hint" {
		return 4 * p.cfg.Limits.ParameterBytes
	}
	return p.cfg.Limits.ParameterBytes
}

// clientGone is how a request ends whose client has gone away (closed or
// half-closed its connection, which cancels the request's context): a
// failure that follows is the cancellation, not the server's fault. It is
// logged at debug, and no 5xx is sent: the connection is dropped instead.
func clientGone(ctx context.Context) bool {
	return errors.Is(ctx.Err(), context.Canceled)
}

// dropWhenGone keeps a 5xx from being answered to a client that has gone
// away: the handler's answer is discarded and the connection aborted.
func dropWhenGone(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gw := &goneWriter{ResponseWriter: w, ctx: r.Context()}
		next.ServeHTTP(gw, r)
		if gw.dropped {
			// net/http closes the connection without an answer and
			// without logging (http.ErrAbortHandler).
			panic(http.ErrAbortHandler)
		}
	})
}

type goneWriter struct {
	http.ResponseWriter
	ctx     context.Context
	wrote   bool
	dropped bool
}

func (w *goneWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	if code >= 500 && clientGone(w.ctx) {
		w.dropped = true
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *goneWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.dropped {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *goneWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// goneLogHandler logs at debug what a request whose client has gone away
// would log as an error: the error is the cancellation.
type goneLogHandler struct{ slog.Handler }

func (h goneLogHandler) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Level >= slog.LevelError && ctx != nil && clientGone(ctx) {
		if !h.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		rec = rec.Clone()
		rec.Level = slog.LevelDebug
		rec.AddAttrs(slog.Bool("client_gone", true))
	}
	return h.Handler.Handle(ctx, rec)
}

func (h goneLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return goneLogHandler{h.Handler.WithAttrs(attrs)}
}

func (h goneLogHandler) WithGroup(name string) slog.Handler {
	return goneLogHandler{h.Handler.WithGroup(name)}
}
