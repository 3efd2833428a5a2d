// Package templates holds the embedded HTML pages, CSS and message
// catalogue the provider shows to people, parsed once at start-up, and lets
// an operator replace any of them name by name from a folder.
package templates

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
)

//go:embed *.html static locales
var embedded embed.FS

// Embedded returns the built-in pages, static files and catalogue.
func Embedded() fs.FS { return embedded }

// Page names; each must exist as "<name>.html". layout.html wraps them all
// and holds the shared partials.
const (
	PageLogin   = "login"
	PageConsent = "consent"
	PageError   = "error"
	PageOOB     = "oob"
	PageAccount = "account"
	// PageLogout asks whether to sign out; PageLoggedOut says it is done.
	PageLogout    = "logout"
	PageLoggedOut = "logged-out"
)

var required = []string{PageLogin, PageConsent, PageError, PageOOB, PageAccount, PageLogout, PageLoggedOut, PageTOTPEnrol, PageRecoveryCodes}

const layoutFile = "layout.html"

// standalone are embedded files parsed on their own, outside the page set.
var standalone = []string{"formpost.html"}

// partials are the embedded files that are neither a page, the layout nor
// standalone (account-mfa.html, say): each only defines templates, parsed
// into every page after the layout, so a page includes one with
// {{template "name" .}}. An operator may replace one by name like a page.
func partials() []string {
	names, _ := fs.Glob(embedded, "*.html") // a constant pattern
	return slices.DeleteFunc(names, func(n string) bool {
		return n == layoutFile || slices.Contains(standalone, n) || slices.Contains(required, strings.TrimSuffix(n, ".html"))
	})
}

// Brand is what every page shows of the organisation.
type Brand struct {
	OrgName string
	// LogoURL is the organisation's logo, shown beside its name.
	LogoURL string
	// Base is the issuer's path prefix, for links to static files.
	Base string
}

// ClientInfo is what a page shows of the application asking for access.
// The URLs are http(s) only; a logo is https only (the pages' CSP loads no
// plain-http images).
type ClientInfo struct {
	ID        string
	Name      string
	LogoURL   string
	URL       string
	Host      string // URL's host, the short form people recognise
	PolicyURL string
	TosURL    string
}

// LoginPage is the data of the sign-in form. Error is already translated.
type LoginPage struct {
	Brand
	Action      string
	Interaction string
	CSRF        string
	ClientName  string
	Client      ClientInfo
	Username    string
	Error       string
	// Account is set when the sign-in leads to the account page rather
	// than to an application.
	Account bool
	// Passkey offers signing in with a passkey; nil when passkeys are off.
	Passkey *PasskeySignIn
}

// ScopeLine is one requested permission. Description is a catalogue key
// (the English text); empty for a scope the provider does not know, which
// the page then shows by Name.
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
	Client      ClientInfo
	Username    string
	Scopes      []ScopeLine
	AccountURL  string
	// Unverified marks a client anyone could register: the organisation
	// has not checked who is behind it.
	Unverified bool
}

// ErrorPage is the data of the error page. Title and Message are meant for
// people and already translated; Code is the OAuth error code, if any.
type ErrorPage struct {
	Brand
	Status  int
	Title   string
	Message string
	// Advice says what the person can do, already translated; may be empty.
	Advice    string
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
	// Cancel is where "Cancel" leads without signing out: the home page
	// of the application a verified ID token names, else the account
	// page. With JavaScript it goes back in the browser's history instead.
	Cancel string
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

// AccountUser is the profile the account page shows.
type AccountUser struct {
	Username      string
	Name          string
	Email         string
	EmailVerified bool
	Phone         string
	Groups        []string
}

// AccountApp is one application the person let in: a remembered consent,
// refresh tokens, or both.
type AccountApp struct {
	Client ClientInfo
	Scopes []ScopeLine
	// GrantedAt is the date of the remembered consent (YYYY-MM-DD), if any.
	GrantedAt string
	// Offline says the app holds a refresh token: it keeps access while
	// the person is away.
	Offline bool
}

// AccountPage is the data of the account page. Notice and Error are
// already translated.
type AccountPage struct {
	Brand
	User              AccountUser
	CSRF              string
	PasswordAction    string
	RevokeAction      string
	SignOutURL        string
	PasswordMinLength int
	Apps              []AccountApp
	Notice            string
	Error             string
	// ErrorField is the id of the field Error is about, for aria-describedby.
	ErrorField string

	// Second factors (account-mfa.html). MFAError is already translated;
	// MFAErrorField names the field it is about.
	TOTPEnrolled        bool
	TOTPSince           string // YYYY-MM-DD
	TOTPAction          string
	TOTPRemoveAction    string
	HasFactor           bool
	RecoveryCodesLeft   int
	RecoveryCodesLow    bool
	RecoveryCodesAction string
	MFAError            string
	MFAErrorField       string

	// Passkeys is the passkeys section; nil when passkeys are off.
	Passkeys *AccountPasskeys
}

// Set is the parsed pages, once per language.
type Set struct {
	pages   map[string]map[string]*template.Template // language → page → template
	static  fs.FS
	cat     *catalogue
	version string
}

// New parses the pages of fsys, which holds every file the embedded set
// has (tests pass Embedded()).
func New(fsys fs.FS) (*Set, error) {
	return build(fsys, func(name string) string { return name })
}

// Load is the embedded set with the files of dir, if dir is not empty,
// replacing the embedded ones name by name: "login.html", "layout.html",
// "static/style.css", "locales/de.json", and so on. A file dir does not
// have comes from the embedded set; a file that fails to parse is an
// error naming it.
func Load(dir string) (*Set, error) {
	if dir == "" {
		return New(embedded)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("templates: %s is not a directory", dir)
	}
	over := os.DirFS(dir)
	if err := checkNames(over, dir); err != nil {
		return nil, err
	}
	o := overlay{top: over, bottom: embedded}
	return build(o, func(name string) string {
		if _, err := fs.Stat(over, name); err == nil {
			return path.Join(dir, name)
		}
		return "embedded " + name
	})
}

// checkNames refuses a page name the provider would never use, so a typo
// ("logn.html") fails at start instead of silently showing the default.
func checkNames(over fs.FS, dir string) error {
	known := []string{layoutFile}
	for _, n := range required {
		known = append(known, n+".html")
	}
	known = append(known, partials()...)
	names, err := fs.Glob(over, "*.html")
	if err != nil {
		return fmt.Errorf("templates: %w", err)
	}
	for _, n := range names {
		if !slices.Contains(known, n) {
			return fmt.Errorf("templates: %s: no page of that name (pages: %s)", path.Join(dir, n), strings.Join(known, ", "))
		}
	}
	return nil
}

func build(fsys fs.FS, describe func(name string) string) (*Set, error) {
	cat, err := loadCatalogue(fsys, describe)
	if err != nil {
		return nil, err
	}
	layout, err := fs.ReadFile(fsys, layoutFile)
	if err != nil {
		return nil, fmt.Errorf("templates: %s: %w", describe(layoutFile), err)
	}
	static, err := fs.Sub(fsys, "static")
	if err != nil {
		return nil, fmt.Errorf("templates: static: %w", err)
	}
	s := &Set{pages: map[string]map[string]*template.Template{}, static: static, cat: cat}
	s.version, err = assetVersion(static)
	if err != nil {
		return nil, err
	}
	bodies := map[string]string{}
	for _, name := range required {
		body, err := fs.ReadFile(fsys, name+".html")
		if err != nil {
			return nil, fmt.Errorf("templates: required page %s: %w", describe(name+".html"), err)
		}
		bodies[name] = string(body)
	}
	partNames := partials()
	var parts []string
	for _, name := range partNames {
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("templates: %s: %w", describe(name), err)
		}
		parts = append(parts, string(body))
	}
	for _, lang := range cat.langs {
		funcs := s.funcs(lang)
		pages := map[string]*template.Template{}
		for _, name := range required {
			t, err := template.New("layout").Funcs(funcs).Parse(string(layout))
			if err != nil {
				return nil, fmt.Errorf("templates: parse %s: %w", describe(layoutFile), err)
			}
			for i, body := range parts {
				if _, err := t.New(partNames[i]).Parse(body); err != nil {
					return nil, fmt.Errorf("templates: parse %s: %w", describe(partNames[i]), err)
				}
			}
			if _, err := t.New(name).Parse(bodies[name]); err != nil {
				return nil, fmt.Errorf("templates: parse %s: %w", describe(name+".html"), err)
			}
			pages[name] = t
		}
		s.pages[lang] = pages
	}
	return s, nil
}

// funcs are the template functions of one language: t translates a
// catalogue key (the English text, a fmt format), lang is the page's
// BCP 47 tag, version busts caches of the static files.
func (s *Set) funcs(lang string) template.FuncMap {
	return template.FuncMap{
		"t":       func(key string, args ...any) string { return s.T(lang, key, args...) },
		"lang":    func() string { return lang },
		"version": func() string { return s.version },
		"initial": initial,
	}
}

// initial is the first letter of name, upper case, standing in for a
// missing logo.
func initial(name string) string {
	for _, r := range name {
		return strings.ToUpper(string(r))
	}
	return ""
}

// assetVersion is a digest of the static files, appended to their URLs so
// a browser never keeps an old style sheet after an upgrade.
func assetVersion(static fs.FS) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(static, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(static, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("templates: static: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// Render executes page in lang (a language Match returned; anything else
// falls back to English) into a buffer first, so a template error never
// leaves a half-written page behind a 200 status.
func (s *Set) Render(w http.ResponseWriter, status int, name, lang string, data any) error {
	pages, ok := s.pages[lang]
	if !ok {
		pages = s.pages[s.cat.langs[0]]
	}
	t, ok := pages[name]
	if !ok {
		return fmt.Errorf("templates: no page %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return fmt.Errorf("templates: render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", lang)
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// Static serves the CSS and other static files.
func (s *Set) Static() http.Handler {
	return http.FileServer(http.FS(s.static))
}

// overlay reads a file from top when it has it, else from bottom.
type overlay struct{ top, bottom fs.FS }

func (o overlay) Open(name string) (fs.File, error) {
	f, err := o.top.Open(name)
	if err == nil {
		if st, serr := f.Stat(); serr == nil && !st.IsDir() {
			return f, nil
		}
		f.Close()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return o.bottom.Open(name)
}

// ReadDir lists both layers, so a folder's new files (a language, say)
// are seen beside the embedded ones.
func (o overlay) ReadDir(name string) ([]fs.DirEntry, error) {
	top, terr := fs.ReadDir(o.top, name)
	bottom, berr := fs.ReadDir(o.bottom, name)
	if terr != nil && berr != nil {
		return nil, berr
	}
	seen := map[string]bool{}
	var out []fs.DirEntry
	for _, e := range append(top, bottom...) {
		if !seen[e.Name()] {
			seen[e.Name()] = true
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}
