package provider

import (
	"errors"
	"slices"
	"strings"
)

// validateLogout checks the logout settings: post-logout redirect URIs like
// redirect URIs, and back- and front-channel URIs reachable over https
// (http only on loopback, for local development).
func (c ClientSpec) validateLogout() error {
	for _, u := range c.PostLogoutRedirectURIs {
		if u == oobRedirectURI {
			return invalid("post-logout redirect URI %q: there is nowhere to return to", u)
		}
		if err := validRedirectURI(u); err != nil {
			return invalid("post-logout redirect URI %q: %v", u, err)
		}
	}
	if c.BackchannelLogoutURI != "" {
		if err := validLogoutURI(c.BackchannelLogoutURI); err != nil {
			return invalid("backchannel_logout_uri %q: %v", c.BackchannelLogoutURI, err)
		}
	} else if c.BackchannelLogoutSessionRequired {
		return invalid("backchannel_logout_session_required needs a backchannel_logout_uri")
	}
	if c.FrontchannelLogoutURI != "" {
		if err := validLogoutURI(c.FrontchannelLogoutURI); err != nil {
			return invalid("frontchannel_logout_uri %q: %v", c.FrontchannelLogoutURI, err)
		}
		// Front-Channel Logout 1.0 §2: the page the iframe loads must be on
		// the client's own site, that of one of its redirect URIs.
		fc, _ := webOrigin(c.FrontchannelLogoutURI)
		if !slices.ContainsFunc(c.RedirectURIs, func(u string) bool { o, ok := webOrigin(u); return ok && o == fc }) {
			return invalid("frontchannel_logout_uri %q must have the scheme, host and port of a redirect URI", c.FrontchannelLogoutURI)
		}
	} else if c.FrontchannelLogoutSessionRequired {
		return invalid("frontchannel_logout_session_required needs a frontchannel_logout_uri")
	}
	return nil
}

// validLogoutURI accepts an absolute https URL without fragment; http only
// on loopback.
func validLogoutURI(raw string) error {
	if strings.Contains(raw, "#") {
		return errors.New("must not have a fragment")
	}
	return validWebURL(raw)
}
