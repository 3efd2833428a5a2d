package passkey

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/smallsso/provider/provider/secret"
)

// Ceremony kinds: a state sealed for one is refused by the other.
const (
	KindRegister = "register"
	KindLogin    = "login"
)

// StateTTL is how long a person has between asking for the options and
// answering with their authenticator.
const StateTTL = 5 * time.Minute

// ErrBadState is a ceremony state that was tampered with, expired, sealed
// for another kind of ceremony or for another browser.
var ErrBadState = errors.New("passkey ceremony state is invalid or expired")

// State is what a ceremony must remember between its two requests.
type State struct {
	// UserID is whom the ceremony is for: the person registering, or the
	// one owing a second factor; empty for a sign-in with a passkey alone.
	UserID  string               `json:"u,omitempty"`
	Expires int64                `json:"e"`
	Session webauthn.SessionData `json:"s"`
}

// States seals ceremony states (AES-GCM with a key of their own derived
// from the provider secret), bound to the kind of ceremony and to the
// browser's CSRF token: the page and its script hold the state, and hand
// it back with the authenticator's answer.
type States struct {
	sealer *secret.Sealer
	now    func() time.Time
}

// NewStates seals with a key derived from the provider secret.
func NewStates(providerSecret []byte, now func() time.Time) *States {
	return &States{
		sealer: secret.NewPurposeSealer("passkey ceremonies", func() ([]byte, error) { return providerSecret, nil }),
		now:    now,
	}
}

func stateAD(kind, csrf string) []byte { return []byte("passkey-ceremony\x00" + kind + "\x00" + csrf) }

// Seal seals s for a ceremony of kind in the browser whose CSRF token is
// csrf, expiring after StateTTL.
func (st *States) Seal(kind, csrf string, s State) (string, error) {
	s.Expires = st.now().Add(StateTTL).Unix()
	b, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	sealed, err := st.sealer.SealBytes(stateAD(kind, csrf), b)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// Open is the state Seal sealed for kind and csrf, if it has not expired.
func (st *States) Open(kind, csrf, sealed string) (State, error) {
	var s State
	if csrf == "" || sealed == "" {
		return s, ErrBadState
	}
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		return s, ErrBadState
	}
	b, err := st.sealer.OpenBytes(stateAD(kind, csrf), raw)
	if err != nil {
		return s, ErrBadState
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, ErrBadState
	}
	if st.now().Unix() > s.Expires {
		return s, ErrBadState
	}
	return s, nil
}
