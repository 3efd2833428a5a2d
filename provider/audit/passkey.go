package audit

// Passkey sign-in failure reasons (signin events with Method passkey).
const (
	// ReasonBadPasskey is an assertion that did not verify (signature,
	// user verification, origin, flags).
	ReasonBadPasskey = "bad_passkey"
	// ReasonUnknownPasskey is a credential no account (or not the
	// account signing in) has.
	ReasonUnknownPasskey = "unknown_passkey"
	// ReasonPasskeyCloned is a sign counter that did not go up: two
	// copies of the key may exist.
	ReasonPasskeyCloned = "passkey_clone_warning"
)
