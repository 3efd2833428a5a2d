package clientspec

import (
	"errors"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// ValidRedirectURI accepts https URIs, http on loopback (RFC 8252 §7.3),
// private-use schemes (RFC 8252 §7.1) and the out-of-band URN.
func ValidRedirectURI(raw string) error {
	if raw == OOBRedirectURI {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return errors.New("must be an absolute URI")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("must not have a fragment")
	}
	if u.Scheme == "http" && !IsLoopbackHost(u.Hostname()) {
		return errors.New("http is only allowed on loopback (127.0.0.1, [::1], localhost); use https")
	}
	if strings.Contains(u.Host, "*") || strings.Contains(u.Path, "*") {
		// Redirect URIs match exactly (RFC 9700 §4.1.3): a pattern would
		// only ever match the literal "*", or be mistaken for one.
		return errors.New("must not contain a wildcard: redirect URIs match exactly; list each one")
	}
	return nil
}

// ValidWebURL accepts an absolute https URL without user information; http
// only on a loopback host, for local development and tests. Everything a
// client registers for the provider to fetch, post to or link to follows
// it: jwks_uri, request_uris, logout URIs, page links.
func ValidWebURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return errors.New("must be an absolute URL")
	}
	if u.User != nil {
		return errors.New("must not contain user information")
	}
	switch {
	case u.Scheme == "https", u.Scheme == "http" && IsLoopbackHost(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return errors.New("http is only allowed on loopback (127.0.0.1, [::1], localhost); it must be https")
	}
	return errors.New("must be https")
}

// validOrigin accepts a bare web origin: scheme://host[:port].
func validOrigin(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return errors.New("must be an origin like https://app.example.org")
	}
	return nil
}

// IsLoopbackHost is true for loopback IP literals and "localhost".
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// WebOrigin is the origin of an http(s) URL as a browser serialises it in
// the Origin header: lower-case scheme and host, no default port. Other
// schemes (private-use redirect URIs of native apps, the OOB URN) have no
// web origin.
func WebOrigin(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port := u.Port(); port != "" && !(scheme == "http" && port == "80") && !(scheme == "https" && port == "443") {
		if _, err := strconv.Atoi(port); err != nil {
			return "", false
		}
		host += ":" + port
	}
	return scheme + "://" + host, true
}

// validateLogout checks the logout settings: post-logout redirect URIs like
// redirect URIs, and back- and front-channel URIs reachable over https
// (http only on loopback, for local development).
func (c Spec) validateLogout() error {
	for _, u := range c.PostLogoutRedirectURIs {
		if u == OOBRedirectURI {
			return Invalidf("post-logout redirect URI %q: there is nowhere to return to", u)
		}
		if err := ValidRedirectURI(u); err != nil {
			return Invalidf("post-logout redirect URI %q: %v", u, err)
		}
	}
	if c.BackchannelLogoutURI != "" {
		if err := validLogoutURI(c.BackchannelLogoutURI); err != nil {
			return Invalidf("backchannel_logout_uri %q: %v", c.BackchannelLogoutURI, err)
		}
	} else if c.BackchannelLogoutSessionRequired {
		return Invalidf("backchannel_logout_session_required needs a backchannel_logout_uri")
	}
	if c.FrontchannelLogoutURI != "" {
		if err := validLogoutURI(c.FrontchannelLogoutURI); err != nil {
			return Invalidf("frontchannel_logout_uri %q: %v", c.FrontchannelLogoutURI, err)
		}
		// Front-Channel Logout 1.0 §2: the page the iframe loads must be on
		// the client's own site, that of one of its redirect URIs.
		fc, _ := WebOrigin(c.FrontchannelLogoutURI)
		if !slices.ContainsFunc(c.RedirectURIs, func(u string) bool { o, ok := WebOrigin(u); return ok && o == fc }) {
			return Invalidf("frontchannel_logout_uri %q must have the scheme, host and port of a redirect URI", c.FrontchannelLogoutURI)
		}
	} else if c.FrontchannelLogoutSessionRequired {
		return Invalidf("frontchannel_logout_session_required needs a frontchannel_logout_uri")
	}
	return nil
}

// validLogoutURI accepts an absolute https URL without fragment; http only
// on loopback.
func validLogoutURI(raw string) error {
	if strings.Contains(raw, "#") {
		return errors.New("must not have a fragment")
	}
	return ValidWebURL(raw)
}

// validateClientInfo checks what people see of a client: the pages link to
// these URLs and load the logo, so they must be web URLs (https; http only
// on loopback, for development).
func (c Spec) validateClientInfo() error {
	for _, f := range []struct{ name, v string }{
		{"logo_uri", c.LogoURI}, {"client_uri", c.ClientURI}, {"policy_uri", c.PolicyURI}, {"tos_uri", c.TosURI},
	} {
		if f.v == "" {
			continue
		}
		if ValidWebURL(f.v) != nil {
			return Invalidf("%s %q must be an https URL (http only on loopback)", f.name, f.v)
		}
	}
	for _, ct := range c.Contacts {
		if ct == "" || len(ct) > 320 || strings.ContainsFunc(ct, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return Invalidf("contacts: %q is not an e-mail address or similar contact", ct)
		}
	}
	return nil
}
