package main

// webauthnConfig is mfa.webauthn: the relying party passkeys belong to.
type webauthnConfig struct {
	// RPID is the relying party ID: the issuer's host (the default) or a
	// parent domain of it, checked by validate (passkey.RPIDProblem).
	RPID string `yaml:"rp_id"`
}
