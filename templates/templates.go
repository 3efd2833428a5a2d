// Package templates holds the embedded HTML pages and CSS the provider shows
// to people, parsed once at start-up.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
)

//go:embed *.html static
var embedded embed.FS

// Embedded returns the built-in pages and static files.
func Embedded() fs.FS { return embedded }

// Page names; each must exist as "<name>.html".
const (
	PageLogin   = "login"
	PageConsent = "consent"
	PageError   = "error"
	PageOOB     = "oob"
	// PageLogout asks whether to sign out; PageLoggedOut says it is done.
	PageLogout    = "logout"
	PageLoggedOut = "logged-out"
)

var required = []string{PageLogin, PageConsent, PageError, PageOOB, PageLogout, PageLoggedOut}

// Brand is what every page shows of the organisation.
type Brand struct {
	OrgName string
	// Base is the issuer's path prefix, for links to static files.
	Base string
}

// LoginPage is the data of the sign-in form.
type LoginPage struct {
	Brand
	Action      string
	Interaction string
	CSRF        string
	ClientName  string
	Username    string
	Error       string
	// Client is what the client registered about itself.
	Client ClientLinks
}

// ClientLinks are what a client registered for people to see (RFC 7591
// §2): its logo, and links to its site, privacy policy and terms. Any of
// them may be empty.
type ClientLinks struct {
	LogoURI   string
	ClientURI string
	PolicyURI string
	TosURI    string
}

// ScopeLine is one requested permission in plain words.
type ScopeLine struct {
	Name        string
	Description string
}

// ConsentPage is the data of the consent form.
type ConsentPage struct {
	Brand
	Action      string
	Interaction string
	CSRF        string
	ClientName  string
	Username    string
	Scopes      []ScopeLine
	// Client is what the client registered about itself.
	Client ClientLinks
}

// ErrorPage is the data of the error page. Message is meant for people;
// Code is the OAuth error code, if any.
type ErrorPage struct {
	Brand
	Status    int
	Title     string
	Message   string
	Code      string
	RequestID string
}

// OOBPage shows an authorization code for a person to copy into an
// application that cannot receive a redirect.
type OOBPage struct {
	Brand
	ClientName string
	Code       string
}

// Field is a hidden form field.
type Field struct {
	Name  string
	Value string
}

// LogoutPage asks a person to confirm signing out, when the request did
// not prove it comes from an application they are signed in to. Hidden
// carries the request's parameters through the form.
type LogoutPage struct {
	Brand
	Action   string
	CSRF     string
	Username string
	// ClientName is set only when a verified ID token names the client.
	ClientName string
	Hidden     []Field
	// RedirectRefused: the application asked to be returned to an address
	// not registered for it, so the person stays here afterwards.
	RedirectRefused bool
}

// LoggedOutPage tells a person they are signed out. FrontChannel are the
// applications' front-channel logout URLs, loaded in hidden iframes;
// Continue, when set, is where the page goes once they have loaded.
type LoggedOutPage struct {
	Brand
	FrontChannel    []string
	Continue        template.URL
	RedirectRefused bool
}

// Set is the parsed pages.
type Set struct {
	pages  map[string]*template.Template
	static fs.FS
}

// New parses every page in fsys (the layout partial "layout.html" is shared)
// and fails if a required page is missing or does not parse.
func New(fsys fs.FS) (*Set, error) {
	layout, err := fs.ReadFile(fsys, "layout.html")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	s := &Set{pages: map[string]*template.Template{}}
	for _, name := range required {
		body, err := fs.ReadFile(fsys, name+".html")
		if err != nil {
			return nil, fmt.Errorf("templates: required page %q: %w", name, err)
		}
		t, err := template.New("layout").Parse(string(layout))
		if err == nil {
			_, err = t.New(name).Parse(string(body))
		}
		if err != nil {
			return nil, fmt.Errorf("templates: parse %s: %w", name, err)
		}
		s.pages[name] = t
	}
	if s.static, err = fs.Sub(fsys, "static"); err != nil {
		return nil, fmt.Errorf("templates: static: %w", err)
	}
	return s, nil
}

// Render executes page into a buffer first, so a template error never
// leaves a half-written page behind a 200 status.
func (s *Set) Render(w http.ResponseWriter, status int, name string, data any) error {
	t, ok := s.pages[name]
	if !ok {
		return fmt.Errorf("templates: no page %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return fmt.Errorf("templates: render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// Static serves the CSS and other static files.
func (s *Set) Static() http.Handler {
	return http.FileServer(http.FS(s.static))
}
