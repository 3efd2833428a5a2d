package mfa

import "slices"

// Authentication method references (RFC 8176) a sign-in can earn.
const (
	AMRPassword = "pwd"
	// AMROTP is a code from an authenticator app or a recovery code.
	AMROTP = "otp"
	// AMRHardwareKey and AMRSoftwareKey are a passkey: hwk when it is
	// bound to its device, swk when it may be synced (its backup
	// eligibility flag), so copies of the key may exist elsewhere.
	AMRHardwareKey = "hwk"
	AMRSoftwareKey = "swk"
	// AMRUser is the user verification a passkey sign-in requires (a PIN
	// or biometric on the authenticator).
	AMRUser = "user"
	// AMRMulti is added when two factors were used.
	AMRMulti = "mfa"
)

// Authentication context classes this provider offers (acr).
const (
	ACRPassword = "password"
	ACRMFA      = "mfa"
)

// ACRValues are the classes published in acr_values_supported, weakest
// first.
var ACRValues = []string{ACRPassword, ACRMFA}

// Combine adds methods to amr (what a session already proved), keeping
// order and adding "mfa" once two independent factors are in: a password
// and a code or passkey, or a passkey with user verification (something
// held and something known or are).
func Combine(amr []string, methods ...string) []string {
	out := slices.Clone(amr)
	for _, m := range methods {
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	out = slices.DeleteFunc(out, func(m string) bool { return m == AMRMulti })
	if factorCount(out) >= 2 {
		out = append(out, AMRMulti)
	}
	return out
}

func factorCount(amr []string) int {
	knowledge := slices.Contains(amr, AMRPassword) || slices.Contains(amr, AMRUser)
	possession := slices.Contains(amr, AMROTP) || slices.Contains(amr, AMRHardwareKey) || slices.Contains(amr, AMRSoftwareKey)
	n := 0
	if knowledge {
		n++
	}
	if possession {
		n++
	}
	return n
}

// ACR is the context class amr earns.
func ACR(amr []string) string {
	if slices.Contains(amr, AMRMulti) {
		return ACRMFA
	}
	return ACRPassword
}

// SessionAMR is a stored session's amr: sessions from before second
// factors have none, and meant a password.
func SessionAMR(amr []string) []string {
	if len(amr) == 0 {
		return []string{AMRPassword}
	}
	return amr
}
