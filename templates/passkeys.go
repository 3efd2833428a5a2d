package templates

// PagePasskeyAdded shows the recovery codes of a first passkey.
const PagePasskeyAdded = "passkey-added"

func init() { required = append(required, PagePasskeyAdded) }

// PasskeySignIn is what a sign-in page needs to offer a passkey: the
// form that posts the authenticator's answer (Action) with the sealed
// interaction, and where its script asks for the ceremony's options.
// passkey-signin.html shows it only when the browser can use passkeys.
type PasskeySignIn struct {
	Base          string
	OptionsAction string
	Action        string
	CSRF          string
	Interaction   string
	// Label is the button's text, a catalogue key; empty for "Sign in
	// with a passkey".
	Label string
}

// AccountPasskeys is the passkeys section of the account page. Error is
// already translated.
type AccountPasskeys struct {
	Base          string
	CSRF          string
	OptionsAction string
	Action        string
	RemoveAction  string
	// DefaultName is the name a new passkey gets unless the person
	// types another.
	DefaultName string
	List        []AccountPasskey
	Error       string
}

// AccountPasskey is one registered passkey. The times are dates
// (YYYY-MM-DD) or dates with a time, in UTC; LastUsedAt is empty when it
// was never used.
type AccountPasskey struct {
	// ID is the credential ID, base64url: what removal posts back.
	ID         string
	Name       string
	CreatedAt  string
	LastUsedAt string
	// Synced marks a passkey that may be copied to the person's other
	// devices (a password manager's, say).
	Synced bool
}

// PasskeyAddedPage shows the recovery codes made with a person's first
// passkey, once.
type PasskeyAddedPage struct {
	Brand
	Name          string
	RecoveryCodes []string
	AccountURL    string
}
