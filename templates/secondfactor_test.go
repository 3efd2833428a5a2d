package templates_test

import (
	"strings"
	"testing"

	"github.com/smallsso/provider/templates"
)

// The second-factor page: one form, the code field named code for
// password managers and phone keyboards, every string in both languages,
// and the spot the passkey option goes into.
func TestSecondFactorPage(t *testing.T) {
	t.Parallel()
	s, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	base := templates.SecondFactorPage{
		Brand: templates.Brand{OrgName: "Acme"}, Action: "/login/mfa", Interaction: "it", CSRF: "c",
		ClientName: "App", Client: templates.ClientInfo{ID: "app", Name: "App"}, Username: "alice",
		HasTOTP: true, RecoveryCodesLeft: 3,
	}
	for lang, want := range map[string][]string{
		"en": {"Confirm it is you", "Code from your authenticator app", "Use a recovery code instead", "Cancel", "Verify"},
		"de": {"Bestätigen Sie, dass Sie es sind", "Code aus Ihrer Authenticator-App", "Stattdessen einen Wiederherstellungscode verwenden", "Abbrechen", "Bestätigen"},
	} {
		body := render(t, s, templates.PageSecondFactor, lang, base)
		for _, w := range append(want, `name="code"`, `autocomplete="one-time-code"`, `inputmode="numeric"`, `name="cancel"`, `formnovalidate`) {
			if !strings.Contains(body, w) {
				t.Errorf("%s: page lacks %q:\n%s", lang, w, body)
			}
		}
		if n := strings.Count(body, "<form"); n != 1 {
			t.Errorf("%s: %d forms, want 1", lang, n)
		}
		if strings.Contains(body, "passkey-option") {
			t.Errorf("%s: passkey option shown to a person without passkeys", lang)
		}
		// Verify comes first: Enter in the field submits the code, not
		// Cancel or the switch.
		if strings.Index(body, `<button type="submit">`) > strings.Index(body, `name="cancel"`) {
			t.Errorf("%s: Cancel comes before Verify", lang)
		}
	}
	rec := base
	rec.Recovery, rec.HasPasskeys, rec.PasskeyAction = true, true, "/login/passkey"
	body := render(t, s, templates.PageSecondFactor, "de", rec)
	for _, w := range []string{"Wiederherstellungscode", `inputmode="text"`, "Stattdessen die Authenticator-App verwenden", `id="passkey-option" data-action="/login/passkey"`} {
		if !strings.Contains(body, w) {
			t.Errorf("recovery: page lacks %q:\n%s", w, body)
		}
	}
}
