package sender

import (
	"net/netip"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

func FuzzCheckURL(f *testing.F) {
	for _, seed := range []string{
		"", "https://example.com/hook", "http://127.0.0.1/", "http://[::ffff:127.0.0.1]/",
		"http://[fe80::1%25eth0]:8080/", "http://user:pass@host/", "ftp://x/", "http://127.1/",
		"http://0x7f.0.0.1/", "http://example.com:0/", "http:opaque", "http://[::1", "//host/path",
	} {
		f.Add(seed)
	}
	allowed := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}

	f.Fuzz(func(t *testing.T, raw string) {
		if err := CheckURL(raw, allowed); err != nil {
			return
		}
		u, err := url.Parse(raw)
		require.NoError(t, err)
		require.Contains(t, []string{"http", "https"}, u.Scheme)
		require.NotEmpty(t, u.Hostname())
		require.Nil(t, u.User)
		if addr, err := netip.ParseAddr(u.Hostname()); err == nil {
			require.NoError(t, newAddressGuard(allowed).check(addr), "accepted address %s must not be blocked", addr)
		}
	})
}

func FuzzQueryFromBody(f *testing.F) {
	for _, seed := range []string{
		"", "{}", `{"a":1}`, `{"s":"x y","n":12345678901234567890,"o":{"k":[1,null]}}`,
		`[1]`, `{"a":}`, `{"\u0000":"\ud800"}`, "{\"k\":\"\xff\"}", `{"a":1}{"b":2}`,
	} {
		f.Add([]byte(seed))
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		params, err := queryFromBody(body)
		if err != nil {
			return
		}
		// The encoded query must decode back to the same parameters.
		parsed, err := url.ParseQuery(joinQuery("", params))
		require.NoError(t, err)
		require.Equal(t, params, parsed)
	})
}
