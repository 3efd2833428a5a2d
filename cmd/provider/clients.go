package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/smallsso/provider/provider/admin"
	"github.com/smallsso/provider/provider/clientspec"
)

func newClientsCmd(e *env) *cobra.Command {
	return group("clients", "Manage the applications that use sign-in",
		newClientsAddCmd(e), newClientsListCmd(e), newClientsDeleteCmd(e))
}

func newClientsAddCmd(e *env) *cobra.Command {
	var (
		configPath  string
		spec        clientspec.Spec
		secretStdin bool
		jwksFile    string
	)
	c := &cobra.Command{
		Use:   "add --config FILE --id ID [--name N] --redirect-uri URI... [--grant-type G...] [--scope S...] [--auth-method M] [--auth-signing-alg ALG] [--jwks-file F | --jwks-uri URL] [--id-token-alg ALG] [--userinfo-alg ALG] [--response-type T...] [--request-uri URL...] [--request-object-alg ALG] [--public] [--introspect any] [--skip-consent] [--require-mfa] [--secret-stdin] [--post-logout-redirect-uri URI...] [--backchannel-logout-uri URL] [--frontchannel-logout-uri URL]",
		Short: "Add a client; a confidential client without --secret-stdin gets a generated secret, printed once",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if spec.ID == "" {
				return usageError{fmt.Errorf("--id is required")}
			}
			if secretStdin {
				if spec.Public {
					return usageError{fmt.Errorf("--secret-stdin and --public exclude each other")}
				}
				var err error
				if spec.Secret, err = readSecret(e.stdin, "secret"); err != nil {
					return err
				}
			}
			if jwksFile != "" {
				raw, err := os.ReadFile(jwksFile)
				if err != nil {
					return fmt.Errorf("--jwks-file: %w", err)
				}
				spec.JWKS = clientspec.JWKSDoc(raw)
			}
			return withAdmin(cmd, configPath, func(a admin.Admin) error {
				client, secret, err := a.AddClient(cmd.Context(), spec)
				if err != nil {
					return describe(err, fmt.Sprintf("client %q", spec.ID))
				}
				fmt.Fprintf(e.stdout, "added client %s\n", client.ID)
				if secret != "" {
					fmt.Fprintf(e.stdout, "client secret: %s\n(shown once; store it now)\n", secret)
				}
				return nil
			})
		},
	}
	f := c.Flags()
	f.StringVar(&configPath, "config", "", "config file")
	f.StringVar(&spec.ID, "id", "", "client ID (required)")
	f.StringVar(&spec.Name, "name", "", "name shown on the consent page")
	f.StringSliceVar(&spec.RedirectURIs, "redirect-uri", nil, "allowed redirect URI, exact match; for a --public client an http loopback URI (127.0.0.1, [::1], localhost) matches on any port (repeat or comma-separate)")
	f.StringSliceVar(&spec.GrantTypes, "grant-type", nil, "authorization_code, implicit, refresh_token, client_credentials, password (legacy), urn:ietf:params:oauth:grant-type:jwt-bearer (default authorization_code)")
	f.StringSliceVar(&spec.ResponseTypes, "response-type", nil, "response types: code (default); implicit and hybrid ones need --grant-type implicit: \"id_token\", \"id_token token\", \"code id_token\", \"code token\", \"code id_token token\"")
	f.StringArrayVar(&spec.RequestURIs, "request-uri", nil, "URL where the client publishes request objects for request_uri (https; repeat for several)")
	f.StringVar(&spec.RequestObjectSigningAlg, "request-object-alg", "", "require request objects signed with this algorithm (RS256, PS256, ES256, EdDSA, ...; or none); default: unsigned or any supported")
	f.StringSliceVar(&spec.Scopes, "scope", nil, "scopes the client may request (default openid,profile,email)")
	f.StringSliceVar(&spec.Audience, "audience", nil, "audiences the client may request")
	f.StringVar(&spec.TokenEndpointAuthMethod, "auth-method", "", "client_secret_basic (default; client_secret_post is accepted too), client_secret_post, client_secret_jwt, private_key_jwt, or none for public clients")
	f.StringVar(&spec.TokenEndpointAuthSigningAlg, "auth-signing-alg", "", "pin the JWS algorithm of client assertions (default: any supported)")
	f.StringVar(&jwksFile, "jwks-file", "", "file with the client's public JSON Web Key Set (private_key_jwt)")
	f.StringVar(&spec.JWKSURI, "jwks-uri", "", "URL of the client's public JSON Web Key Set (private_key_jwt)")
	f.StringSliceVar(&spec.AllowedOrigins, "allowed-origin", nil, "browser origin allowed CORS (default: the redirect URIs' origins)")
	f.BoolVar(&spec.RequirePAR, "require-par", false, "refuse authorization requests that were not pushed first (RFC 9126)")
	f.StringVar(&spec.AccessTokenFormat, "access-token-format", "", "opaque (default) or jwt (RFC 9068)")
	f.StringVar(&spec.Introspect, "introspect", "", "any: the client may introspect every token (a trusted resource server); default: only its own tokens and those whose audience names it")
	f.StringVar(&spec.RateLimit, "rate-limit", "", "limit the client's token requests, like 100/m (requests per s, m, h or d, or per a duration like 10s); default: none")
	f.BoolVar(&spec.SkipConsent, "skip-consent", false, "a first-party application: people are not asked to consent (only when the request says prompt=consent)")
	f.BoolVar(&spec.RequireMFA, "require-mfa", false, "everyone who signs in to this client must prove a second factor (and enrol one first if they have none)")
	f.StringVar(&spec.IDTokenSignedResponseAlg, "id-token-alg", "", "ID token signing algorithm: RS256 (default), PS256, ES256 or EdDSA")
	f.StringVar(&spec.UserinfoSignedResponseAlg, "userinfo-alg", "", "sign userinfo responses (application/jwt) with RS256, PS256, ES256 or EdDSA (default: plain JSON)")
	f.StringArrayVar(&spec.PostLogoutRedirectURIs, "post-logout-redirect-uri", nil, "where RP-initiated logout may return to, exact match (repeat for more)")
	f.StringVar(&spec.BackchannelLogoutURI, "backchannel-logout-uri", "", "URL the provider POSTs a logout token to when the person signs out (back-channel logout)")
	f.StringVar(&spec.FrontchannelLogoutURI, "frontchannel-logout-uri", "", "URL the signed-out page loads in a hidden iframe, with iss and sid (front-channel logout)")
	f.BoolVar(&spec.Public, "public", false, "a public client (no secret, PKCE required)")
	f.StringVar(&spec.LogoURI, "logo-uri", "", "logo shown on the login and consent pages (https)")
	f.StringVar(&spec.ClientURI, "client-uri", "", "the application's home page, linked from the login and consent pages")
	f.StringVar(&spec.PolicyURI, "policy-uri", "", "the application's privacy policy, linked from the login and consent pages")
	f.StringVar(&spec.TosURI, "tos-uri", "", "the application's terms of service, linked from the login and consent pages")
	f.StringSliceVar(&spec.Contacts, "contact", nil, "people responsible for the client, e.g. an e-mail address (repeat or comma-separate)")
	f.BoolVar(&secretStdin, "secret-stdin", false, "read the client secret from stdin")
	return c
}

func newClientsListCmd(e *env) *cobra.Command {
	var (
		configPath string
		asJSON     bool
	)
	c := &cobra.Command{
		Use:   "list --config FILE [--json]",
		Short: "List clients",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(cmd, configPath, func(a admin.Admin) error {
				clients, err := a.ListClients(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(e.stdout, clients)
				}
				w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tNAME\tAUTH\tGRANTS\tSOURCE\tREDIRECT URIS")
				for _, c := range clients {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, dash(c.Name), c.TokenEndpointAuthMethod,
						strings.Join(c.GrantTypes, ","), dash(c.Source), dash(strings.Join(c.RedirectURIs, " ")))
				}
				return w.Flush()
			})
		},
	}
	c.Flags().StringVar(&configPath, "config", "", "config file")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func newClientsDeleteCmd(e *env) *cobra.Command {
	var configPath string
	c := &cobra.Command{
		Use:   "delete ID --config FILE",
		Short: "Delete a client",
		Args:  exactArgs(1, "one client ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(cmd, configPath, func(a admin.Admin) error {
				if err := a.DeleteClient(cmd.Context(), args[0]); err != nil {
					return describe(err, fmt.Sprintf("client %q", args[0]))
				}
				fmt.Fprintf(e.stdout, "deleted client %s\n", args[0])
				return nil
			})
		},
	}
	c.Flags().StringVar(&configPath, "config", "", "config file")
	return c
}
