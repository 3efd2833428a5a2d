package admin

// The operator's second-factor verbs: enrolling an authenticator app for
// a person (the otpauth:// URI is returned once, to print), removing it,
// and resetting every factor of a person who lost them. The secrets are
// sealed here, with the keys derived from the provider secret, so over the
// admin socket the server does the work and the CLI never needs the keys.

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/gorilla/mux"

	"github.com/smallsso/provider/provider/audit"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/mfa"
	"github.com/smallsso/provider/storage"
)

// TOTPEnrolment is what AddTOTP hands back, once: the otpauth:// URI (it
// holds the secret) and, when the app is the person's first factor, the
// recovery codes generated with it.
type TOTPEnrolment struct {
	URI           string   `json:"uri"`
	RecoveryCodes []string `json:"recovery_codes,omitempty"`
}

// FactorSummary says which second factors a person has, without any of
// their secrets.
type FactorSummary struct {
	UserID            string `json:"user_id"`
	TOTP              bool   `json:"totp"`
	Passkeys          int    `json:"passkeys"`
	RecoveryCodesLeft int    `json:"recovery_codes_left"`
}

// Enrolled reports whether the summary counts a second factor.
func (s FactorSummary) Enrolled() bool { return s.TOTP || s.Passkeys > 0 }

// Summarize is f without its secrets.
func Summarize(f storage.Factors) FactorSummary {
	return FactorSummary{UserID: f.UserID, TOTP: f.TOTP != nil, Passkeys: len(f.Passkeys), RecoveryCodesLeft: mfa.RecoveryCodesLeft(f)}
}

var errNoMFAKeys = errors.New("no provider secret to seal second factors with")

// AddTOTP enrols a new authenticator app for username, refused when the
// person already has one (it must be removed first: replacing it silently
// would lock out whoever uses the old one).
func (a *Local) AddTOTP(ctx context.Context, username string) (TOTPEnrolment, error) {
	if a.MFAKeys == nil {
		return TOTPEnrolment{}, errNoMFAKeys
	}
	u, err := a.Store.GetUserByUsername(ctx, username)
	if err != nil {
		return TOTPEnrolment{}, err
	}
	key, err := mfa.NewTOTPKey(a.TOTPIssuer, u.Username)
	if err != nil {
		return TOTPEnrolment{}, err
	}
	sealed, err := a.MFAKeys.SealTOTP(u.ID, key.Secret())
	if err != nil {
		return TOTPEnrolment{}, err
	}
	// Made before the update (which may run its function twice), used
	// only if the person had no factor or no codes.
	codes, hashes, err := mfa.NewRecoveryCodes(a.MFAKeys, u.ID)
	if err != nil {
		return TOTPEnrolment{}, err
	}
	now := a.now().UTC()
	withCodes := false
	err = a.Store.UpdateFactors(ctx, u.ID, func(f storage.Factors) (storage.Factors, error) {
		f, withCodes, err = mfa.WithTOTP(f, sealed, 0, hashes, now)
		return f, err
	})
	if errors.Is(err, mfa.ErrTOTPExists) {
		return TOTPEnrolment{}, clientspec.Invalidf("%s already has an authenticator app: remove it first (provider users totp remove %s)", u.Username, u.Username)
	}
	if err != nil {
		return TOTPEnrolment{}, err
	}
	out := TOTPEnrolment{URI: key.URL()}
	if withCodes {
		out.RecoveryCodes = codes
	}
	return out, nil
}

// RemoveTOTP removes username's authenticator app, not their passkeys;
// when no factor is left, the recovery codes go too (they stand in for a
// lost factor, and there is none).
func (a *Local) RemoveTOTP(ctx context.Context, username string) error {
	u, err := a.Store.GetUserByUsername(ctx, username)
	if err != nil {
		return err
	}
	now := a.now().UTC()
	return a.Store.UpdateFactors(ctx, u.ID, func(f storage.Factors) (storage.Factors, error) {
		if f.TOTP == nil {
			return f, clientspec.Invalidf("%s has no authenticator app", u.Username)
		}
		f.TOTP = nil
		if !f.Enrolled() {
			f.RecoveryCodes = nil
		}
		f.UpdatedAt = now
		return f, nil
	})
}

// ResetMFA removes every second factor and recovery code of username (who
// then signs in with the password alone, or is asked to enrol again where
// policy requires a factor) and returns what there was. Nothing else
// ends: sessions and tokens stay.
func (a *Local) ResetMFA(ctx context.Context, username string) (FactorSummary, error) {
	u, err := a.Store.GetUserByUsername(ctx, username)
	if err != nil {
		return FactorSummary{}, err
	}
	var had FactorSummary
	f, err := a.Store.GetFactors(ctx, u.ID)
	switch {
	case err == nil:
		had = Summarize(f)
	case errors.Is(err, storage.ErrNotFound):
		had = FactorSummary{UserID: u.ID}
	default:
		return FactorSummary{}, err
	}
	return had, a.Store.DeleteFactors(ctx, u.ID)
}

// ListFactors summarises every person's factors, for listings.
func (a *Local) ListFactors(ctx context.Context) ([]FactorSummary, error) {
	var out []FactorSummary
	err := a.Store.WalkFactors(ctx, func(f storage.Factors) error {
		out = append(out, Summarize(f))
		return nil
	})
	return out, err
}

func (a *audited) AddTOTP(ctx context.Context, username string) (TOTPEnrolment, error) {
	e, err := a.Admin.AddTOTP(ctx, username)
	a.emit(ctx, audit.OpUserTOTPAdd, username, err)
	return e, err
}

func (a *audited) RemoveTOTP(ctx context.Context, username string) error {
	err := a.Admin.RemoveTOTP(ctx, username)
	a.emit(ctx, audit.OpUserTOTPRemove, username, err)
	return err
}

func (a *audited) ResetMFA(ctx context.Context, username string) (FactorSummary, error) {
	s, err := a.Admin.ResetMFA(ctx, username)
	a.emit(ctx, audit.OpUserMFAReset, username, err)
	return s, err
}

// factorRoutes serves the factor verbs on the admin socket. Usernames
// travel in the query or body, never in the path.
func factorRoutes(r *mux.Router, a Admin) {
	r.HandleFunc("/users/totp", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Username string }
		if !decode(w, r, &body) {
			return
		}
		e, err := a.AddTOTP(r.Context(), body.Username)
		reply(w, e, err)
	}).Methods("POST")
	r.HandleFunc("/users/totp", func(w http.ResponseWriter, r *http.Request) {
		reply(w, nil, a.RemoveTOTP(r.Context(), r.URL.Query().Get("username")))
	}).Methods("DELETE")
	r.HandleFunc("/users/mfa", func(w http.ResponseWriter, r *http.Request) {
		s, err := a.ResetMFA(r.Context(), r.URL.Query().Get("username"))
		reply(w, s, err)
	}).Methods("DELETE")
	r.HandleFunc("/users/factors", func(w http.ResponseWriter, r *http.Request) {
		all, err := a.ListFactors(r.Context())
		reply(w, all, err)
	}).Methods("GET")
}

// The socket client.

func (c *Client) AddTOTP(ctx context.Context, username string) (TOTPEnrolment, error) {
	var e TOTPEnrolment
	return e, c.do(ctx, "POST", "/users/totp", struct{ Username string }{username}, &e)
}

func (c *Client) RemoveTOTP(ctx context.Context, username string) error {
	return c.do(ctx, "DELETE", "/users/totp?"+url.Values{"username": {username}}.Encode(), nil, nil)
}

func (c *Client) ResetMFA(ctx context.Context, username string) (FactorSummary, error) {
	var s FactorSummary
	return s, c.do(ctx, "DELETE", "/users/mfa?"+url.Values{"username": {username}}.Encode(), nil, &s)
}

func (c *Client) ListFactors(ctx context.Context) ([]FactorSummary, error) {
	var all []FactorSummary
	return all, c.do(ctx, "GET", "/users/factors", nil, &all)
}
