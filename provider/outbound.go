package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/smallsso/provider/provider/clientspec"
	"github.com/smallsso/provider/storage"
)

// Requests the provider makes to addresses clients chose: request_uri
// fetches, client jwks_uri fetches (ours and fosite's), back-channel logout
// tokens. With open registration anyone can choose them, so every such
// request goes through the guard below: no redirects (they would lead
// somewhere nobody registered), a short timeout, and only to addresses the
// URL's owner may reach.
//
// The check runs on the address actually dialled: the host is resolved
// here, every resolved address is classified, and the dialer is handed the
// checked IP literal, so a name that resolves to a forbidden address is
// refused, and a second lookup (DNS rebinding) cannot switch the address.
//
//   - Link-local (cloud metadata at 169.254.169.254), multicast, broadcast
//     and unspecified addresses: never, for anyone.
//   - Clients the operator declared (config, CLI) and trusted issuers:
//     private and loopback addresses too, the operator's choice.
//   - Clients registered through /register: public addresses only, except
//     hosts listed in outbound.allowed_hosts (private addresses allowed
//     there; loopback only when the listed entry itself names loopback:
//     localhost, 127.x.y.z, [::1], so that whoever controls the DNS of a
//     name below a "*.corp.example" entry cannot point it at this
//     machine), and, on a loopback issuer (local development), loopback
//     URLs of a client whose redirect URIs are all loopback.
//   - Addresses whose real destination the provider cannot tell (IPv6
//     transition forms that tunnel to an IPv4 address: IPv4-compatible,
//     6to4, Teredo, local-use NAT64) and reserved IPv4 space (240/4) are
//     refused for everyone; benchmarking (198.18/15) and IETF protocol
//     assignments (192.0.0.0/24) count as private.

var errForbiddenAddress = errors.New("outbound request: address not allowed")

// OutboundConfig is the policy for requests to client-chosen URLs.
type OutboundConfig struct {
	// AllowedHosts are host names (or IP literals) that registered clients
	// may name even though they resolve to private addresses;
	// "*.example.org" matches every name below example.org. Loopback is
	// reached only through an entry that names it (localhost, 127.0.0.1,
	// [::1]), never through a pattern or another name.
	AllowedHosts []string
}

// Resolver looks up the addresses of a host name; net.DefaultResolver is
// one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// DialFunc dials a network address; it is only ever given an IP literal
// and port the guard has checked.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// addrClass is what an address is, for the outbound policy.
type addrClass int

const (
	addrPublic addrClass = iota
	addrPrivate
	addrLoopback
	// addrForbidden is refused for everyone: link-local, multicast,
	// broadcast, unspecified, "this network".
	addrForbidden
)

func (c addrClass) String() string {
	return [...]string{"public", "private", "loopback", "forbidden"}[c]
}

var (
	cgnatPrefix     = netip.MustParsePrefix("100.64.0.0/10")
	thisNetwork     = netip.MustParsePrefix("0.0.0.0/8")
	siteLocalPrefix = netip.MustParsePrefix("fec0::/10")
	// The well-known NAT64 prefix (RFC 6052) carries an IPv4 address in
	// its last 4 bytes that a gateway reaches on our behalf: it is what
	// that address is.
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	broadcast   = netip.AddrFrom4([4]byte{255, 255, 255, 255})
	// tunnelledPrefixes lead to an IPv4 address the provider cannot
	// classify reliably: IPv4-compatible (::/96, deprecated), 6to4
	// (2002::/16), Teredo (2001::/32), and local-use NAT64 (RFC 8215
	// 64:ff9b:1::/48, where the IPv4 address sits at a place that depends
	// on the operator's prefix length). Refused for everyone.
	tunnelledPrefixes = []netip.Prefix{
		netip.MustParsePrefix("::/96"), netip.MustParsePrefix("2002::/16"),
		netip.MustParsePrefix("2001::/32"), netip.MustParsePrefix("64:ff9b:1::/48"),
	}
	// reservedPrefix is IPv4's reserved "future use" space (RFC 1112).
	reservedPrefix = netip.MustParsePrefix("240.0.0.0/4")
	// specialPrivatePrefixes are not public either: benchmarking
	// (RFC 2544) and IETF protocol assignments (RFC 6890).
	specialPrivatePrefixes = []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("192.0.0.0/24")}
)

// classifyAddr sorts an address into the policy's classes. IPv4-mapped
// and well-known-prefix NAT64 IPv6 addresses are what their IPv4 address
// is.
func classifyAddr(ip netip.Addr) addrClass {
	// A zone says nothing about where the address leads, and prefixes
	// never contain a zoned address.
	ip = ip.Unmap().WithZone("")
	if ip.Is6() && nat64Prefix.Contains(ip) {
		b := ip.As16()
		return classifyAddr(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
	}
	if ip.Is6() && !ip.IsUnspecified() && !ip.IsLoopback() {
		for _, p := range tunnelledPrefixes {
			if p.Contains(ip) {
				return addrForbidden
			}
		}
	}
	switch {
	case !ip.IsValid(), ip.IsUnspecified(), ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(),
		ip.IsInterfaceLocalMulticast(), ip.IsMulticast(), ip == broadcast, thisNetwork.Contains(ip),
		reservedPrefix.Contains(ip):
		return addrForbidden
	case ip.IsLoopback():
		return addrLoopback
	case ip.IsPrivate(), cgnatPrefix.Contains(ip), siteLocalPrefix.Contains(ip),
		specialPrivatePrefixes[0].Contains(ip), specialPrivatePrefixes[1].Contains(ip):
		return addrPrivate
	}
	return addrPublic
}

// outboundPolicy is what one request may reach.
type outboundPolicy struct {
	private, loopback bool
}

func (p outboundPolicy) allows(c addrClass) bool {
	switch c {
	case addrPublic:
		return true
	case addrPrivate:
		return p.private
	case addrLoopback:
		return p.loopback
	}
	return false
}

func (p outboundPolicy) key() string { return fmt.Sprintf("%t/%t", p.private, p.loopback) }

// operatorPolicy is for URLs the operator chose (config and CLI clients,
// trusted issuers).
var operatorPolicy = outboundPolicy{private: true, loopback: true}

// outbound makes the guarded requests.
type outbound struct {
	resolver     Resolver
	dial         DialFunc
	allowedHosts []string
	// loopbackIssuer is local development: registered clients whose
	// redirect URIs are all loopback may name loopback URLs.
	loopbackIssuer bool
}

func newOutbound(cfg OutboundConfig, issuer *url.URL, resolver Resolver, dial DialFunc) *outbound {
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	if dial == nil {
		d := &net.Dialer{Timeout: 10 * time.Second, Control: dialControl}
		dial = d.DialContext
	}
	return &outbound{resolver: resolver, dial: dial, allowedHosts: cfg.AllowedHosts, loopbackIssuer: clientspec.IsLoopbackHost(issuer.Hostname())}
}

// dialControl checks once more, on the socket, what the guard checked
// before: the production dialer is only handed forbidden addresses if the
// guard is broken.
func dialControl(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || classifyAddr(ip) == addrForbidden {
		return errForbiddenAddress
	}
	return nil
}

// matchHost says whether host is in a list of host names and
// "*.example.org" patterns (any name below example.org, not example.org
// itself); "*" matches every host. Case does not matter.
func matchHost(list []string, host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" {
		return false
	}
	for _, h := range list {
		h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
		switch {
		case h == "*":
			return true
		case strings.HasPrefix(h, "*."):
			if strings.HasSuffix(host, h[1:]) && len(host) > len(h)-1 {
				return true
			}
		case strings.Trim(h, "[]") == host:
			return true
		}
	}
	return false
}

// allowedHostPolicy is what a registered client may reach at host when an
// entry of outbound.allowed_hosts matches it: private addresses, and
// loopback only if a matching entry itself names loopback (localhost or a
// loopback IP literal). A pattern ("*.corp.example", "*") never opens
// loopback: whoever controls the DNS of one name below it could point
// that name at this machine.
func allowedHostPolicy(list []string, host string) (outboundPolicy, bool) {
	var policy outboundPolicy
	matched := false
	for _, h := range list {
		if !matchHost([]string{h}, host) {
			continue
		}
		matched = true
		policy.private = true
		entry := strings.Trim(strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), "."), "[]")
		if !strings.Contains(entry, "*") && clientspec.IsLoopbackHost(entry) {
			policy.loopback = true
		}
	}
	return policy, matched
}

// policyFor is what a request to target on behalf of client c may reach.
func (o *outbound) policyFor(c storage.Client, target *url.URL) outboundPolicy {
	if c.Source != "registration" {
		return operatorPolicy
	}
	if policy, ok := allowedHostPolicy(o.allowedHosts, target.Hostname()); ok {
		return policy
	}
	if o.loopbackIssuer && clientspec.IsLoopbackHost(target.Hostname()) && allLoopbackRedirects(c.RedirectURIs) {
		return outboundPolicy{loopback: true}
	}
	return outboundPolicy{}
}

// policyForURL is policyFor with a URL still to parse; one that does not
// parse gets the strictest policy (the request will fail anyway).
func (o *outbound) policyForURL(c storage.Client, raw string) outboundPolicy {
	u, err := url.Parse(raw)
	if err != nil {
		return outboundPolicy{}
	}
	return o.policyFor(c, u)
}

// allLoopbackRedirects says whether a client is a local development one:
// it has redirect URIs and every one is http(s) on a loopback host.
func allLoopbackRedirects(uris []string) bool {
	if len(uris) == 0 {
		return false
	}
	for _, raw := range uris {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !clientspec.IsLoopbackHost(u.Hostname()) {
			return false
		}
	}
	return true
}

// checkRegisteredURL is the registration-time part of the guard: a URL a
// registered client wants us to call that names a forbidden address
// literally (or localhost) is refused at once. Names are resolved only
// when the request is made.
func (o *outbound) checkRegisteredURL(raw string, redirectURIs []string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	host := u.Hostname()
	policy := o.policyFor(storage.Client{Source: "registration", ClientSettings: storage.ClientSettings{RedirectURIs: redirectURIs}}, u)
	if host == "localhost" {
		if !policy.loopback {
			return errForbiddenAddress
		}
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && !policy.allows(classifyAddr(ip)) {
		return errForbiddenAddress
	}
	return nil
}

// client is an HTTP client for requests under policy.
func (o *outbound) client(policy outboundPolicy, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:            o.dialContext(policy),
			TLSHandshakeTimeout:    timeout,
			ResponseHeaderTimeout:  timeout,
			MaxResponseHeaderBytes: 16 << 10,
			DisableKeepAlives:      true,
			ForceAttemptHTTP2:      true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// clientFor is the HTTP client for a request to target on behalf of c.
func (o *outbound) clientFor(c storage.Client, target *url.URL, timeout time.Duration) *http.Client {
	return o.client(o.policyFor(c, target), timeout)
}

// dialContext resolves, checks every address, and dials the first allowed
// one by its IP literal.
func (o *outbound) dialContext(policy outboundPolicy) DialFunc {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			return nil, err
		}
		var ips []netip.Addr
		if ip, err := netip.ParseAddr(host); err == nil {
			ips = []netip.Addr{ip}
		} else {
			lookup := "ip"
			switch network {
			case "tcp4":
				lookup = "ip4"
			case "tcp6":
				lookup = "ip6"
			}
			if ips, err = o.resolver.LookupNetIP(ctx, lookup, host); err != nil {
				return nil, err
			}
		}
		var lastErr error = errForbiddenAddress
		for _, ip := range ips {
			if !policy.allows(classifyAddr(ip)) {
				continue
			}
			conn, err := o.dial(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
			if err == nil {
				return conn, nil
			}
			lastErr = err
		}
		if errors.Is(lastErr, errForbiddenAddress) {
			return nil, fmt.Errorf("%w: %s resolves to no address this request may reach", errForbiddenAddress, host)
		}
		return nil, lastErr
	}
}
