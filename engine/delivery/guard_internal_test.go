package delivery

import (
	"errors"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

func TestBlockedKind(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		// Public addresses a destination may reach.
		"8.8.8.8":              "",
		"1.1.1.1":              "",
		"100.63.255.255":       "", // just below CGNAT
		"100.128.0.0":          "", // just above it
		"172.32.0.1":           "", // just above 172.16/12
		"2606:4700::1111":      "",
		"2001:4860:4860::8888": "",
		"64:ff9b::808:808":     "", // NAT64 of 8.8.8.8
		"2002:808:808::1":      "", // 6to4 of 8.8.8.8
		// Refused ranges.
		"127.0.0.1":              "loopback",
		"127.255.255.254":        "loopback",
		"::1":                    "loopback",
		"10.0.0.1":               "private",
		"172.16.0.1":             "private",
		"172.31.255.255":         "private",
		"192.168.1.1":            "private",
		"fc00::1":                "private",
		"fd00:ec2::254":          "private", // AWS's IPv6 metadata address
		"169.254.169.254":        "link-local (the cloud metadata address)",
		"169.254.0.1":            "link-local",
		"fe80::1":                "link-local",
		"fe80::1%eth0":           "link-local",
		"0.0.0.0":                "unspecified",
		"::":                     "unspecified",
		"0.1.2.3":                "unspecified",
		"224.0.0.1":              "multicast",
		"239.255.255.250":        "multicast",
		"ff02::1":                "multicast",
		"ff01::1":                "multicast",
		"100.64.0.1":             "CGNAT (shared address space)",
		"100.100.100.200":        "CGNAT (shared address space)",
		"100.127.255.255":        "CGNAT (shared address space)",
		"192.0.0.170":            "reserved (IETF protocol assignments)",
		"198.18.0.1":             "reserved (benchmarking)",
		"240.0.0.1":              "reserved",
		"255.255.255.255":        "reserved",
		"fec0::1":                "site-local",
		"100::1":                 "reserved (discard-only)",
		"64:ff9b:1::1":           "local-use NAT64",
		"::7f00:1":               "IPv4-compatible IPv6",
		"::ffff:127.0.0.1":       "loopback", // IPv4-mapped forms are the IPv4 address
		"::ffff:10.0.0.1":        "private",
		"::ffff:169.254.169.254": "link-local (the cloud metadata address)",
		"::ffff:100.64.0.1":      "CGNAT (shared address space)",
		"::ffff:0.0.0.0":         "unspecified",
		"64:ff9b::a00:1":         "private (through NAT64)",
		"64:ff9b::7f00:1":        "loopback (through NAT64)",
		"64:ff9b::a9fe:a9fe":     "link-local (the cloud metadata address) (through NAT64)",
		"2002:c0a8:101::1":       "private (through 6to4)",
		"2002:7f00:1::":          "loopback (through 6to4)",
	} {
		ip, err := netip.ParseAddr(addr)
		if err != nil {
			t.Fatalf("ParseAddr(%q): %v", addr, err)
		}
		if got := blockedKind(ip); got != want {
			t.Errorf("blockedKind(%s) = %q, want %q", addr, got, want)
		}
	}
	if got := blockedKind(netip.Addr{}); got != "invalid" {
		t.Errorf("blockedKind(zero) = %q", got)
	}
}

func TestGuardControl(t *testing.T) {
	t.Parallel()
	for address, blocked := range map[string]bool{
		"93.184.215.14:443":           false,
		"[2606:4700::1111]:443":       false,
		"127.0.0.1:80":                true,
		"[::ffff:169.254.169.254]:80": true,
		"[fe80::1%eth0]:80":           true,
		"not-an-address":              true,
	} {
		err := guardControl("tcp", address, nil)
		var b *BlockedAddressError
		if got := errors.As(err, &b); got != blocked {
			t.Errorf("guardControl(%s) = %v, want blocked %v", address, err, blocked)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                     0,
		"0":                    0,
		"120":                  2 * time.Minute,
		" 5 ":                  5 * time.Second,
		"21600":                MaxRetryAfter,
		"21601":                MaxRetryAfter,
		"18446744073709551616": MaxRetryAfter, // over uint64
		"-5":                   0,
		"1.5":                  0,
		"soon":                 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):       0,
		"Friday, 02-Jan-26 03:05:05 GMT":                  time.Minute, // RFC 850, which HTTP dates may use
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}
