package mfa

import (
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/smallsso/provider/storage"
)

// The TOTP parameters every authenticator app understands: SHA-1, six
// digits, 30-second steps (RFC 6238's defaults, what Google Authenticator
// assumes whatever the URI says).
const (
	totpPeriod = 30
	totpDigits = otp.DigitsSix
	// totpSkew is how many steps before and after now a code may be
	// from: a phone's clock a little off still works.
	totpSkew = 1
)

var (
	// ErrWrongCode means the code is not one the factor accepts now.
	ErrWrongCode = errors.New("wrong code")
	// ErrTOTPExists means the person has an authenticator app already.
	ErrTOTPExists = errors.New("an authenticator app is already enrolled")
	// ErrCodeUsed means the code was right but was already used (or a
	// later one was): a code is good once.
	ErrCodeUsed = errors.New("code already used")
)

// NewTOTPKey makes a new random TOTP key for username, labelled with
// issuer (the name authenticator apps show).
func NewTOTPKey(issuer, username string) (*otp.Key, error) {
	return totp.Generate(totp.GenerateOpts{
		Issuer: issuer, AccountName: username,
		Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1,
		SecretSize: 20,
	})
}

// IssuerLabel is the name authenticator apps show beside the account:
// the organisation's name, else the issuer's host name (without a port).
// The account page and the CLI both label keys with it, so one person's
// app never shows the provider under two names.
func IssuerLabel(orgName, issuer string) string {
	if name := strings.TrimSpace(orgName); name != "" {
		return name
	}
	if u, err := url.Parse(issuer); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	return "OpenID Provider"
}

// TOTPKeyFromSecret rebuilds the key (for its URI and QR code) from the
// base32 secret NewTOTPKey made.
func TOTPKeyFromSecret(issuer, username, secret string) (*otp.Key, error) {
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(strings.TrimRight(secret, "=")))
	if err != nil || len(raw) == 0 {
		return nil, errors.New("not a base32 TOTP secret")
	}
	return totp.Generate(totp.GenerateOpts{
		Issuer: issuer, AccountName: username,
		Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1,
		Secret: raw,
	})
}

// MatchTOTP finds the time step whose code is code, within the skew
// around now; it does not know about replay (CheckTOTP does).
func MatchTOTP(secret, code string, now time.Time) (step int64, err error) {
	code = NormalizeCode(code)
	if len(code) != int(totpDigits) || strings.Trim(code, "0123456789") != "" {
		return 0, ErrWrongCode
	}
	opts := totp.ValidateOpts{Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1}
	found := int64(-1)
	// Every candidate is computed and compared, in constant time, so the
	// time taken does not tell which step matched.
	for d := -totpSkew; d <= totpSkew; d++ {
		t := now.Add(time.Duration(d) * totpPeriod * time.Second)
		want, err := totp.GenerateCodeCustom(secret, t, opts)
		if err != nil {
			return 0, err
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			found = t.Unix() / totpPeriod
		}
	}
	if found < 0 {
		return 0, ErrWrongCode
	}
	return found, nil
}

// CheckTOTP accepts code for f's TOTP factor at now and returns f with the
// step recorded, so the same code (or an older one) is refused next time.
// secret is the factor's opened key. The caller stores the result in the
// same UpdateFactors call that read f: that is what makes a code good
// once, even when two requests race with it.
func CheckTOTP(f storage.Factors, secret, code string, now time.Time) (storage.Factors, error) {
	if f.TOTP == nil {
		return f, ErrWrongCode
	}
	step, err := MatchTOTP(secret, code, now)
	if err != nil {
		return f, err
	}
	if step <= f.TOTP.LastStep {
		return f, ErrCodeUsed
	}
	t := *f.TOTP
	t.LastStep = step
	f.TOTP = &t
	return f, nil
}

// NormalizeCode drops what people type around a code: spaces, dashes.
func NormalizeCode(code string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '\t':
			return -1
		}
		return r
	}, strings.TrimSpace(code))
}
