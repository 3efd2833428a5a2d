package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/provider/passkey"
	"github.com/smallsso/provider/provider/userspec"

	"go.yaml.in/yaml/v3"

	"github.com/smallsso/provider/provider"
	"github.com/smallsso/provider/templates"
)

// fileConfig is config.yaml as written by the operator. Relative paths are
// relative to the config file, so `serve` works from any directory.
type fileConfig struct {
	Issuer  string `yaml:"issuer"`
	Listen  string `yaml:"listen"`
	Storage struct {
		Bolt string `yaml:"bolt"`
		// Postgres, instead of bolt, keeps everything in a PostgreSQL
		// database shared by replicas (storagepg.go).
		Postgres *postgresConfig `yaml:"postgres"`
	} `yaml:"storage"`
	Keys struct {
		Dir         string   `yaml:"dir"`
		RotateEvery duration `yaml:"rotate_every"` // keyrotation.go
		// EncryptionKey encrypts the keys kept in PostgreSQL (storagepg.go).
		EncryptionKey secretString `yaml:"encryption_key"`
	} `yaml:"keys"`
	Tokens struct {
		AccessTokenLifespan  duration `yaml:"access_token_lifespan"`
		RefreshTokenLifespan duration `yaml:"refresh_token_lifespan"`
		IDTokenLifespan      duration `yaml:"id_token_lifespan"`
		AuthCodeLifespan     duration `yaml:"authorization_code_lifespan"`
		RefreshReuseGrace    duration `yaml:"refresh_reuse_grace"` // tokensched.go
	} `yaml:"tokens"`
	Sessions struct {
		LoginLifespan   duration `yaml:"login_lifespan"`
		ConsentLifespan duration `yaml:"consent_lifespan"`
	} `yaml:"sessions"`
	UI struct {
		OrgName string `yaml:"org_name"`
		// LogoURL is an https URL or a path below the issuer.
		LogoURL string `yaml:"logo_url"`
		// PrimaryColor is a CSS hex colour (#2456c8).
		PrimaryColor string `yaml:"primary_color"`
		// TemplatesDir replaces embedded pages name by name; relative to
		// the config file.
		TemplatesDir string `yaml:"templates_dir"`
	} `yaml:"ui"`
	Log struct {
		Level  string `yaml:"level"`
		Format string `yaml:"format"`
	} `yaml:"log"`
	// Registration is dynamic client registration (RFC 7591, RFC 7592).
	Registration struct {
		Enabled bool `yaml:"enabled"`
		// InitialAccessToken, or the file holding it (relative to the
		// config file), closes registration to those who have it.
		InitialAccessToken     string `yaml:"initial_access_token"`
		InitialAccessTokenFile string `yaml:"initial_access_token_file"`
		// AllowedRedirectHosts are the redirect hosts open registration
		// accepts: names, "*.example.org", or ["*"] for any.
		AllowedRedirectHosts []string `yaml:"allowed_redirect_hosts"`
	} `yaml:"registration"`
	// Outbound is the policy for requests to URLs registered clients chose.
	Outbound struct {
		// AllowedHosts may resolve to private addresses (loopback only for
		// entries that name it).
		AllowedHosts []string `yaml:"allowed_hosts"`
	} `yaml:"outbound"`
	// Limits bound what one request may carry and what the server
	// allows (timeouts, concurrent requests); zero or absent is the
	// default.
	Limits  limitsConfig      `yaml:"limits"`
	Clients []clientspec.Spec `yaml:"clients"`
	Users   []userspec.User   `yaml:"users"`
	// TrustedIssuers may exchange signed JWT assertions for access tokens
	// (RFC 7523); jwks_file is read at load, relative to the config file.
	TrustedIssuers []clientspec.TrustSpec `yaml:"trusted_issuers"`
	// TrustedProxies (top level, beside listen) are the CIDRs or single
	// addresses of reverse proxies whose X-Forwarded-For / Forwarded
	// header names the client.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// TLS is HTTPS served by the provider itself (cmd/provider/tls.go).
	TLS tlsConfig `yaml:"tls"`
	// Audit and Metrics are the audit log and the Prometheus listener
	// (observe.go).
	Audit   auditConfig   `yaml:"audit"`
	Metrics metricsConfig `yaml:"metrics"`
	// MFA is the multi-factor policy and the passkeys' relying party
	// (mfaconfig.go, passkeysconfig.go).
	MFA mfaConfig `yaml:"mfa"`

	dir  string        // the config file's directory
	path string        // the config file, absolute
	src  *configSource // where each key is in the file (nil when not read from one)
}

// duration accepts Go durations ("15m", "720h").
type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration like 15m or 720h", n.Line, n.Value)
	}
	*d = duration(v)
	return nil
}

// loadConfig reads and validates the file. All problems are collected and
// returned as a *configError, each with its key path and line.
func loadConfig(path string) (*fileConfig, error) {
	if path == "" {
		return nil, usageError{errors.New("--config is required")}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, problems := parseConfig(path, raw)
	if len(problems) > 0 {
		return nil, &configError{path: path, problems: problems}
	}
	return cfg, nil
}

func (c *fileConfig) defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.Storage.Bolt == "" {
		c.Storage.Bolt = "./data/provider.db"
	}
	if c.Keys.Dir == "" {
		c.Keys.Dir = "./data/keys"
	}
	c.Storage.Bolt = c.resolve(c.Storage.Bolt)
	c.Keys.Dir = c.resolve(c.Keys.Dir)
	if c.UI.TemplatesDir != "" {
		c.UI.TemplatesDir = c.resolve(c.UI.TemplatesDir)
	}
}

func (c *fileConfig) resolve(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

func (c *fileConfig) validate() []configProblem {
	var problems []configProblem
	// add reports a problem at a key path; the line is found from the path.
	add := c.src.adder(&problems)
	if c.Issuer == "" {
		add("issuer", "is required (the URL relying parties use, e.g. https://sso.example.org)")
	} else if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		add("issuer", "%q must be an http(s) URL without query or fragment", c.Issuer)
	} else if u.Scheme == "http" && !clientspec.IsLoopbackHost(u.Hostname()) {
		add("issuer", "%q must use https unless the host is loopback (OpenID Connect Discovery §3)", c.Issuer)
	} else if strings.HasSuffix(c.Issuer, "/") {
		// Kept exactly as written, never trimmed: iss must match it byte
		// for byte, and every endpoint is the issuer followed by a path.
		add("issuer", "%q ends with a slash: write %q (every endpoint is the issuer followed by /path, and tokens' iss must match the issuer exactly)", c.Issuer, strings.TrimRight(c.Issuer, "/"))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen", "%q must be host:port", c.Listen)
	}
	for i, s := range c.TrustedProxies {
		if _, err := parseTrustedProxy(s); err != nil {
			add(fmt.Sprintf("trusted_proxies[%d]", i), "%q is not a CIDR like 10.0.0.0/8 or fd00::/8, or an IP address", s)
		}
	}
	if problem := provider.LogoURLProblem(c.UI.LogoURL); problem != "" {
		add("ui.logo_url", "%s", problem)
	}
	if c.UI.PrimaryColor != "" {
		if _, err := templates.ParseColor(c.UI.PrimaryColor); err != nil {
			add("ui.primary_color", "%v", err)
		}
	}
	if d := c.UI.TemplatesDir; d != "" {
		if st, err := os.Stat(d); err != nil {
			add("ui.templates_dir", "%v", err)
		} else if !st.IsDir() {
			add("ui.templates_dir", "%s is not a directory", d)
		}
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		add("log.level", "%q must be debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		add("log.format", "%q must be text or json", c.Log.Format)
	}
	if problem := passkey.RPIDProblem(c.Issuer, c.MFA.WebAuthn.RPID); problem != "" && c.Issuer != "" {
		add("mfa.webauthn.rp_id", "%s", problem)
	}
	c.validateStorage(add) // storagepg.go
	c.validateRegistration(add)
	c.validateTLS(add)
	c.validateSchedules(add)
	c.Audit.check(c, add)
	c.Metrics.check(c, add)
	c.MFA.check(add)
	validateHostList("registration.allowed_redirect_hosts", c.Registration.AllowedRedirectHosts, true, add)
	validateHostList("outbound.allowed_hosts", c.Outbound.AllowedHosts, false, add)
	for _, p := range c.Limits.Problems() {
		key, problem, _ := strings.Cut(p, ": ")
		add("limits."+key, "%s", problem)
	}
	c.Limits.ServerLimits.validate(add)
	seen := map[string]bool{}
	for i := range c.Clients {
		key := fmt.Sprintf("clients[%d]", i)
		spec := &c.Clients[i]
		unread := false
		if spec.JWKSFile != "" {
			// Read here so the client is validated, and later stored, with
			// the key set itself.
			if spec.JWKS != "" {
				add(key, "give jwks or jwks_file, not both")
			} else if raw, err := os.ReadFile(c.resolve(spec.JWKSFile)); err != nil {
				add(key+".jwks_file", "%v", err)
				unread = true
			} else {
				spec.JWKS = clientspec.JWKSDoc(raw)
			}
		}
		// A client whose key file could not be read would only report
		// the missing keys again.
		_, err := spec.Validate()
		var fe *clientspec.FieldError
		switch {
		case unread || err == nil:
		case errors.As(err, &fe):
			add(key+"."+fe.Field, "%s", fe.Problem)
		default:
			add(key, "%v", err)
		}
		if seen[spec.ID] {
			add(key+".id", "%q is declared twice", spec.ID)
		}
		seen[spec.ID] = true
	}
	for i := range c.TrustedIssuers {
		key := fmt.Sprintf("trusted_issuers[%d]", i)
		spec, err := c.TrustedIssuers[i].ReadJWKSFile(c.dir)
		if err == nil {
			spec, err = spec.Validate()
		}
		var fe *clientspec.FieldError
		switch {
		case errors.As(err, &fe):
			add(key+"."+fe.Field, "%s", fe.Problem)
			continue
		case err != nil:
			add(key, "%v", err)
			continue
		}
		// Keep the key set read from jwks_file, so serve and the CLI see
		// the file as it was when the config was checked.
		c.TrustedIssuers[i].JWKS, c.TrustedIssuers[i].JWKSFile = spec.JWKS, ""
		for j := range i {
			if clientspec.SameTrust(c.TrustedIssuers[j], spec) {
				add(key, "issuer %q with the same subject is already declared at trusted_issuers[%d]", spec.Issuer, j)
				break
			}
		}
	}
	seen = map[string]bool{}
	for i := range c.Users {
		key := fmt.Sprintf("users[%d]", i)
		u, err := c.Users[i].Validate()
		var fe *userspec.FieldError
		switch {
		case errors.As(err, &fe) && fe.Field != "":
			add(key+"."+fe.Field, "%s", fe.Problem)
		case err != nil:
			add(key, "%v", err)
		case seen[u.Username]:
			add(key+".username", "%q is declared twice", u.Username)
		default:
			// Keep the cleaned-up entry (groups trimmed), as with jwks_file.
			c.Users[i] = u
		}
		seen[u.Username] = true
	}
	return problems
}

// minInitialAccessToken keeps the initial access token out of guessing
// range: it is all that stands between strangers and registration.
const minInitialAccessToken = 16

// validateRegistration reads initial_access_token_file into
// initial_access_token, so serve sees the token as it was when checked.
func (c *fileConfig) validateRegistration(add func(key, format string, args ...any)) {
	reg := &c.Registration
	if reg.InitialAccessTokenFile != "" {
		if reg.InitialAccessToken != "" {
			add("registration", "give initial_access_token or initial_access_token_file, not both")
			return
		}
		raw, err := os.ReadFile(c.resolve(reg.InitialAccessTokenFile))
		if err != nil {
			add("registration.initial_access_token_file", "%v", err)
			return
		}
		reg.InitialAccessToken, reg.InitialAccessTokenFile = strings.TrimSpace(string(raw)), ""
		if reg.InitialAccessToken == "" {
			add("registration.initial_access_token_file", "the file is empty")
			return
		}
	}
	if t := reg.InitialAccessToken; t != "" && len(t) < minInitialAccessToken {
		add("registration.initial_access_token", "must be at least %d characters (for example: openssl rand -hex 32)", minInitialAccessToken)
	}
}

// validateHostList checks a list of host names and "*.example.org"
// patterns; "*" alone (any host) only where star says it may be.
func validateHostList(key string, hosts []string, star bool, add func(key, format string, args ...any)) {
	for i, h := range hosts {
		k := fmt.Sprintf("%s[%d]", key, i)
		rest := strings.TrimPrefix(h, "*.")
		switch {
		case h == "*" && star:
		case h == "*":
			add(k, `"*" would let every registered client reach private addresses; list the hosts`)
		case h == "" || strings.ContainsAny(h, "/:@ ") && !strings.HasPrefix(h, "["):
			add(k, "%q must be a host name like app.example.org or *.example.org (no scheme, port or path)", h)
		case strings.Contains(rest, "*") || rest == "":
			add(k, "%q: a wildcard is only allowed as the first label, as in *.example.org", h)
		}
	}
}

func (c *fileConfig) providerConfig() provider.Config {
	return provider.Config{
		Issuer:               c.Issuer,
		AccessTokenLifespan:  time.Duration(c.Tokens.AccessTokenLifespan),
		RefreshTokenLifespan: time.Duration(c.Tokens.RefreshTokenLifespan),
		IDTokenLifespan:      time.Duration(c.Tokens.IDTokenLifespan),
		AuthCodeLifespan:     time.Duration(c.Tokens.AuthCodeLifespan),
		LoginSessionLifespan: time.Duration(c.Sessions.LoginLifespan),
		ConsentLifespan:      time.Duration(c.Sessions.ConsentLifespan),
		OrgName:              c.UI.OrgName,
		TrustedProxies:       c.trustedProxies(),
		Registration: provider.RegistrationConfig{
			Enabled:              c.Registration.Enabled,
			InitialAccessToken:   c.Registration.InitialAccessToken,
			AllowedRedirectHosts: c.Registration.AllowedRedirectHosts,
		},
		Outbound:     provider.OutboundConfig{AllowedHosts: c.Outbound.AllowedHosts},
		LogoURL:      c.UI.LogoURL,
		PrimaryColor: c.UI.PrimaryColor,
		Limits:       c.Limits.Limits,

		RefreshReuseGrace: time.Duration(c.Tokens.RefreshReuseGrace),
		MFA:               c.MFA.providerConfig(),
	}.Defaults()
}

// trustedProxies are trusted_proxies as prefixes (validate checked them).
func (c *fileConfig) trustedProxies() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		if p, err := parseTrustedProxy(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// parseTrustedProxy reads one trusted_proxies entry: a CIDR, or one
// address (a /32 or /128).
func parseTrustedProxy(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("zone")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// adminSocket is the admin socket beside the database file.
func (c *fileConfig) adminSocket() string { return c.Storage.Bolt + ".sock" }

// verifyFor is how long a retired signing key must stay published: as long
// as the longest-lived token it may have signed.
func (c *fileConfig) verifyFor() time.Duration {
	pc := c.providerConfig()
	return max(pc.IDTokenLifespan, pc.AccessTokenLifespan)
}
