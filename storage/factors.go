package storage

import (
	"context"
	"time"
)

// Factors are a person's second factors: an authenticator app (TOTP),
// passkeys (WebAuthn credentials) and single-use recovery codes. They are
// one record per user, apart from User, so that the hot paths that read a
// user (userinfo, introspection, token issuance) never decode them, and
// so that using a factor (a TOTP step, a recovery code, a passkey's sign
// counter) is one atomic read-modify-write that locks only this record.
//
// Nothing in it is usable as it stands: the TOTP key and each passkey's
// credential are sealed by the provider, recovery codes are keyed hashes.
type Factors struct {
	UserID string `json:"user_id"`
	// TOTP is nil when no authenticator app is enrolled.
	TOTP     *TOTPFactor `json:"totp,omitempty"`
	Passkeys []Passkey   `json:"passkeys,omitempty"`
	// RecoveryCodes are the codes of the last generation, used or not.
	RecoveryCodes []RecoveryCode `json:"recovery_codes,omitempty"`
	UpdatedAt     time.Time      `json:"updated_at"`
}

// Enrolled reports whether the person has a second factor (recovery codes
// alone are not one: they only stand in for a lost factor).
func (f Factors) Enrolled() bool { return f.TOTP != nil || len(f.Passkeys) > 0 }

// TOTPFactor is an enrolled authenticator app (RFC 6238).
type TOTPFactor struct {
	// SecretSealed is the shared key, sealed with the provider secret.
	SecretSealed []byte `json:"secret_sealed"`
	// LastStep is the last time step whose code was accepted: a code of
	// that step or an earlier one is refused, so a code is good once.
	LastStep  int64     `json:"last_step,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Passkey is a registered WebAuthn credential.
type Passkey struct {
	// ID is the credential ID the authenticator chose (public: the browser
	// sends it with every assertion).
	ID   []byte `json:"id"`
	Name string `json:"name"`
	// CredentialSealed is the credential as the WebAuthn library keeps it
	// (public key, sign counter, flags, transports), sealed.
	CredentialSealed []byte    `json:"credential_sealed"`
	CreatedAt        time.Time `json:"created_at"`
	LastUsedAt       time.Time `json:"last_used_at,omitzero"`
}

// RecoveryCode is one single-use recovery code, kept as a keyed hash.
type RecoveryCode struct {
	Hash   string    `json:"hash"`
	UsedAt time.Time `json:"used_at,omitzero"`
}

// FactorStore keeps Factors.
type FactorStore interface {
	// GetFactors returns userID's factors; ErrNotFound when there are
	// none.
	GetFactors(ctx context.Context, userID string) (Factors, error)
	// UpdateFactors applies fn to userID's factors atomically, locking the
	// record until it is written; fn gets Factors{UserID: userID} when
	// there are none yet. An error from fn aborts the update and is
	// returned as is. ErrNotFound when there is no such user. fn may run
	// more than once (a backend may replay it), so it must decide from
	// its argument alone: take the time before calling.
	UpdateFactors(ctx context.Context, userID string, fn func(Factors) (Factors, error)) error
	// DeleteFactors removes userID's factors; deleting none is not an
	// error. DeleteUser removes them too.
	DeleteFactors(ctx context.Context, userID string) error
	// WalkFactors visits every user's factors, for migrate-storage.
	WalkFactors(ctx context.Context, fn func(Factors) error) error
}
