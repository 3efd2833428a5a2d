package templates

import "html/template"

// The pages of enrolling a second factor: the authenticator app's key
// (PageTOTPEnrol) and the recovery codes shown once (PageRecoveryCodes).
// Both serve a sign-in part-way through (an interaction travels in the
// form) and the account page (no interaction; the session is the person).
const (
	PageTOTPEnrol     = "totp-enrol"
	PageRecoveryCodes = "recovery-codes"
)

// TOTPEnrolPage shows a new authenticator-app key as a QR code and as
// text, and asks for one code from the app. Error is already translated.
type TOTPEnrolPage struct {
	Brand
	Action string
	CSRF   string
	// Interaction is the sealed sign-in state; empty on the account page.
	Interaction string
	// Key is the candidate key sealed for the person (base64url), sent
	// back with the code; the server never keeps it before the code is
	// right.
	Key string
	// QR is the otpauth:// URI as a PNG data: URI.
	QR template.URL
	// Secret is the key as text for typing in, in blocks of four.
	Secret     string
	Username   string
	ClientName string
	Client     ClientInfo
	Error      string
	// Account marks the account page's set-up; CancelURL leads back.
	Account   bool
	CancelURL string
	// Required says the person must set up a second factor before going
	// on (a sign-in), rather than chose to.
	Required bool
	// HasWebAuthn: passkeys are offered as the other way to enrol (the
	// "enrol-passkey" block of the page).
	HasWebAuthn bool
}

// RecoveryCodesPage shows a new generation of recovery codes, once. On a
// sign-in, Continue posts Interaction to Action; on the account page it
// is a link to ContinueURL.
type RecoveryCodesPage struct {
	Brand
	Codes       []string
	Action      string
	CSRF        string
	Interaction string
	ContinueURL string
	// Regenerated: these replace codes the person had.
	Regenerated bool
}
