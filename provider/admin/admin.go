package admin

import (
	"context"
	"crypto/rand"
	"io"
	"time"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/mfa"
	"github.com/smallsso/provider/provider/revoke"
	"github.com/smallsso/provider/provider/secret"
	"github.com/smallsso/provider/provider/userspec"

	"github.com/smallsso/provider/storage"
)

// Admin is what an operator can do to users, clients and trusted issuers.
// Local works on an open store; the admin socket client does the same
// through a running server, so the CLI works whether or not a server holds
// the database.
type Admin interface {
	AddUser(ctx context.Context, u userspec.User) (storage.User, error)
	ListUsers(ctx context.Context) ([]storage.User, error)
	DeleteUser(ctx context.Context, username string) error
	SetPassword(ctx context.Context, username, password string) error
	// AddClient returns the generated secret when the spec had none and the
	// client is confidential; it is shown once and never stored in clear.
	AddClient(ctx context.Context, c clientspec.Spec) (storage.Client, string, error)
	ListClients(ctx context.Context) ([]storage.Client, error)
	DeleteClient(ctx context.Context, id string) error
	// AddTrustedIssuer lets an issuer's JWT assertions be exchanged for
	// access tokens (RFC 7523); the entry gets a random ID.
	AddTrustedIssuer(ctx context.Context, t clientspec.TrustSpec) (storage.TrustedIssuer, error)
	ListTrustedIssuers(ctx context.Context) ([]storage.TrustedIssuer, error)
	DeleteTrustedIssuer(ctx context.Context, id string) error
	// Backup writes a consistent copy of the database to w, while the
	// server goes on serving (backup.go).
	Backup(ctx context.Context, w io.Writer) (int64, error)
	// Second factors (factors.go).
	AddTOTP(ctx context.Context, username string) (TOTPEnrolment, error)
	RemoveTOTP(ctx context.Context, username string) error
	ResetMFA(ctx context.Context, username string) (FactorSummary, error)
	ListFactors(ctx context.Context) ([]FactorSummary, error)
}

// Local runs admin commands on a store this process has open.
type Local struct {
	Store storage.Store
	// Sealer encrypts the secrets of client_secret_jwt clients; without
	// one such clients cannot be added.
	Sealer *secret.Sealer
	Now    func() time.Time
	// SessionsEnded, when set, tells the clients of browser sessions that
	// a password change ended (a running server's back-channel logout).
	SessionsEnded func(context.Context, []storage.BrowserSession)
	// PasswordChanged, when set, tells a running server that username's
	// password changed (its throttle forgets the places it signed in from).
	PasswordChanged func(username string)
	// ClientsChanged, when set, tells a running server that a client was
	// added or deleted: it lists the CORS origins again and starts the
	// rate-limit buckets over at once (provider.ClientsChanged).
	ClientsChanged func()
	// MFAKeys seal TOTP secrets and key recovery-code hashes (the keys
	// the server uses: from the provider secret); without them no
	// authenticator app can be added.
	MFAKeys *mfa.Keys
	// TOTPIssuer labels the authenticator apps enrolled here (the name
	// the apps show).
	TOTPIssuer string
}

var _ Admin = (*Local)(nil)

func (a *Local) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Local) AddUser(ctx context.Context, n userspec.User) (storage.User, error) {
	if n.PasswordHash != "" {
		// As before the split: a person's password is set in clear and
		// hashed here; only the config may declare a hash.
		return storage.User{}, clientspec.Invalidf("give the password, not a hash of it")
	}
	n, err := n.Validate()
	if err != nil {
		return storage.User{}, invalidUser(err)
	}
	hash, err := n.ResolveHash("")
	if err != nil {
		return storage.User{}, err
	}
	u := n.Apply(storage.User{ID: newSubject()}, hash, a.now().UTC())
	if err := a.Store.CreateUser(ctx, u); err != nil {
		return storage.User{}, err
	}
	return u, nil
}

// invalidUser makes a user's validation error an operator mistake, which
// the admin socket reports as such.
func invalidUser(err error) error {
	return &clientspec.InvalidError{Msg: err.Error()}
}

// ListUsers leaves out password hashes: listings are for reading.
func (a *Local) ListUsers(ctx context.Context) ([]storage.User, error) {
	us, err := a.Store.ListUsers(ctx)
	for i := range us {
		us[i].PasswordHash = ""
	}
	return us, err
}

func (a *Local) DeleteUser(ctx context.Context, username string) error {
	u, err := a.Store.GetUserByUsername(ctx, username)
	if err != nil {
		return err
	}
	return a.Store.DeleteUser(ctx, u.ID)
}

func (a *Local) SetPassword(ctx context.Context, username, password string) error {
	if err := userspec.CheckPassword(password); err != nil {
		return invalidUser(err)
	}
	u, err := a.Store.GetUserByUsername(ctx, username)
	if err != nil {
		return err
	}
	hash, err := secret.Hash(password)
	if err != nil {
		return err
	}
	err = a.Store.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) {
		u.PasswordHash, u.UpdatedAt = hash, a.now().UTC()
		return u, nil
	})
	if err != nil {
		return err
	}
	// As on the account page: whoever knew the old password loses what
	// it gave them, every browser session and refresh token.
	ended, err := revoke.UserAccess(ctx, a.Store, u.ID, "")
	if err == nil && a.SessionsEnded != nil {
		a.SessionsEnded(ctx, ended)
	}
	if a.PasswordChanged != nil {
		a.PasswordChanged(u.Username)
	}
	return err
}

func (a *Local) AddClient(ctx context.Context, spec clientspec.Spec) (storage.Client, string, error) {
	generated := ""
	if spec.Secret == "" && spec.SecretHash == "" {
		generated = clientspec.NewSecret(spec.TokenEndpointAuthMethod, spec.Public)
		spec.Secret = generated
	}
	spec, err := spec.Validate()
	if err != nil {
		return storage.Client{}, "", err
	}
	c, err := spec.Record(storage.Client{}, a.Sealer)
	if err != nil {
		return storage.Client{}, "", err
	}
	c.Source = "cli"
	c.CreatedAt, c.UpdatedAt = a.now().UTC(), a.now().UTC()
	if err := a.Store.CreateClient(ctx, c); err != nil {
		return storage.Client{}, "", err
	}
	c.SecretSealed = nil
	a.clientsChanged()
	return c, generated, nil
}

// ListClients leaves out secret hashes and sealed secrets: listings are
// for reading.
func (a *Local) ListClients(ctx context.Context) ([]storage.Client, error) {
	cs, err := a.Store.ListClients(ctx)
	for i := range cs {
		cs[i].SecretHash, cs[i].SecretSealed = "", nil
	}
	return cs, err
}

func (a *Local) DeleteClient(ctx context.Context, id string) error {
	if err := a.Store.DeleteClient(ctx, id); err != nil {
		return err
	}
	a.clientsChanged()
	return nil
}

func (a *Local) clientsChanged() {
	if a.ClientsChanged != nil {
		a.ClientsChanged()
	}
}

// newSubject makes a user's stable, opaque `sub`: 130 random bits in
// base32 (crypto/rand.Text). Subjects made before were UUIDs; both are
// opaque strings to relying parties, and a stored `sub` never changes.
func newSubject() string { return rand.Text() }
