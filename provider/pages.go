package provider

// What the pages share: the language of a page, the brand, what a page
// shows of a client, the theme style sheet, and the cross-origin guard of
// the forms.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/ory/fosite"

	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/templates"
)

type uiLocalesKey struct{}

// withUILocales carries an interaction's ui_locales to the page that
// answers a posted form: the form itself does not repeat them.
func withUILocales(r *http.Request, uiLocales string) *http.Request {
	if uiLocales == "" {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), uiLocalesKey{}, uiLocales))
}

// lang is the language of the page answering r: the authorization
// request's ui_locales when the catalogue has one of them, else the
// browser's Accept-Language, else English.
func (p *Provider) lang(r *http.Request) string {
	ui, _ := r.Context().Value(uiLocalesKey{}).(string)
	if ui == "" && r.Form != nil {
		ui = r.Form.Get("ui_locales")
	}
	return p.pages().Match(ui, r.Header.Get("Accept-Language"))
}

// tr translates a message (an English fmt format from the catalogue) into
// the language of the page answering r.
func (p *Provider) tr(r *http.Request, key string, args ...any) string {
	return p.pages().T(p.lang(r), key, args...)
}

// LogoURLProblem says what is wrong with ui.logo_url, or "" when it is
// fine: an https URL, or a path below the issuer such as
// "static/logo.svg" (served from ui.templates_dir/static). A plain-http
// logo would be refused by the pages' Content-Security-Policy.
func LogoURLProblem(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Sprintf("%q is not a URL", raw)
	case u.Scheme == "https" && u.Host != "":
		return ""
	case u.Scheme == "" && u.Host == "" && !strings.HasPrefix(raw, "/") && u.Path != "":
		return ""
	}
	return fmt.Sprintf("%q must be an https URL or a path below the issuer like static/logo.svg", raw)
}

// logoURLOf is ui.logo_url as the pages link it.
func (p *Provider) logoURLOf(ui *uiSettings) string {
	raw := ui.logoURL
	if raw == "" || strings.HasPrefix(raw, "https://") {
		return raw
	}
	return p.basePath + "/" + raw
}

// clientInfo is what the pages show of the client of an authorization
// request.
func clientInfo(c fosite.Client) templates.ClientInfo {
	if cl, ok := c.(*client); ok {
		return recordInfo(cl.rec)
	}
	return templates.ClientInfo{ID: c.GetID(), Name: c.GetID()}
}

// recordInfo is what the pages show of a stored client. Only web URLs are
// linked, and only https logos shown: the client chose them, and a page
// must neither run a javascript: link nor load a plain-http image.
func recordInfo(rec storage.Client) templates.ClientInfo {
	info := templates.ClientInfo{
		ID:        rec.ID,
		Name:      rec.Name,
		LogoURL:   webURL(rec.LogoURI, true),
		URL:       webURL(rec.ClientURI, false),
		PolicyURL: webURL(rec.PolicyURI, false),
		TosURL:    webURL(rec.TosURI, false),
	}
	if info.Name == "" {
		info.Name = rec.ID
	}
	if u, err := url.Parse(info.URL); err == nil {
		info.Host = u.Host
	}
	return info
}

func webURL(raw string, httpsOnly bool) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && (httpsOnly || u.Scheme != "http")) {
		return ""
	}
	return u.String()
}

// handleTheme serves the style sheet of ui.primary_color. It is a file,
// not an inline style, so the CSP needs no 'unsafe-inline'.
func (p *Provider) handleTheme(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache") // tiny, and must follow a changed colour at once
	w.Write([]byte(p.ui.Load().theme.CSS()))
}

// formPaths are the endpoints of the provider's own forms. Only its own
// pages post to them, so a cross-origin post is refused outright (Go's
// CrossOriginProtection: Sec-Fetch-Site, then Origin), on top of the CSRF
// token. A nil entry guards every request; a function guards only the
// requests it picks. The protocol endpoints are not here: relying parties
// post to /authorize, /token and the rest from their own origins by design.
var formPaths = map[string]func(*http.Request) bool{
	"/login":            nil,
	"/login/mfa":        nil,
	"/consent":          nil,
	"/account/password": nil,
	"/account/revoke":   nil,
	// Second factors (enrol.go, accountmfa.go).
	"/login/enrol":            nil,
	"/login/continue":         nil,
	"/account/totp":           nil,
	"/account/totp/confirm":   nil,
	"/account/totp/remove":    nil,
	"/account/recovery-codes": nil,
	// An RP may post its logout request cross-site (RP-Initiated Logout
	// §2); only the confirmation form, which carries confirm, is ours.
	"/logout": func(r *http.Request) bool {
		return r.Method == http.MethodPost && r.PostFormValue("confirm") != ""
	},
}

func (p *Provider) newCrossOriginGuard() *http.CrossOriginProtection {
	c := http.NewCrossOriginProtection()
	c.SetDenyHandler(http.HandlerFunc(p.refuseCrossOrigin))
	return c
}

func (p *Provider) refuseCrossOrigin(w http.ResponseWriter, r *http.Request) {
	p.log.WarnContext(r.Context(), "cross-origin form post refused", "request_id", requestID(r.Context()), "path", r.URL.Path)
	p.renderError(w, r, pageError{Status: http.StatusForbidden, Message: msgCrossOrigin})
}

// guardForm refuses cross-origin requests to next, or only those only
// picks when it is not nil.
func (p *Provider) guardForm(c *http.CrossOriginProtection, only func(*http.Request) bool, next http.Handler) http.Handler {
	if only == nil {
		return c.Handler(next)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if only(r) {
			if err := c.Check(r); err != nil {
				p.refuseCrossOrigin(w, r)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
