package templates

// PageSecondFactor asks a person who proved their password (or whose
// session must step up) for their second factor: a code from an
// authenticator app or a recovery code, in one field named code, and
// offers their other factors.
const PageSecondFactor = "second-factor"

func init() { required = append(required, PageSecondFactor) }

// SecondFactorPage is the data of the second-factor form. Error is
// already translated.
type SecondFactorPage struct {
	Brand
	Action      string
	Interaction string
	CSRF        string
	ClientName  string
	Client      ClientInfo
	// Username is who is signing in (they typed it, or their session
	// says it).
	Username string
	Error    string
	// Account is set when the sign-in leads to the account page.
	Account bool
	// StepUp is set when a signed-in person is asked for a second factor
	// because the application asks for more than their session proved.
	StepUp bool
	// Recovery is set when the field asks for a recovery code rather than
	// a code from the authenticator app (the person chose it, or has no
	// app enrolled).
	Recovery bool
	// HasTOTP, HasPasskeys and RecoveryCodesLeft are the factors the
	// person has, to offer the others.
	HasTOTP           bool
	HasPasskeys       bool
	RecoveryCodesLeft int
	// PasskeyAction is where a passkey assertion for this sign-in is
	// posted (the passkeys helper's POST /login/passkey).
	PasskeyAction string
}
