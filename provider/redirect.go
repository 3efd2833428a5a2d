package provider

import (
	"net/url"
	"slices"

	"github.com/ory/fosite"

	"github.com/smallsso/provider/provider/clientspec"
)

// Redirect URI matching. fosite compares a requested redirect_uri with the
// client's list, exactly, except that on a loopback IP literal any port
// matches (RFC 8252 §7.3), for every client. Here that exception is for
// public (native) clients only, and covers http://localhost as well as
// 127.0.0.1 and [::1] (kubelogin and many CLIs listen on
// http://localhost:8000); scheme, host, path and query still match exactly.
// A confidential client's redirect URIs match exactly: it runs on a server
// whose callback has a fixed port.
//
// fosite's matching cannot be configured, so the client decides what fosite
// sees: bound to the authorization request being parsed, it lists the
// requested URI itself when our rule accepts it, and leaves out the
// entries fosite's loopback rule would otherwise stretch to it.

// redirectURIsFor is the redirect URI list to show fosite for a request
// naming requested.
func redirectURIsFor(requested string, registered []string, public bool) []string {
	if requested == "" || slices.Contains(registered, requested) {
		return registered
	}
	u, err := url.Parse(requested)
	if err != nil {
		return registered // fosite refuses it too
	}
	if public && slices.ContainsFunc(registered, func(r string) bool { return loopbackMatch(u, r) }) {
		return append(slices.Clone(registered), requested)
	}
	return slices.DeleteFunc(slices.Clone(registered), func(r string) bool { return samePortAside(u, r) })
}

// loopbackMatch is RFC 8252 §7.3: an http redirect URI on a loopback host
// matches on any port; everything else must be equal.
func loopbackMatch(u *url.URL, registered string) bool {
	r, err := url.Parse(registered)
	return err == nil && u.Scheme == "http" && r.Scheme == "http" && u.User == nil && r.User == nil &&
		u.Opaque == "" && r.Opaque == "" && u.Fragment == "" && !u.ForceQuery &&
		clientspec.IsLoopbackHost(r.Hostname()) && u.Hostname() == r.Hostname() &&
		u.Path == r.Path && u.RawPath == r.RawPath && u.RawQuery == r.RawQuery
}

// samePortAside reports whether fosite's loopback rule could match u to
// registered: same host, path and query, whatever the scheme and port.
func samePortAside(u *url.URL, registered string) bool {
	r, err := url.Parse(registered)
	return err == nil && u.Hostname() == r.Hostname() && u.Path == r.Path && u.RawQuery == r.RawQuery
}

// GetRedirectURIs is what fosite matches the request's redirect_uri
// against (see redirectURIsFor); outside an authorization request, the
// registered list.
func (c *client) GetRedirectURIs() []string {
	registered := c.DefaultClient.GetRedirectURIs()
	if c.authorize == nil || c.authorize.Form == nil {
		return registered
	}
	return redirectURIsFor(c.authorize.Form.Get("redirect_uri"), registered, c.IsPublic())
}

// bindAuthorizeRequest ties c to the authorization request fosite is
// parsing, if any: fosite puts it in the context before it looks the
// client up, and reads redirect_uri from its form after.
func (c *client) bindAuthorizeRequest(ar any) {
	if r, ok := ar.(*fosite.AuthorizeRequest); ok {
		c.authorize = r
	}
}
