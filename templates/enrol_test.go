package templates_test

import (
	"html/template"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/smallsso/provider/templates"
)

func TestEnrolmentPagesRenderInEveryLanguage(t *testing.T) {
	t.Parallel()
	s, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	brand := templates.Brand{OrgName: "Acme"}
	enrol := templates.TOTPEnrolPage{Brand: brand, QR: template.URL("data:image/png;base64,iVBORw0KGgo="), Secret: "ABCD EFGH", Key: "sealed", Username: "alice", Required: true, Error: "wrong"}
	codes := templates.RecoveryCodesPage{Brand: brand, Codes: []string{"ABCDE-FGHJK", "23456-789AB"}, Interaction: "it", Action: "/login/continue"}
	account := templates.AccountPage{Brand: brand, User: templates.AccountUser{Username: "alice"}, TOTPEnrolled: true, TOTPSince: "2026-12-03", HasFactor: true, RecoveryCodesLeft: 1, RecoveryCodesLow: true}
	for _, tc := range []struct {
		page string
		data any
		want map[string]string
	}{
		{templates.PageTOTPEnrol, enrol, map[string]string{"en": "Set up an authenticator app", "de": "Authenticator-App einrichten"}},
		{templates.PageRecoveryCodes, codes, map[string]string{"en": "I have saved them, continue", "de": "Ich habe sie gespeichert, weiter"}},
		{templates.PageAccount, account, map[string]string{"en": "You have 1 unused recovery code.", "de": "Sie haben 1 unbenutzten Wiederherstellungscode."}},
	} {
		for lang, text := range tc.want {
			body := render(t, s, tc.page, lang, tc.data)
			if !strings.Contains(body, text) {
				t.Errorf("%s in %s lacks %q:\n%s", tc.page, lang, text, body)
			}
		}
	}
	// The QR code is an inline image (the CSP allows img-src data:), not
	// a link html/template defused.
	if body := render(t, s, templates.PageTOTPEnrol, "en", enrol); !strings.Contains(body, `src="data:image/png;base64,iVBORw0KGgo="`) || !strings.Contains(body, `name="code"`) {
		t.Errorf("enrolment page lacks the QR image or the code field:\n%s", body)
	}
}

// Every text of the second-factor pages has its German translation.
func TestEnrolmentTextsTranslated(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("locales", "de.json"))
	if err != nil {
		t.Fatal(err)
	}
	key := regexp.MustCompile(`\{\{t "([^"]+)"`)
	for _, f := range []string{"totp-enrol.html", "recovery-codes.html", "account-mfa.html"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range key.FindAllStringSubmatch(string(b), -1) {
			if !strings.Contains(string(raw), `"`+m[1]+`":`) {
				t.Errorf("%s: %q has no German translation", f, m[1])
			}
		}
	}
}
