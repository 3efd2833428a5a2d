package mfa

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/smallsso/provider/storage"
)

// RecoveryCodeCount is how many recovery codes a generation has.
const RecoveryCodeCount = 10

// recoveryAlphabet is base32 without the letters people confuse with
// digits (I, L, O, U) and the digits 0 and 1.
const recoveryAlphabet = "ABCDEFGHJKMNPQRSTVWXYZ23456789"

// NewRecoveryCodes makes a fresh generation of codes: the codes to show
// once (formatted XXXXX-XXXXX, 10 characters from a 30-letter alphabet:
// 49 bits each) and what to store.
func NewRecoveryCodes(k *Keys, userID string) ([]string, []storage.RecoveryCode, error) {
	codes := make([]string, RecoveryCodeCount)
	stored := make([]storage.RecoveryCode, RecoveryCodeCount)
	for i := range codes {
		b := make([]byte, 10)
		for j := range b {
			b[j] = recoveryAlphabet[randIndex(len(recoveryAlphabet))]
		}
		codes[i] = string(b[:5]) + "-" + string(b[5:])
		h, err := k.recoveryHash(userID, codes[i])
		if err != nil {
			return nil, nil, err
		}
		stored[i] = storage.RecoveryCode{Hash: h}
	}
	return codes, stored, nil
}

// UseRecoveryCode marks code used in f and returns the result; ErrWrongCode
// when it is none of f's unused codes (ErrCodeUsed when it was used).
// Like CheckTOTP, the caller stores the result in the UpdateFactors call
// that read f.
func UseRecoveryCode(k *Keys, f storage.Factors, code string, now time.Time) (storage.Factors, error) {
	h, err := k.recoveryHash(f.UserID, code)
	if err != nil {
		return f, err
	}
	for i, rc := range f.RecoveryCodes {
		if !hmac.Equal([]byte(rc.Hash), []byte(h)) {
			continue
		}
		if !rc.UsedAt.IsZero() {
			return f, ErrCodeUsed
		}
		codes := append([]storage.RecoveryCode(nil), f.RecoveryCodes...)
		codes[i].UsedAt = now
		f.RecoveryCodes = codes
		return f, nil
	}
	return f, ErrWrongCode
}

// RecoveryCodesLeft counts f's unused recovery codes.
func RecoveryCodesLeft(f storage.Factors) int {
	n := 0
	for _, rc := range f.RecoveryCodes {
		if rc.UsedAt.IsZero() {
			n++
		}
	}
	return n
}

// LooksLikeRecoveryCode tells a recovery code from a TOTP code as typed
// in the one `code` field of the sign-in page.
func LooksLikeRecoveryCode(code string) bool {
	c := normalizeRecovery(code)
	return len(c) == 10 && strings.Trim(c, recoveryAlphabet) == ""
}

func normalizeRecovery(code string) string { return strings.ToUpper(NormalizeCode(code)) }

// recoveryHash is an HMAC of the code keyed by the provider secret and
// bound to the user: a copy of the database alone cannot be used to test
// guesses, and one user's hash says nothing about another's code.
func (k *Keys) recoveryHash(userID, code string) (string, error) {
	key, err := k.macKey()
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(userID))
	m.Write([]byte{0})
	m.Write([]byte(normalizeRecovery(code)))
	return hex.EncodeToString(m.Sum(nil)), nil
}

func randIndex(n int) int {
	// Rejection sampling over one byte: no modulo bias.
	limit := 256 - 256%n
	var b [1]byte
	for {
		rand.Read(b[:])
		if int(b[0]) < limit {
			return int(b[0]) % n
		}
	}
}

// WithTOTP returns f with an authenticator app added: its sealed key, and
// step, the time step of the code that proved it (0 when none did yet),
// so that code is not good again. When f had no factor, or no recovery
// codes, it also stores codes (a fresh generation, made before the
// update) and says so: the caller shows them once. ErrTOTPExists when f
// has an app already: replacing it silently would lock out whoever uses
// the old one.
func WithTOTP(f storage.Factors, sealed []byte, step int64, codes []storage.RecoveryCode, now time.Time) (storage.Factors, bool, error) {
	if f.TOTP != nil {
		return f, false, ErrTOTPExists
	}
	withCodes := !f.Enrolled() || len(f.RecoveryCodes) == 0
	if withCodes {
		f.RecoveryCodes = codes
	}
	f.TOTP = &storage.TOTPFactor{SecretSealed: sealed, LastStep: step, CreatedAt: now}
	f.UpdatedAt = now
	return f, withCodes, nil
}
