package main

// The operator's second-factor verbs: `users totp add|remove` and
// `users mfa reset`, through the admin socket while a server holds the
// bbolt file, else on the database itself (admin.Local, factors.go).

import (
	"errors"
	"fmt"
	"strings"

	"github.com/skip2/go-qrcode"
	"github.com/spf13/cobra"

	"github.com/smallsso/provider/provider/admin"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/mfa"
	"github.com/smallsso/provider/storage"
)

// totpIssuer is the name authenticator apps show for the provider.
func (c *fileConfig) totpIssuer() string { return mfa.IssuerLabel(c.UI.OrgName, c.Issuer) }

func newUsersTOTPCmd(e *env) *cobra.Command {
	return group("totp", "Enrol or remove a person's authenticator app (TOTP)", newUsersTOTPAddCmd(e), newUsersTOTPRemoveCmd(e))
}

func newUsersMFACmd(e *env) *cobra.Command {
	return group("mfa", "Manage a person's second factors", newUsersMFAResetCmd(e))
}

// describeFactorErr words a refusal for the operator: a missing user as
// the other verbs do, a refused change (already enrolled, nothing to
// remove) as the reason alone.
func describeFactorErr(err error, username string) error {
	var inv *clientspec.InvalidError
	if errors.As(err, &inv) {
		return errors.New(inv.Msg)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("user %q does not exist", username)
	}
	return err
}

func newUsersTOTPAddCmd(e *env) *cobra.Command {
	var (
		configPath string
		qr         bool
	)
	c := &cobra.Command{
		Use:   "add USERNAME --config FILE [--qr]",
		Short: "Enrol an authenticator app for a person: prints its otpauth:// URI once (and recovery codes if it is their first factor)",
		Args:  exactArgs(1, "one USERNAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			username := args[0]
			return withAdmin(cmd, configPath, func(a admin.Admin) error {
				en, err := a.AddTOTP(cmd.Context(), username)
				if err != nil {
					return describeFactorErr(err, username)
				}
				w := e.stdout
				fmt.Fprintln(w, en.URI)
				if qr {
					code, err := qrcode.New(en.URI, qrcode.Medium)
					if err != nil {
						return fmt.Errorf("QR code: %w", err)
					}
					fmt.Fprint(w, code.ToSmallString(false))
				}
				fmt.Fprintf(w, "authenticator app added for %s: give them the URI above (or the QR code) over a safe channel; it is shown once\n", username)
				if len(en.RecoveryCodes) > 0 {
					fmt.Fprintf(w, "recovery codes for %s (each works once, in place of a code from the app; shown once):\n", username)
					for _, rc := range en.RecoveryCodes {
						fmt.Fprintln(w, rc)
					}
				}
				return nil
			})
		},
	}
	c.Flags().StringVar(&configPath, "config", "", "config file")
	c.Flags().BoolVar(&qr, "qr", false, "also print the URI as a QR code for the terminal")
	return c
}

func newUsersTOTPRemoveCmd(e *env) *cobra.Command {
	var configPath string
	c := &cobra.Command{
		Use:   "remove USERNAME --config FILE",
		Short: "Remove a person's authenticator app (passkeys stay; recovery codes go when no factor is left)",
		Args:  exactArgs(1, "one USERNAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			username := args[0]
			return withAdmin(cmd, configPath, func(a admin.Admin) error {
				if err := a.RemoveTOTP(cmd.Context(), username); err != nil {
					return describeFactorErr(err, username)
				}
				fmt.Fprintf(e.stdout, "removed the authenticator app of %s\n", username)
				return nil
			})
		},
	}
	c.Flags().StringVar(&configPath, "config", "", "config file")
	return c
}

func newUsersMFAResetCmd(e *env) *cobra.Command {
	var configPath string
	c := &cobra.Command{
		Use:   "reset USERNAME --config FILE",
		Short: "Remove every second factor and recovery code of a person (who lost them); sessions and tokens stay",
		Args:  exactArgs(1, "one USERNAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			username := args[0]
			return withAdmin(cmd, configPath, func(a admin.Admin) error {
				had, err := a.ResetMFA(cmd.Context(), username)
				if err != nil {
					return describeFactorErr(err, username)
				}
				if !had.Enrolled() && had.RecoveryCodesLeft == 0 {
					fmt.Fprintf(e.stdout, "%s had no second factor; nothing removed\n", username)
					return nil
				}
				fmt.Fprintf(e.stdout, "removed every second factor of %s (%s)\n", username, describeFactors(had))
				return nil
			})
		},
	}
	c.Flags().StringVar(&configPath, "config", "", "config file")
	return c
}

// describeFactors words a summary: "totp, 2 passkeys, 7 recovery codes".
func describeFactors(s admin.FactorSummary) string {
	var parts []string
	if s.TOTP {
		parts = append(parts, "totp")
	}
	if s.Passkeys > 0 {
		parts = append(parts, plural(s.Passkeys, "passkey"))
	}
	if s.RecoveryCodesLeft > 0 {
		parts = append(parts, plural(s.RecoveryCodesLeft, "recovery code"))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// listFactors summarises every person's factors by user ID for `users
// list`; nil, with a warning, when they cannot be read (a running server
// older than this CLI does not know the request): the listing goes on
// without them.
func listFactors(cmd *cobra.Command, a admin.Admin) map[string]admin.FactorSummary {
	all, err := a.ListFactors(cmd.Context())
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "provider: warning: second factors not listed: %v\n", err)
		return nil
	}
	out := make(map[string]admin.FactorSummary, len(all))
	for _, s := range all {
		out[s.UserID] = s
	}
	return out
}

// mfaColumn is the MFA column of `users list`: "totp,passkeys=2" (no
// spaces: one field), "-" for none, "?" when the factors could not be
// read.
func mfaColumn(factors map[string]admin.FactorSummary, userID string) string {
	if factors == nil {
		return "?"
	}
	s := factors[userID]
	if !s.Enrolled() {
		return "-"
	}
	parts := []string{}
	if s.TOTP {
		parts = append(parts, "totp")
	}
	if s.Passkeys > 0 {
		parts = append(parts, fmt.Sprintf("passkeys=%d", s.Passkeys))
	}
	return strings.Join(parts, ",")
}

// listedUser is a user of `users list --json`: the record's fields, and
// mfa with the person's factors (absent when they could not be read).
type listedUser struct {
	storage.User
	MFA *admin.FactorSummary `json:"mfa,omitempty"`
}

func withFactors(users []storage.User, factors map[string]admin.FactorSummary) []listedUser {
	out := make([]listedUser, 0, len(users))
	for _, u := range users {
		l := listedUser{User: u}
		if factors != nil {
			s := factors[u.ID]
			s.UserID = u.ID
			l.MFA = &s
		}
		out = append(out, l)
	}
	return out
}
