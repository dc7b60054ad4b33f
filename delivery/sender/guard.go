package sender

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// AllowedNetworksVariable is the environment variable that the blocked
// address message names as the way to open a network. The sender does not
// read it. The caller parses it with ParseNetworks into
// Options.AllowedNetworks.
const AllowedNetworksVariable = "DATAPUSHER_ALLOWED_DESTINATION_NETWORKS"

// BlockedError reports a destination address in a network that is blocked
// to prevent server-side request forgery (SSRF).
type BlockedError struct {
	Addr   netip.Addr // address as written in the URL or as resolved
	Reason string     // name of the blocked network, such as "loopback"
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("destination address %s is not allowed (%s); allow it with %s",
		e.Addr, e.Reason, AllowedNetworksVariable)
}

// blockedNetwork is a special-purpose network that webhooks must not reach
// unless an allowed network opens it.
type blockedNetwork struct {
	prefix netip.Prefix
	reason string
}

// blockedNetworks lists special-purpose ranges from the IANA IPv4 and IPv6
// Special-Purpose Address Registries (RFC 6890) that are not globally
// reachable, plus multicast and the IPv6 ranges that embed an IPv4 address
// (NAT64, 6to4, Teredo, IPv4-compatible).
// The first match names the reason, so narrower ranges come first.
// IPv4-mapped IPv6 addresses are unmapped before the lookup.
var blockedNetworks = []blockedNetwork{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "ietf protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},

	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "ipv4-compatible"},
	{netip.MustParsePrefix("64:ff9b::/96"), "nat64"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "nat64"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001::/32"), "teredo"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("2002::/16"), "6to4"},
	{netip.MustParsePrefix("fc00::/7"), "private"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// addressGuard decides whether the sender may connect to an address.
type addressGuard struct {
	allowed []netip.Prefix
}

func newAddressGuard(allowed []netip.Prefix) *addressGuard {
	normalized := make([]netip.Prefix, 0, len(allowed))
	for _, prefix := range allowed {
		if prefix.IsValid() {
			normalized = append(normalized, normalizePrefix(prefix))
		}
	}
	return &addressGuard{allowed: normalized}
}

// check returns a *BlockedError if addr is in a blocked network that no
// allowed network contains.
func (g *addressGuard) check(addr netip.Addr) error {
	plain := addr.WithZone("").Unmap()
	for _, prefix := range g.allowed {
		if prefix.Contains(plain) {
			return nil
		}
	}
	for _, network := range blockedNetworks {
		if network.prefix.Contains(plain) {
			return &BlockedError{Addr: addr, Reason: network.reason}
		}
	}
	return nil
}

// control is a net.Dialer Control function. It runs after DNS resolution and
// before connect, once for every address that the dialer tries.
func (g *addressGuard) control(network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" && network != "tcp" {
		return fmt.Errorf("network %q is not allowed: only tcp is supported", network)
	}
	addrPort, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("invalid dial address %q: %w", address, err)
	}
	return g.check(addrPort.Addr())
}

// normalizePrefix turns an IPv4-mapped IPv6 prefix such as ::ffff:10.0.0.0/104
// into its IPv4 form, because addresses are unmapped before they are matched.
func normalizePrefix(prefix netip.Prefix) netip.Prefix {
	addr := prefix.Addr()
	if addr.Is4In6() && prefix.Bits() >= 96 {
		return netip.PrefixFrom(addr.Unmap(), prefix.Bits()-96).Masked()
	}
	return prefix.Masked()
}

// ParseNetworks parses a comma- or space-separated list of CIDR prefixes.
// A bare IP address becomes a /32 or /128 prefix. An empty list yields nil.
func ParseNetworks(s string) ([]netip.Prefix, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	var prefixes []netip.Prefix
	for _, field := range fields {
		prefix, err := parseNetwork(field)
		if err != nil {
			return nil, err
		}
		prefixes = append(prefixes, prefix)
	}
	return prefixes, nil
}

func parseNetwork(field string) (netip.Prefix, error) {
	if strings.Contains(field, "/") {
		prefix, err := netip.ParsePrefix(field)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid network %q: %w", field, err)
		}
		return normalizePrefix(prefix), nil
	}
	addr, err := netip.ParseAddr(field)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid network %q: expected a CIDR prefix or an IP address: %w", field, err)
	}
	if addr.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("invalid network %q: zones are not allowed", field)
	}
	return normalizePrefix(netip.PrefixFrom(addr, addr.BitLen())), nil
}

// CheckURL validates a destination URL when a destination is created or
// updated. It rejects:
//   - a scheme other than http or https,
//   - a missing host or an invalid port,
//   - user info, because credentials belong in an Authorization header and
//     not in a URL that results and logs show,
//   - a numeric host that is not a valid IP address, such as 127.1,
//   - a literal IP address in a blocked network, with a *BlockedError.
//
// Host names pass, because the sender checks the addresses they resolve to
// when it connects.
func CheckURL(raw string, allowed []netip.Prefix) error {
	_, err := parseURL(raw, newAddressGuard(allowed))
	return err
}

// parseURL parses and validates a destination URL as CheckURL describes.
func parseURL(raw string, guard *addressGuard) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("missing url")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, which may contain a token in
		// its query, so only the cause is kept.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return nil, fmt.Errorf("invalid url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("invalid url: scheme %q is not supported, use http or https", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("invalid url: missing host")
	}
	if u.User != nil {
		return nil, errors.New("invalid url: user info is not allowed, set an Authorization header instead")
	}
	if err := checkPort(u.Port()); err != nil {
		return nil, err
	}

	host := u.Hostname()
	addr, err := netip.ParseAddr(host)
	if err != nil {
		if endsInNumber(host) {
			return nil, fmt.Errorf("invalid url: host %q is not a valid ip address or host name", host)
		}
		return u, nil
	}
	if err := guard.check(addr); err != nil {
		return nil, err
	}
	return u, nil
}

func checkPort(port string) error {
	if port == "" {
		return nil
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("invalid url: port %q is out of range 1-65535", port)
	}
	return nil
}

// endsInNumber reports whether the last label of host is a decimal or 0x
// hexadecimal number. Such hosts are legacy IPv4 forms (127.1, 2130706433,
// 0x7f.0.0.1, 0177.0.0.1) that netip rejects but some resolvers accept, and
// no top-level domain is numeric. This matches the "ends in a number" check
// of the WHATWG URL standard.
func endsInNumber(host string) bool {
	host = strings.TrimSuffix(host, ".")
	last := host[strings.LastIndexByte(host, '.')+1:]
	if last == "" {
		return false
	}
	if lower := strings.ToLower(last); strings.HasPrefix(lower, "0x") {
		return strings.Trim(lower[2:], "0123456789abcdef") == ""
	}
	return strings.Trim(last, "0123456789") == ""
}
