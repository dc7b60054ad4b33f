package sender

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url     string
		allowed string
		// wantErr is a substring of the expected error, or "" for a valid URL.
		wantErr string
		// wantBlocked is the expected BlockedError reason, if any.
		wantBlocked string
	}{
		{url: "https://example.com/hook"},
		{url: "http://example.com:8080/hook?token=abc#frag"},
		{url: "HTTPS://Example.COM/"},
		{url: "https://93.184.215.14/hook"},
		{url: "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/"},
		{url: "http://localhost/"}, // host names are checked at connect time
		{url: "http://10.1.2.3/", allowed: "10.0.0.0/8"},
		{url: "http://[::ffff:10.1.2.3]/", allowed: "10.0.0.0/8"},
		{url: "http://10.1.2.3/", allowed: "::ffff:10.0.0.0/104"},

		{url: "", wantErr: "missing url"},
		{url: "ftp://example.com/", wantErr: `scheme "ftp" is not supported`},
		{url: "file:///etc/passwd", wantErr: `scheme "file" is not supported`},
		{url: "gopher://127.0.0.1:6379/", wantErr: "scheme"},
		{url: "example.com/hook", wantErr: `scheme "" is not supported`},
		{url: "//example.com/hook", wantErr: "scheme"},
		{url: "http://", wantErr: "missing host"},
		{url: "http:///path", wantErr: "missing host"},
		{url: "http:example.com", wantErr: "missing host"},
		{url: "http://:8080/", wantErr: "missing host"},
		{url: "http://example.com:0/", wantErr: "port"},
		{url: "http://example.com:65536/", wantErr: "port"},
		{url: "http://example.com:99999999999999999999/", wantErr: "port"},
		{url: "http://user:pass@example.com/", wantErr: "user info is not allowed"},
		{url: "http://exa mple.com/", wantErr: "invalid url"},
		{url: "http://[::1/", wantErr: "invalid url"},
		{url: "http://127.1/", wantErr: "not a valid ip address"},
		{url: "http://2130706433/", wantErr: "not a valid ip address"},
		{url: "http://0x7f.0.0.1/", wantErr: "not a valid ip address"},
		{url: "http://0177.0.0.1/", wantErr: "not a valid ip address"},
		{url: "http://example.0x10/", wantErr: "not a valid ip address"},

		{url: "http://127.0.0.1/", wantBlocked: "loopback"},
		{url: "http://127.255.255.254:8080/", wantBlocked: "loopback"},
		{url: "http://[::1]/", wantBlocked: "loopback"},
		{url: "http://[::ffff:127.0.0.1]/", wantBlocked: "loopback"},
		{url: "http://[::ffff:7f00:1]/", wantBlocked: "loopback"},
		{url: "http://169.254.169.254/latest/meta-data/", wantBlocked: "link-local"},
		{url: "http://[::ffff:169.254.169.254]/", wantBlocked: "link-local"},
		{url: "http://[fe80::1%25eth0]/", wantBlocked: "link-local"},
		{url: "http://0.0.0.0/", wantBlocked: "unspecified"},
		{url: "http://[::]/", wantBlocked: "unspecified"},
		{url: "http://100.64.0.1/", wantBlocked: "shared address space"},
		{url: "http://10.0.0.1/", wantBlocked: "private"},
		{url: "http://172.16.0.1/", wantBlocked: "private"},
		{url: "http://172.31.255.255/", wantBlocked: "private"},
		{url: "http://192.168.1.1/", wantBlocked: "private"},
		{url: "http://[fd00::1]/", wantBlocked: "private"},
		{url: "http://224.0.0.1/", wantBlocked: "multicast"},
		{url: "http://[ff02::1]/", wantBlocked: "multicast"},
		{url: "http://255.255.255.255/", wantBlocked: "broadcast"},
		{url: "http://240.0.0.1/", wantBlocked: "reserved"},
		{url: "http://192.0.0.170/", wantBlocked: "ietf protocol assignments"},
		{url: "http://198.18.0.1/", wantBlocked: "benchmarking"},
		{url: "http://[64:ff9b::7f00:1]/", wantBlocked: "nat64"},
		{url: "http://[2002:7f00:1::]/", wantBlocked: "6to4"},
		{url: "http://10.1.2.3/", allowed: "192.168.0.0/16", wantBlocked: "private"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			allowed, err := ParseNetworks(tt.allowed)
			require.NoError(t, err)

			err = CheckURL(tt.url, allowed)

			switch {
			case tt.wantBlocked != "":
				var blocked *BlockedError
				require.ErrorAs(t, err, &blocked)
				require.Equal(t, tt.wantBlocked, blocked.Reason)
				require.ErrorContains(t, err, AllowedNetworksVariable)
			case tt.wantErr != "":
				require.ErrorContains(t, err, tt.wantErr)
				var blocked *BlockedError
				require.NotErrorAs(t, err, &blocked)
			default:
				require.NoError(t, err)
			}
		})
	}
}

func TestCheckURLErrorOmitsURL(t *testing.T) {
	t.Parallel()
	err := CheckURL("http://exa mple.com/?token=s3cret", nil)

	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cret")
}

func TestBlockedErrorMessage(t *testing.T) {
	t.Parallel()
	err := CheckURL("http://127.0.0.1:8080/", nil)

	require.EqualError(t, err, "destination address 127.0.0.1 is not allowed (loopback); "+
		"allow it with DATAPUSHER_ALLOWED_DESTINATION_NETWORKS")
}

func TestParseNetworks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		input string
		want  []string
	}{
		{"", nil},
		{"  ,, ", nil},
		{"10.0.0.0/8", []string{"10.0.0.0/8"}},
		{"10.0.0.0/8,192.168.0.0/16", []string{"10.0.0.0/8", "192.168.0.0/16"}},
		{"10.0.0.0/8 192.168.0.0/16\tfd00::/8", []string{"10.0.0.0/8", "192.168.0.0/16", "fd00::/8"}},
		{"10.0.0.0/8, 127.0.0.1", []string{"10.0.0.0/8", "127.0.0.1/32"}},
		{"::1", []string{"::1/128"}},
		{"10.1.2.3/8", []string{"10.0.0.0/8"}},
		{"::ffff:10.0.0.0/104", []string{"10.0.0.0/8"}},
		{"::ffff:127.0.0.1", []string{"127.0.0.1/32"}},
	}
	for _, tt := range tests {
		got, err := ParseNetworks(tt.input)
		require.NoError(t, err, "input %q", tt.input)
		var gotStrings []string
		for _, prefix := range got {
			gotStrings = append(gotStrings, prefix.String())
		}
		require.Equal(t, tt.want, gotStrings, "input %q", tt.input)
	}
}

func TestParseNetworksInvalid(t *testing.T) {
	t.Parallel()
	for _, input := range []string{"10.0.0.0/33", "not-a-network", "10.0.0.0/8,bogus", "fe80::1%eth0", "10.0.0/8"} {
		_, err := ParseNetworks(input)
		require.ErrorContains(t, err, "invalid network", "input %q", input)
	}
}

func TestAddressGuardControl(t *testing.T) {
	t.Parallel()
	guard := newAddressGuard([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	tests := []struct {
		network string
		address string
		blocked bool
	}{
		{"tcp4", "93.184.215.14:443", false},
		{"tcp4", "10.9.8.7:80", false},
		{"tcp4", "127.0.0.1:80", true},
		{"tcp6", "[::1]:80", true},
		{"tcp6", "[::ffff:127.0.0.1]:80", true},
		{"tcp6", "[::ffff:10.0.0.1]:80", false},
		{"tcp6", "[fe80::1%eth0]:80", true},
		{"tcp4", "169.254.169.254:80", true},
		{"tcp6", "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:443", false},
	}
	for _, tt := range tests {
		err := guard.control(tt.network, tt.address, nil)
		if tt.blocked {
			var blocked *BlockedError
			require.ErrorAs(t, err, &blocked, "address %s", tt.address)
		} else {
			require.NoError(t, err, "address %s", tt.address)
		}
	}

	require.ErrorContains(t, guard.control("udp4", "93.184.215.14:53", nil), "only tcp")
}
