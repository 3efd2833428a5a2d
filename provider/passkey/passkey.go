// Package passkey adapts the provider's users and stored passkeys to the
// WebAuthn library (github.com/go-webauthn/webauthn): the relying party it
// builds from the issuer and mfa.webauthn.rp_id (and the check of that
// key), the webauthn.User a ceremony needs, the sealing of a credential
// for storage, and the sealed ceremony state (challenge and all) that
// travels through the browser between the options request and the answer,
// so a ceremony needs no database write.
//
// It owns no HTTP handler and reads or writes no store: it must not
// import provider (the HTTP layer) nor a storage backend; it may use the
// storage types, provider/mfa (sealing keys) and provider/secret.
package passkey

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"golang.org/x/net/publicsuffix"

	"github.com/smallsso/provider/provider/mfa"
	"github.com/smallsso/provider/storage"
)

// ErrIPHost is New's answer for an issuer whose host is an IP address
// and no rp_id: WebAuthn binds credentials to a domain name, so passkeys
// are off.
var ErrIPHost = errors.New("passkeys need a domain name: the issuer's host is an IP address")

// RPIDProblem says what is wrong with rpID (mfa.webauthn.rp_id) for the
// issuer, or "" when it is fine. It must be the issuer's host or a
// registrable suffix of it (WebAuthn §5.1.4: a browser refuses any other),
// never a public suffix such as "co.uk".
func RPIDProblem(issuer, rpID string) string {
	u, err := url.Parse(issuer)
	if err != nil || u.Hostname() == "" {
		return "the issuer is not a URL"
	}
	host := strings.ToLower(u.Hostname())
	if rpID == "" {
		return ""
	}
	if net.ParseIP(host) != nil {
		return fmt.Sprintf("%q cannot be used: the issuer's host %s is an IP address, and passkeys need a domain name", rpID, host)
	}
	id := strings.ToLower(rpID)
	if strings.ContainsAny(id, ":/ ") || strings.HasPrefix(id, ".") || strings.HasSuffix(id, ".") {
		return fmt.Sprintf("%q must be a domain name like sso.example.org or example.org (no scheme, port or path)", rpID)
	}
	if id != host && !strings.HasSuffix(host, "."+id) {
		return fmt.Sprintf("%q must be the issuer's host %s or a parent domain of it", rpID, host)
	}
	if id != host {
		if suffix, _ := publicsuffix.PublicSuffix(id); suffix == id {
			return fmt.Sprintf("%q is a public suffix: passkeys cannot belong to it; use %s or a parent domain you own", rpID, host)
		}
	}
	return ""
}

// New is the relying party: rpID (default the issuer's host) and the
// issuer's origin, named displayName. It asks for discoverable
// credentials with user verification, and accepts any attestation
// format without checking it (none is asked for: passkeys from any
// authenticator are welcome).
func New(issuer, rpID, displayName string) (*webauthn.WebAuthn, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Hostname() == "" {
		return nil, fmt.Errorf("passkeys: issuer %q is not a URL", issuer)
	}
	if p := RPIDProblem(issuer, rpID); p != "" {
		return nil, fmt.Errorf("mfa.webauthn.rp_id: %s", p)
	}
	if rpID == "" {
		if net.ParseIP(u.Hostname()) != nil {
			return nil, ErrIPHost
		}
		rpID = strings.ToLower(u.Hostname())
	}
	if displayName == "" {
		displayName = u.Hostname()
	}
	required := true
	return webauthn.New(&webauthn.Config{
		RPID:                  strings.ToLower(rpID),
		RPDisplayName:         displayName,
		RPOrigins:             []string{u.Scheme + "://" + u.Host},
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			RequireResidentKey: &required,
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			UserVerification:   protocol.VerificationRequired,
		},
	})
}

// User is a person as a ceremony sees them: the user handle is their
// user ID's bytes (at most 64, WebAuthn's limit).
type User struct {
	ID          string
	Name        string
	DisplayName string
	Credentials []webauthn.Credential
}

func (u *User) WebAuthnID() []byte                         { return []byte(u.ID) }
func (u *User) WebAuthnName() string                       { return u.Name }
func (u *User) WebAuthnDisplayName() string                { return u.DisplayName }
func (u *User) WebAuthnCredentials() []webauthn.Credential { return u.Credentials }

// MaxUserHandle is WebAuthn's limit on a user handle.
const MaxUserHandle = 64

// NewUser is user as a ceremony sees them, with the passkeys of f opened.
// A passkey that does not open (sealed for someone else, or with another
// provider secret) is left out and reported in bad.
func NewUser(keys *mfa.Keys, user storage.User, f storage.Factors) (u *User, bad int, err error) {
	if len(user.ID) == 0 || len(user.ID) > MaxUserHandle {
		return nil, 0, fmt.Errorf("passkeys: user ID of %d bytes cannot be a user handle", len(user.ID))
	}
	display := user.Name
	if display == "" {
		display = user.Username
	}
	u = &User{ID: user.ID, Name: user.Username, DisplayName: display}
	for _, pk := range f.Passkeys {
		c, err := Open(keys, user.ID, pk)
		if err != nil {
			bad++
			continue
		}
		u.Credentials = append(u.Credentials, c)
	}
	return u, bad, nil
}

// Seal is a credential as storage keeps it (Passkey.CredentialSealed).
func Seal(keys *mfa.Keys, userID string, c *webauthn.Credential) ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return keys.SealPasskey(userID, b)
}

// Open is the credential of a stored passkey of userID.
func Open(keys *mfa.Keys, userID string, pk storage.Passkey) (webauthn.Credential, error) {
	var c webauthn.Credential
	b, err := keys.OpenPasskey(userID, pk.CredentialSealed)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("passkeys: stored credential: %w", err)
	}
	return c, nil
}

// AMR is the method a credential counts as (RFC 8176): swk when it may be
// synced to other devices (its backup-eligible flag), hwk otherwise.
func AMR(c *webauthn.Credential) string {
	if c.Flags.BackupEligible {
		return mfa.AMRSoftwareKey
	}
	return mfa.AMRHardwareKey
}
