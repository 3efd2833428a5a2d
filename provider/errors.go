package provider

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/ory/fosite"

	"github.com/smallsso/provider/storage"
	"github.com/smallsso/provider/templates"
)

// Messages people see. Kept together so wording stays consistent.
const (
	msgInternal          = "Something went wrong on our side. Please try again in a moment."
	msgNotFound          = "There is nothing at this address."
	msgMethodNotAllowed  = "This page cannot be used that way."
	msgBadLogin          = "Incorrect username or password."
	msgInteractionGone   = "This sign-in took too long or was already finished. Please go back to the application and start again."
	msgCSRF              = "This form expired or was sent from another site. Please go back to the application and start again."
	msgBadAuthorize      = "The application sent an invalid sign-in request."
	msgMissingCredential = "Please enter your username and password."
	msgThrottled         = "Too many failed sign-ins. Try again in %d minutes."
	msgCrossOrigin       = "This form was sent from another website, so it was refused. Please go back and try again on this site."
)

// pageError is an error shown to a person as a page. Message is for them;
// Err is logged with the request ID and never shown.
type pageError struct {
	Status  int
	Title   string
	Message string
	Code    string
	// Advice says what the person can do (a catalogue message); empty
	// means the default for the status (see defaultAdvice).
	Advice string
	Err    error
}

func (e pageError) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return e.Message
}

func (p *Provider) renderError(w http.ResponseWriter, r *http.Request, e pageError) {
	id := requestID(r.Context())
	if e.Status == http.StatusInternalServerError && (errors.Is(e.Err, storage.ErrUnavailable) || errors.Is(e.Err, storage.ErrConflict)) {
		// The database could not take a write, or the write lost a race
		// with another replica's: nothing was kept, and trying again
		// may work (readyz.go).
		e.Status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", strconv.Itoa(int(retryUnavailable.Seconds())))
	}
	if e.Err != nil {
		level := slog.LevelWarn
		if e.Status >= 500 {
			level = slog.LevelError
		}
		p.log.Log(r.Context(), level, "page error", slog.String("request_id", id), slog.Int("status", e.Status), slog.String("err", e.Err.Error()))
	}
	if e.Title == "" {
		e.Title = http.StatusText(e.Status)
	}
	lang := p.lang(r)
	if e.Advice == "" {
		e.Advice = defaultAdvice(e)
	}
	ui := p.ui.Load() // one version of the settings for the whole page
	advice := ""
	if e.Advice != "" {
		advice = ui.pages.T(lang, e.Advice)
	}
	w.Header().Set("Cache-Control", "no-store")
	err := ui.pages.Render(w, e.Status, templates.PageError, lang, templates.ErrorPage{
		Brand: p.brandOf(ui), Status: e.Status, Title: ui.pages.T(lang, e.Title), Message: ui.pages.T(lang, e.Message),
		Advice: advice, Code: e.Code, RequestID: id,
	})
	if err != nil {
		p.log.ErrorContext(r.Context(), "render error page", slog.String("request_id", id), slog.String("err", err.Error()))
		http.Error(w, msgInternal, http.StatusInternalServerError)
	}
}

func (p *Provider) render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	if err := p.pages().Render(w, status, page, p.lang(r), data); err != nil {
		p.renderError(w, r, pageError{Status: http.StatusInternalServerError, Message: msgInternal, Err: err})
	}
}

func (p *Provider) brand() templates.Brand { return p.brandOf(p.ui.Load()) }

func (p *Provider) brandOf(ui *uiSettings) templates.Brand {
	return templates.Brand{OrgName: ui.orgName, LogoURL: p.logoURLOf(ui), Base: p.basePath}
}

func (p *Provider) handleNotFound(w http.ResponseWriter, r *http.Request) {
	p.renderError(w, r, pageError{Status: http.StatusNotFound, Message: msgNotFound})
}

func (p *Provider) handleMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	p.renderError(w, r, pageError{Status: http.StatusMethodNotAllowed, Message: msgMethodNotAllowed})
}

// logProtocolError records fosite's debug detail on our side only; clients
// get the RFC 6749 code and description.
func (p *Provider) logProtocolError(r *http.Request, endpoint string, err error) {
	rfc := fosite.ErrorToRFC6749Error(err)
	level := slog.LevelInfo
	if rfc.CodeField >= 500 {
		level = slog.LevelError
	}
	attrs := []any{
		slog.String("request_id", requestID(r.Context())),
		slog.String("endpoint", endpoint),
		slog.String("error", rfc.ErrorField),
		slog.String("description", rfc.GetDescription()),
	}
	if d := rfc.DebugField; d != "" {
		attrs = append(attrs, slog.String("debug", d))
	}
	if cause := errors.Unwrap(rfc); cause != nil && rfc.CodeField >= 500 {
		attrs = append(attrs, slog.String("cause", cause.Error()))
	}
	p.log.Log(r.Context(), level, "protocol error", attrs...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"error":"server_error"}`))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}
