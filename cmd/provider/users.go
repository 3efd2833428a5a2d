package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/smallsso/provider/provider/admin"
	"github.com/smallsso/provider/provider/secret"
	"github.com/smallsso/provider/provider/userspec"

	"github.com/spf13/cobra"
)

func newUsersCmd(e *env) *cobra.Command {
	return group("users", "Manage the people who can sign in",
		newUsersAddCmd(e), newUsersListCmd(e), newUsersDeleteCmd(e), newUsersSetPasswordCmd(e), newUsersHashCmd(e),
		newUsersTOTPCmd(e), newUsersMFACmd(e))
}

// newUsersHashCmd prints the password_hash of a password for the config
// file: a user declared with a hash costs nothing at start, while a clear
// password is checked against the stored hash (one argon2id run) at
// every start.
func newUsersHashCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "hash",
		Short: "Read a password from stdin and print its argon2id hash, for password_hash in the config",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			password, err := readSecret(e.stdin, "password")
			if err != nil {
				return err
			}
			if _, err := (userspec.User{Username: "hash", Password: password}).Validate(); err != nil {
				return err
			}
			hash, err := secret.Hash(password)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, hash)
			return nil
		},
	}
}

func newUsersAddCmd(e *env) *cobra.Command {
	var (
		configPath, passwordNote string
		n                        userspec.User
		passwordStdin            bool
	)
	c := &cobra.Command{
		Use:   "add --config FILE --username U --email E [--name N] [--groups a,b] [--password-stdin]",
		Short: "Add a user; without --password-stdin a password is generated and printed once",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if n.Username == "" {
				return usageError{fmt.Errorf("--username is required")}
			}
			if passwordStdin {
				var err error
				if n.Password, err = readSecret(e.stdin, "password"); err != nil {
					return err
				}
			} else {
				n.Password = secret.NewPassword()
				passwordNote = n.Password
			}
			return withAdmin(cmd, configPath, func(a admin.Admin) error {
				u, err := a.AddUser(cmd.Context(), n)
				if err != nil {
					return describe(err, fmt.Sprintf("user %q", n.Username))
				}
				fmt.Fprintf(e.stdout, "added user %s (sub %s)\n", u.Username, u.ID)
				if passwordNote != "" {
					fmt.Fprintf(e.stdout, "password: %s\n(shown once; store it now)\n", passwordNote)
				}
				return nil
			})
		},
	}
	f := c.Flags()
	f.StringVar(&configPath, "config", "", "config file")
	f.StringVar(&n.Username, "username", "", "login name (required)")
	f.StringVar(&n.Email, "email", "", "email address")
	f.BoolVar(&n.EmailVerified, "email-verified", false, "mark the email address as verified")
	f.StringVar(&n.Name, "name", "", "full name")
	f.StringVar(&n.GivenName, "given-name", "", "given name")
	f.StringVar(&n.PhoneNumber, "phone", "", "phone number, E.164 recommended (+1 555 0100)")
	f.StringVar(&n.FamilyName, "family-name", "", "family name")
	f.StringSliceVar(&n.Groups, "groups", nil, "groups, comma-separated")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin")
	return c
}

func newUsersListCmd(e *env) *cobra.Command {
	var (
		configPath string
		asJSON     bool
	)
	c := &cobra.Command{
		Use:   "list --config FILE [--json]",
		Short: "List users",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(cmd, configPath, func(a admin.Admin) error {
				users, err := a.ListUsers(cmd.Context())
				if err != nil {
					return err
				}
				factors := listFactors(cmd, a)
				if asJSON {
					return printJSON(e.stdout, withFactors(users, factors))
				}
				w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "USERNAME\tEMAIL\tNAME\tGROUPS\tSUB\tMFA")
				for _, u := range users {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", u.Username, dash(u.Email), dash(u.Name), dash(strings.Join(u.Groups, ",")), u.ID, mfaColumn(factors, u.ID))
				}
				return w.Flush()
			})
		},
	}
	c.Flags().StringVar(&configPath, "config", "", "config file")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func newUsersDeleteCmd(e *env) *cobra.Command {
	var configPath string
	c := &cobra.Command{
		Use:   "delete USERNAME --config FILE",
		Short: "Delete a user",
		Args:  exactArgs(1, "one USERNAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(cmd, configPath, func(a admin.Admin) error {
				if err := a.DeleteUser(cmd.Context(), args[0]); err != nil {
					return describe(err, fmt.Sprintf("user %q", args[0]))
				}
				fmt.Fprintf(e.stdout, "deleted user %s\n", args[0])
				return nil
			})
		},
	}
	c.Flags().StringVar(&configPath, "config", "", "config file")
	return c
}

func newUsersSetPasswordCmd(e *env) *cobra.Command {
	var (
		configPath    string
		passwordStdin bool
	)
	c := &cobra.Command{
		Use: "set-password USERNAME --config FILE [--password-stdin]",
		// passwd: the name the issue and Unix people know it by.
		Aliases: []string{"passwd"},
		Short:   "Set a user's password and end their browser sessions and refresh tokens; without --password-stdin one is generated and printed once",
		Args:    exactArgs(1, "one USERNAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			password, generated := "", false
			var err error
			if passwordStdin {
				if password, err = readSecret(e.stdin, "password"); err != nil {
					return err
				}
			} else {
				password, generated = secret.NewPassword(), true
			}
			return withAdmin(cmd, configPath, func(a admin.Admin) error {
				if err := a.SetPassword(cmd.Context(), args[0], password); err != nil {
					return describe(err, fmt.Sprintf("user %q", args[0]))
				}
				fmt.Fprintf(e.stdout, "password set for %s\n", args[0])
				if generated {
					fmt.Fprintf(e.stdout, "password: %s\n(shown once; store it now)\n", password)
				}
				return nil
			})
		},
	}
	c.Flags().StringVar(&configPath, "config", "", "config file")
	c.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin")
	return c
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
