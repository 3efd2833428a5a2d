package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/smallsso/provider/provider/admin"
	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/storage"
)

func newTrustCmd(e *env) *cobra.Command {
	return group("trust", "Manage the issuers whose JWT assertions are exchanged for access tokens (RFC 7523)",
		newTrustAddCmd(e), newTrustListCmd(e), newTrustDeleteCmd(e))
}

func newTrustAddCmd(e *env) *cobra.Command {
	var (
		configPath  string
		spec        clientspec.TrustSpec
		jwksFile    string
		maxLifetime time.Duration
	)
	c := &cobra.Command{
		Use:   "add --config FILE --issuer ISS (--subject SUB | --any-subject) (--jwks-file F | --jwks-uri URL) [--scope S...] [--max-lifetime D]",
		Short: "Trust an issuer's signed JWT assertions for one subject or any",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if spec.Issuer == "" {
				return usageError{fmt.Errorf("--issuer is required")}
			}
			if (spec.Subject == "") == !spec.AnySubject {
				return usageError{fmt.Errorf("give either --subject or --any-subject")}
			}
			if (jwksFile == "") == (spec.JWKSURI == "") {
				return usageError{fmt.Errorf("give either --jwks-file or --jwks-uri")}
			}
			if jwksFile != "" {
				raw, err := os.ReadFile(jwksFile)
				if err != nil {
					return fmt.Errorf("--jwks-file: %w", err)
				}
				spec.JWKS = clientspec.JWKSDoc(raw)
			}
			if cmd.Flags().Changed("max-lifetime") {
				spec.MaxLifetime = maxLifetime.String()
			}
			return withAdmin(cmd, configPath, func(a admin.Admin) error {
				ti, err := a.AddTrustedIssuer(cmd.Context(), spec)
				if err != nil {
					what := fmt.Sprintf("trusted issuer %q for subject %q", spec.Issuer, spec.Subject)
					if spec.AnySubject {
						what = fmt.Sprintf("trusted issuer %q for any subject", spec.Issuer)
					}
					return describe(err, what)
				}
				fmt.Fprintf(e.stdout, "added trusted issuer %s (id %s)\n", ti.Issuer, ti.ID)
				return nil
			})
		},
	}
	f := c.Flags()
	f.StringVar(&configPath, "config", "", "config file")
	f.StringVar(&spec.Issuer, "issuer", "", "the assertions' iss (required)")
	f.StringVar(&spec.Subject, "subject", "", "the one sub the assertions may carry")
	f.BoolVar(&spec.AnySubject, "any-subject", false, "accept assertions for every subject")
	f.StringVar(&jwksFile, "jwks-file", "", "file with the issuer's public JSON Web Key Set")
	f.StringVar(&spec.JWKSURI, "jwks-uri", "", "URL where the issuer publishes its JSON Web Key Set")
	f.StringSliceVar(&spec.Scopes, "scope", nil, "scopes the issuer's assertions may be granted (repeat or comma-separate)")
	f.DurationVar(&maxLifetime, "max-lifetime", 0, "longest exp - iat accepted (default 1h, at most 24h)")
	return c
}

func newTrustListCmd(e *env) *cobra.Command {
	var (
		configPath string
		asJSON     bool
	)
	c := &cobra.Command{
		Use:   "list --config FILE [--json]",
		Short: "List trusted issuers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(cmd, configPath, func(a admin.Admin) error {
				all, err := a.ListTrustedIssuers(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					// max_lifetime as a duration ("1h0m0s"), as the config
					// and --max-lifetime write it, not in nanoseconds.
					type trustJSON struct {
						storage.TrustedIssuer
						MaxLifetime string `json:"max_lifetime,omitempty"`
					}
					out := make([]trustJSON, len(all))
					for i, ti := range all {
						out[i] = trustJSON{TrustedIssuer: ti, MaxLifetime: ti.MaxLifetime.String()}
					}
					return printJSON(e.stdout, out)
				}
				w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tISSUER\tSUBJECT\tKEYS\tSCOPES\tMAX LIFETIME\tSOURCE")
				for _, ti := range all {
					subject, keys := ti.Subject, "jwks"
					if ti.AnySubject {
						subject = "*"
					}
					if ti.JWKSURI != "" {
						keys = ti.JWKSURI
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ti.ID, ti.Issuer, subject, keys,
						dash(strings.Join(ti.Scopes, ",")), ti.MaxLifetime, dash(ti.Source))
				}
				return w.Flush()
			})
		},
	}
	c.Flags().StringVar(&configPath, "config", "", "config file")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func newTrustDeleteCmd(e *env) *cobra.Command {
	var configPath string
	c := &cobra.Command{
		Use:   "delete ID --config FILE",
		Short: "Stop trusting an issuer (by the ID trust list shows)",
		Args:  exactArgs(1, "one trusted issuer ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(cmd, configPath, func(a admin.Admin) error {
				if err := a.DeleteTrustedIssuer(cmd.Context(), args[0]); err != nil {
					return describe(err, fmt.Sprintf("trusted issuer %q", args[0]))
				}
				fmt.Fprintf(e.stdout, "deleted trusted issuer %s\n", args[0])
				return nil
			})
		},
	}
	c.Flags().StringVar(&configPath, "config", "", "config file")
	return c
}
