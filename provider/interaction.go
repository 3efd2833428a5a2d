package provider

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"
)

// interaction is the state of one authorization request while a person
// signs in and consents. It travels in the page's form, sealed with an HMAC,
// so the login and consent pages need no database write and a server
// restart does not break a sign-in in progress. It is bound to the
// browser's CSRF cookie, so it is useless in another browser.
type interaction struct {
	Params      url.Values `json:"p"`
	RequestedAt int64      `json:"t"`
	CSRF        string     `json:"c"`
	// UserID, AuthTime and AMR are set once the person has signed in
	// (AMR: the RFC 8176 methods they used).
	UserID   string   `json:"u,omitempty"`
	AuthTime int64    `json:"a,omitempty"`
	AMR      []string `json:"m,omitempty"`
	// PendingUser is a person part-way through signing in: their
	// password (PendingAMR: what they proved so far) was right, but they
	// still owe a second factor, or must enrol one. No session exists
	// for them yet. Remember is the "keep me signed in" they asked for.
	PendingUser string   `json:"pu,omitempty"`
	PendingAMR  []string `json:"pm,omitempty"`
	Remember    bool     `json:"r,omitempty"`
	// StepUpSID is set when the pending person is already signed in and
	// steps up (a second factor for a request that needs one): the sid
	// of the session to renew, which must still be this browser's when
	// the factor is proved.
	StepUpSID string `json:"ss,omitempty"`
	// EnrolledAMR: the pending person enrolled a second factor during
	// this sign-in and proved it with one use (enrol.go); /login/continue
	// then completes the sign-in with PendingAMR and these methods.
	EnrolledAMR []string `json:"em,omitempty"`
	Expires     int64    `json:"e"`
	// Account marks a sign-in started on the account page: there is no
	// authorization request, and success leads back to /account. Being
	// sealed, the destination cannot be swapped for another.
	Account bool `json:"acct,omitempty"`
}

// interactionTTL is how long a person may take on the login and consent pages.
const interactionTTL = 30 * time.Minute

var errBadInteraction = errors.New("interaction state is invalid or expired")

func (p *Provider) seal(it interaction) string {
	it.Expires = p.now().Add(interactionTTL).Unix()
	body, _ := json.Marshal(it) // only strings, numbers and url.Values
	payload := base64.RawURLEncoding.EncodeToString(body)
	return payload + "." + base64.RawURLEncoding.EncodeToString(p.mac(payload))
}

func (p *Provider) unseal(s, csrf string) (interaction, error) {
	var it interaction
	payload, sig, ok := strings.Cut(s, ".")
	if !ok {
		return it, errBadInteraction
	}
	want, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(want, p.mac(payload)) {
		return it, errBadInteraction
	}
	body, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil || json.Unmarshal(body, &it) != nil {
		return it, errBadInteraction
	}
	if p.now().Unix() > it.Expires || csrf == "" || !hmac.Equal([]byte(it.CSRF), []byte(csrf)) {
		return it, errBadInteraction
	}
	return it, nil
}

func (p *Provider) mac(payload string) []byte {
	m := hmac.New(sha256.New, p.sealKey)
	m.Write([]byte(payload))
	return m.Sum(nil)
}
