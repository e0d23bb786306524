package delivery

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// BlockedAddressError is a connection the SSRF guard refused: the
// destination resolved to an address hark must not reach without
// `--allow-private-destinations`.
type BlockedAddressError struct {
	// Addr is the address that was about to be dialled.
	Addr netip.Addr
	// Kind names its range ("loopback", "private", "link-local", ...).
	Kind string
}

func (e *BlockedAddressError) Error() string {
	return fmt.Sprintf("destination address %s is %s: private destinations are refused unless --allow-private-destinations is set", e.Addr, e.Kind)
}

// Prefixes the net/netip predicates do not cover. Each is refused because
// a request to it reaches something other than a public service.
var blockedPrefixes = []struct {
	prefix netip.Prefix
	kind   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},                             // "this network"; 0.0.0.0 dials the local host
	{netip.MustParsePrefix("100.64.0.0/10"), "CGNAT (shared address space)"},        // RFC 6598: carrier and cloud internals (Alibaba's metadata is 100.100.100.200)
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved (IETF protocol assignments)"}, // RFC 6890
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved (benchmarking)"},             // RFC 2544: lab networks
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},                              // class E and 255.255.255.255 (broadcast)
	{netip.MustParsePrefix("::/96"), "IPv4-compatible IPv6"},                        // deprecated; some stacks route it to the embedded IPv4
	{netip.MustParsePrefix("100::/64"), "reserved (discard-only)"},                  // RFC 6666
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},                    // RFC 8215: a site's own translator
	{netip.MustParsePrefix("fec0::/10"), "site-local"},                              // deprecated private range
}

// Translation prefixes whose addresses embed an IPv4 address that the
// translator dials: they are judged by that embedded address.
var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052: last 32 bits
	sixToFour   = netip.MustParsePrefix("2002::/16")    // RFC 3056: bits 16-47
)

// blockedKind says which refused range ip is in, or "" when it is a public
// address a destination may reach.
func blockedKind(ip netip.Addr) string {
	ip = ip.WithZone("").Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	switch {
	case !ip.IsValid():
		return "invalid"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsLoopback():
		return "loopback"
	case ip == netip.AddrFrom4([4]byte{169, 254, 169, 254}):
		return "link-local (the cloud metadata address)"
	case ip.IsLinkLocalUnicast():
		return "link-local"
	case ip.IsPrivate():
		return "private"
	case ip.IsMulticast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast():
		return "multicast"
	}
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64Prefix.Contains(ip):
			if kind := blockedKind(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})); kind != "" {
				return kind + " (through NAT64)"
			}
		case sixToFour.Contains(ip):
			if kind := blockedKind(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})); kind != "" {
				return kind + " (through 6to4)"
			}
		}
	}
	for _, p := range blockedPrefixes {
		if p.prefix.Contains(ip) {
			return p.kind
		}
	}
	return ""
}

// guardControl is the net.Dialer Control of a Client without AllowPrivate.
// It runs after name resolution, on the very address being dialled, so DNS
// cannot answer one address when the URL is saved and another when the
// delivery is sent.
func guardControl(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Dialers pass "ip:port" after resolution; anything else is not a
		// TCP destination we know how to judge, so it is refused.
		return &BlockedAddressError{Kind: fmt.Sprintf("not an IP address (%q on %s)", address, network)}
	}
	if kind := blockedKind(ap.Addr()); kind != "" {
		return &BlockedAddressError{Addr: ap.Addr(), Kind: kind}
	}
	return nil
}

// maxURLLen bounds a destination URL: long enough for any real endpoint
// with a token in its query, short enough to log and show.
const maxURLLen = 2048

// URLError is a destination URL refused when it is saved. Reason is written
// to stand as a field violation's description ("must be an http or https
// URL").
type URLError struct {
	Reason string
}

func (e *URLError) Error() string { return "destination url " + e.Reason }

// ValidateURL checks a destination URL when it is saved: http or https, a
// host, no user:password credentials (secrets belong in settings, which are
// masked; a URL is shown as it is), a valid port, and — unless allowPrivate
// — no literal private, loopback or link-local IP and no `localhost` name.
// Names are not resolved here: the connection-time guard judges what they
// resolve to, every time.
func ValidateURL(raw string, allowPrivate bool) error {
	if len(raw) > maxURLLen {
		return &URLError{Reason: fmt.Sprintf("must be at most %d characters", maxURLLen)}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return &URLError{Reason: "is not a URL"}
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	default:
		return &URLError{Reason: "must be an http or https URL"}
	}
	if u.Opaque != "" {
		return &URLError{Reason: "must be an http or https URL (scheme://host/path)"}
	}
	if u.User != nil {
		return &URLError{Reason: "must not carry credentials (user:password@); put secrets in the destination's settings"}
	}
	host := u.Hostname()
	if host == "" {
		return &URLError{Reason: "must have a host"}
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return &URLError{Reason: "has an invalid port"}
		}
	}
	if allowPrivate {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if kind := blockedKind(ip); kind != "" {
			return &URLError{Reason: fmt.Sprintf("points at a %s address (%s); private destinations need --allow-private-destinations", kind, ip)}
		}
	}
	// RFC 6761: localhost and its subdomains are loopback by definition.
	if name := strings.TrimSuffix(strings.ToLower(host), "."); name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return &URLError{Reason: "points at localhost; private destinations need --allow-private-destinations"}
	}
	return nil
}
