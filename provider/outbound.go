package provider

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// Requests the provider makes to addresses clients chose: request_uri
// fetches, client jwks_uri fetches, back-channel logout tokens. With open
// registration anyone can choose them, so every such request goes through
// outboundClient: no redirects (they would lead somewhere nobody
// registered), a short timeout, and never to link-local, multicast or
// unspecified addresses (cloud metadata endpoints live at
// 169.254.169.254), nor to loopback unless the registered URL names a
// loopback host itself (local development and tests). The check runs on
// the address actually dialled, after DNS, so a name that resolves to a
// forbidden address is refused too.

var errForbiddenAddress = errors.New("outbound request: address not allowed")

// outboundClient is an HTTP client for one request to target.
func outboundClient(target *url.URL, timeout time.Duration) *http.Client {
	allowLoopback := IsLoopbackHost(target.Hostname())
	dialer := &net.Dialer{
		Timeout: timeout,
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(host)
			if err != nil {
				return err
			}
			ip = ip.Unmap()
			if (ip.IsLoopback() && !allowLoopback) || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
				ip.IsMulticast() || ip.IsUnspecified() {
				return errForbiddenAddress
			}
			return nil
		},
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:            dialer.DialContext,
			TLSHandshakeTimeout:    timeout,
			ResponseHeaderTimeout:  timeout,
			MaxResponseHeaderBytes: 16 << 10,
			DisableKeepAlives:      true,
			ForceAttemptHTTP2:      true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
