package templates_test

import (
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/smallsso/provider/templates"
)

func TestThemePicksReadableColours(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		primary, wantPrimary, wantOn string
	}{
		{"", templates.DefaultPrimaryColor, "#ffffff"},
		{"#0F766E", "#0f766e", "#ffffff"},
		{"#fd0", "#ffdd00", "#111827"},    // yellow needs dark text
		{"#ffffff", "#ffffff", "#111827"}, // even white works as a button
		{"#000", "#000000", "#ffffff"},
	} {
		th, err := templates.NewTheme(tc.primary)
		if err != nil {
			t.Fatalf("%q: %v", tc.primary, err)
		}
		if th.Primary != tc.wantPrimary || th.OnPrimary != tc.wantOn {
			t.Errorf("%q: primary %s on %s, want %s on %s", tc.primary, th.Primary, th.OnPrimary, tc.wantPrimary, tc.wantOn)
		}
		if r := contrast(th.Primary, th.OnPrimary); r < 4.5 {
			t.Errorf("%q: button text contrast %.2f < 4.5", tc.primary, r)
		}
		for _, bg := range []string{"#ffffff", "#f3f5f8"} {
			if r := contrast(th.Ink, bg); r < 4.5 {
				t.Errorf("%q: ink %s on %s has contrast %.2f < 4.5", tc.primary, th.Ink, bg, r)
			}
		}
		if !strings.Contains(th.CSS(), "--primary:"+th.Primary) {
			t.Errorf("CSS %q lacks the primary colour", th.CSS())
		}
	}
	for _, bad := range []string{"blue", "#12345", "#gggggg", "2456c8", "#2456c8;}body{display:none", "rgb(1,2,3)"} {
		if _, err := templates.NewTheme(bad); err == nil {
			t.Errorf("%q accepted as a colour", bad)
		}
		if _, err := templates.ParseColor(bad); err == nil {
			t.Errorf("ParseColor(%q) accepted", bad)
		}
	}
}

// contrast is the WCAG 2.1 ratio, computed independently of the package.
func contrast(a, b string) float64 {
	lum := func(h string) float64 {
		var c [3]float64
		for i := range c {
			v, _ := strconv.ParseUint(h[1+2*i:3+2*i], 16, 8)
			s := float64(v) / 255
			if s <= 0.04045 {
				c[i] = s / 12.92
			} else {
				c[i] = math.Pow((s+0.055)/1.055, 2.4)
			}
		}
		return 0.2126*c[0] + 0.7152*c[1] + 0.0722*c[2]
	}
	x, y := lum(a), lum(b)
	return (max(x, y) + 0.05) / (min(x, y) + 0.05)
}

func render(t *testing.T, s *templates.Set, page, lang string, data any) string {
	t.Helper()
	w := httptest.NewRecorder()
	if err := s.Render(w, 200, page, lang, data); err != nil {
		t.Fatalf("render %s: %v", page, err)
	}
	return w.Body.String()
}

func TestEmbeddedPagesRenderInEveryLanguage(t *testing.T) {
	t.Parallel()
	s, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Languages(); !slices.Equal(got, []string{"en", "de"}) {
		t.Fatalf("languages %v, want [en de]", got)
	}
	brand := templates.Brand{OrgName: "Acme"}
	client := templates.ClientInfo{ID: "app", Name: "Ärzte App", URL: "https://app.example", Host: "app.example"}
	pages := map[string]any{
		templates.PageLogin:     templates.LoginPage{Brand: brand, ClientName: "App", Client: client},
		templates.PageConsent:   templates.ConsentPage{Brand: brand, ClientName: "App", Client: client, Scopes: []templates.ScopeLine{{Name: "openid", Description: "Know who you are when you sign in"}, {Name: "x:y"}}},
		templates.PageError:     templates.ErrorPage{Brand: brand, Title: "Oops", Message: "m", Code: "invalid_request", RequestID: "r1"},
		templates.PageOOB:       templates.OOBPage{Brand: brand, ClientName: "App", Code: "c"},
		templates.PageAccount:   templates.AccountPage{Brand: brand, User: templates.AccountUser{Username: "alice"}, PasswordMinLength: 8, Apps: []templates.AccountApp{{Client: client}}},
		templates.PageLogout:    templates.LogoutPage{Brand: brand, Username: "alice"},
		templates.PageLoggedOut: templates.LoggedOutPage{Brand: brand},
	}
	want := map[string]map[string]string{
		"en": {templates.PageLogin: "Keep me signed in", templates.PageConsent: "Use the permission “x:y”", templates.PageError: "Request ID", templates.PageOOB: "Copy this code", templates.PageAccount: "Change password", templates.PageLogout: "Sign out of Acme?", templates.PageLoggedOut: "You are signed out"},
		"de": {templates.PageLogin: "Angemeldet bleiben", templates.PageConsent: "Die Berechtigung „x:y“ nutzen", templates.PageError: "Anfrage-ID", templates.PageOOB: "Kopieren Sie diesen Code", templates.PageAccount: "Passwort ändern", templates.PageLogout: "Von Acme abmelden?", templates.PageLoggedOut: "Sie sind abgemeldet"},
	}
	for lang, texts := range want {
		for page, text := range texts {
			body := render(t, s, page, lang, pages[page])
			if !strings.Contains(body, text) || !strings.Contains(body, `<html lang="`+lang+`">`) {
				t.Errorf("%s in %s lacks %q or lang=%s:\n%s", page, lang, text, lang, body)
			}
		}
	}
	if body := render(t, s, templates.PageAccount, "en", pages[templates.PageAccount]); !strings.Contains(body, `aria-hidden="true">Ä</span>`) {
		t.Errorf("the stand-in for a missing logo is not the first letter:\n%s", body)
	}
}

func TestMatchLanguage(t *testing.T) {
	t.Parallel()
	s, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ui, accept, want string }{
		{"", "", "en"},
		{"", "de-DE,de;q=0.9,en;q=0.8", "de"},
		{"", "fr-FR,en;q=0.5", "en"},
		{"de", "en-US", "de"},              // ui_locales wins
		{"sv de-AT", "en", "de"},           // the first the catalogue has
		{"se", "de", "de"},                 // none known: Accept-Language
		{"not a tag !!", "de;q=0.1", "de"}, // garbage is ignored
		{"en-GB", "de", "en"},
	} {
		if got := s.Match(tc.ui, tc.accept); got != tc.want {
			t.Errorf("Match(%q, %q) = %q, want %q", tc.ui, tc.accept, got, tc.want)
		}
	}
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTemplatesDirReplacesNameByName(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, "login.html", `{{define "title"}}{{t "Sign in"}}{{end}}{{define "content"}}<h1>Welcome to {{.OrgName}}</h1><form method="post" action="{{.Action}}"></form>{{end}}`)
	write(t, dir, "static/style.css", `body{background:hotpink}`)
	write(t, dir, "locales/fr.json", `{"Sign in": "Se connecter"}`)
	s, err := templates.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	body := render(t, s, templates.PageLogin, "fr", templates.LoginPage{Brand: templates.Brand{OrgName: "Acme"}})
	if !strings.Contains(body, "<h1>Welcome to Acme</h1>") || !strings.Contains(body, "<title>Se connecter · Acme</title>") {
		t.Errorf("the folder's login page in French is not used:\n%s", body)
	}
	// consent.html is not in the folder: the embedded one stands.
	if body := render(t, s, templates.PageConsent, "en", templates.ConsentPage{ClientName: "App"}); !strings.Contains(body, "Remember this decision") {
		t.Errorf("embedded consent page missing:\n%s", body)
	}
	if !slices.Contains(s.Languages(), "fr") || s.Match("fr", "") != "fr" {
		t.Errorf("locales/fr.json did not add French: %v", s.Languages())
	}
	for file, want := range map[string]string{"style.css": "hotpink", "copy.js": "clipboard"} {
		w := httptest.NewRecorder()
		s.Static().ServeHTTP(w, httptest.NewRequest("GET", "/"+file, nil))
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("static %s: %q lacks %q", file, w.Body.String(), want)
		}
	}
}

func TestTemplatesDirErrorsNameTheFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file, content, want string
	}{
		{"consent.html", `{{define "content"}}{{.Broken`, "consent.html"},
		{"layout.html", `<html>{{if}}`, "layout.html"},
		{"logn.html", `hello`, "logn.html: no page of that name"},
		{"locales/fr.json", `{"Sign in": `, "fr.json"},
		{"locales/french.json", `{}`, "french.json"},
	} {
		dir := t.TempDir()
		write(t, dir, tc.file, tc.content)
		_, err := templates.Load(dir)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), dir) {
			t.Errorf("%s: error %v, want one naming %s in %s", tc.file, err, tc.want, dir)
		}
	}
	if _, err := templates.Load(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing folder was accepted")
	}
}

// A text that counts has its plural forms in every language, English too.
func TestPluralForms(t *testing.T) {
	t.Parallel()
	s, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	const key = "Too many failed sign-ins. Try again in %d minutes."
	for _, tc := range []struct {
		lang string
		n    int
		want string
	}{
		{"en", 1, "Too many failed sign-ins. Try again in 1 minute."},
		{"en", 3, "Too many failed sign-ins. Try again in 3 minutes."},
		{"en", 0, "Too many failed sign-ins. Try again in 0 minutes."},
		{"de", 1, "Zu viele fehlgeschlagene Anmeldungen. Versuchen Sie es in 1 Minute erneut."},
		{"de", 3, "Zu viele fehlgeschlagene Anmeldungen. Versuchen Sie es in 3 Minuten erneut."},
		{"de", 15, "Zu viele fehlgeschlagene Anmeldungen. Versuchen Sie es in 15 Minuten erneut."},
	} {
		if got := s.T(tc.lang, key, tc.n); got != tc.want {
			t.Errorf("T(%s, %d) = %q, want %q", tc.lang, tc.n, got, tc.want)
		}
	}
	if languages := s.Languages(); !slices.Equal(languages, []string{"en", "de"}) {
		t.Errorf("languages %v: en.json must not add English twice", languages)
	}

	// An operator's language with more plural categories (Polish: one,
	// few, many) gets each right.
	dir := t.TempDir()
	write(t, dir, "locales/pl.json", `{"Too many failed sign-ins. Try again in %d minutes.":
		{"one": "Spróbuj ponownie za %d minutę.", "few": "Spróbuj ponownie za %d minuty.", "many": "Spróbuj ponownie za %d minut.", "other": "Spróbuj ponownie za %d minuty."}}`)
	s, err = templates.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range map[int]string{1: "za 1 minutę.", 3: "za 3 minuty.", 5: "za 5 minut.", 22: "za 22 minuty."} {
		if got := s.T("pl", key, n); !strings.HasSuffix(got, want) {
			t.Errorf("pl %d: %q, want …%q", n, got, want)
		}
	}
}

func TestPluralFormsErrorsNameTheFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ file, content, want string }{
		{"locales/en.json", `{"Sign in": "Log in"}`, "English is the source language"},
		{"locales/fr.json", `{"%d minutes": {"one": "%d minute"}}`, `need "other"`},
		{"locales/fr.json", `{"%d minutes": {"single": "%d minute", "other": "%d minutes"}}`, `"single" is not a plural category`},
		{"locales/fr.json", `{"%d minutes": ["%d minute"]}`, "a translation is a string, or an object of plural forms"},
	} {
		dir := t.TempDir()
		write(t, dir, tc.file, tc.content)
		_, err := templates.Load(dir)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), dir) {
			t.Errorf("%s %s: error %v, want one with %q naming the file", tc.file, tc.content, err, tc.want)
		}
	}
}
