package provider

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientIP is the address the request came from, for throttles and logs.
//
// It is the direct peer unless the peer is one of Config.TrustedProxies:
// then X-Forwarded-For or Forwarded (RFC 7239 for=) is read from the
// right, skipping trusted proxies, and the first address that is not one
// is the client. Without trusted proxies (the default) the headers are
// ignored: anyone can send them, and a throttle keyed on them is no
// throttle.
//
// A trusted proxy writes one of the two headers; when a request carries
// both, the other came from the client and neither is believed. An entry
// that is not an address (garbage, "unknown", an obfuscated identifier)
// ends the walk at the last trusted proxy, whose address is then the
// client's: a wrong guess that errs towards a shared budget, never towards
// an address the client chose.
func (p *Provider) clientIP(r *http.Request) string {
	peer := peerIP(r)
	if len(p.trustedProxies()) == 0 {
		return peer
	}
	addr, err := netip.ParseAddr(peer)
	if err != nil || !p.trustedProxy(addr) {
		return peer
	}
	xff, fwd := r.Header.Values("X-Forwarded-For"), r.Header.Values("Forwarded")
	var hops []string
	switch {
	case len(xff) > 0 && len(fwd) > 0:
		return peer
	case len(xff) > 0:
		for _, v := range xff {
			hops = append(hops, strings.Split(v, ",")...)
		}
	case len(fwd) > 0:
		for _, v := range fwd {
			hops = append(hops, forwardedFor(v)...)
		}
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := parseHop(hops[i])
		if !ok {
			break
		}
		addr = hop
		if !p.trustedProxy(hop) {
			break
		}
	}
	return addr.String()
}

func (p *Provider) trustedProxy(a netip.Addr) bool {
	for _, pfx := range p.trustedProxies() {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// peerIP is the address of the direct peer, without port.
func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().String()
	}
	return host
}

// parseHop reads one hop of X-Forwarded-For or a Forwarded for= value:
// an IP address, perhaps with a port, IPv6 perhaps in brackets.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		ap, err2 := netip.ParseAddrPort(s)
		if err2 != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	if a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// forwardedFor is the for= value of each element of a Forwarded header
// (RFC 7239 §4), in order; an element without one gives "", which is no
// address.
func forwardedFor(v string) []string {
	var out []string
	for _, elem := range splitQuoted(v, ',') {
		var forValue string
		for _, pair := range splitQuoted(elem, ';') {
			name, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if ok && strings.EqualFold(strings.TrimSpace(name), "for") {
				forValue = unquote(strings.TrimSpace(value))
			}
		}
		out = append(out, forValue)
	}
	return out
}

// splitQuoted splits s at sep outside quoted strings.
func splitQuoted(s string, sep byte) []string {
	var parts []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// unquote undoes an RFC 7230 quoted-string; anything else is as it is.
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		if s[i] == '\\' && i+1 < len(s)-1 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
