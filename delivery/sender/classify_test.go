package sender

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestClassifyError(t *testing.T) {
	t.Parallel()
	dial := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: err}
	}
	tests := []struct {
		name string
		err  error
		want ErrorClass
	}{
		{"dns not found", &net.DNSError{Err: "no such host", Name: "nowhere.invalid", IsNotFound: true}, ClassDNS},
		{"dns server timeout", &net.DNSError{Err: "i/o timeout", Name: "slow.example", IsTimeout: true}, ClassDNS},
		{"unknown authority", x509.UnknownAuthorityError{}, ClassTLS},
		{"hostname mismatch", x509.HostnameError{Host: "example.com", Certificate: &x509.Certificate{}}, ClassTLS},
		{"tls alert by message", &net.OpError{Op: "remote error", Err: errors.New("tls: handshake failure")}, ClassTLS},
		{"deadline exceeded", context.DeadlineExceeded, ClassTimeout},
		{"os deadline", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, ClassTimeout},
		{"connection refused", dial(os.NewSyscallError("connect", syscall.ECONNREFUSED)), ClassConnect},
		{"connection reset", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, ClassConnect},
		{"eof", io.EOF, ClassConnect},
		{"unexpected eof", io.ErrUnexpectedEOF, ClassConnect},
		{"blocked", dial(&BlockedError{Addr: netip.MustParseAddr("10.0.0.1"), Reason: "private"}), ClassBlocked},
		{"other", errors.New("malformed HTTP response"), ClassConnect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wrapped := &url.Error{Op: "Post", URL: "http://example.com/?token=s3cret", Err: tt.err}

			class, err := classifyError(context.Background(), wrapped)

			require.Equal(t, tt.want, class)
			require.Error(t, err)
			require.NotContains(t, err.Error(), "s3cret")
		})
	}
}

func TestClassifyErrorUsesContext(t *testing.T) {
	t.Parallel()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancelExpired := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancelExpired()
	// A DNS lookup cut short by the request deadline is a timeout.
	lookupErr := &net.DNSError{Err: "operation was canceled", Name: "example.com"}

	class, _ := classifyError(canceled, lookupErr)
	require.Equal(t, ClassCanceled, class)

	class, _ = classifyError(expired, lookupErr)
	require.Equal(t, ClassTimeout, class)
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, time.March, 4, 5, 6, 7, 0, time.UTC)
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"absent", http.Header{}, 0},
		{"seconds", http.Header{"Retry-After": {"120"}}, 120 * time.Second},
		{"zero seconds", http.Header{"Retry-After": {"0"}}, 0},
		{"padded seconds", http.Header{"Retry-After": {" 30 "}}, 30 * time.Second},
		{"negative", http.Header{"Retry-After": {"-5"}}, 0},
		{"plus sign", http.Header{"Retry-After": {"+5"}}, 0},
		{"fraction", http.Header{"Retry-After": {"1.5"}}, 0},
		{"overflow", http.Header{"Retry-After": {"99999999999999999999"}}, 0},
		{"too large for duration", http.Header{"Retry-After": {"9300000000"}}, 0},
		{"text", http.Header{"Retry-After": {"soon"}}, 0},
		{"date from now", http.Header{"Retry-After": {"Mon, 04 Mar 2030 05:08:07 GMT"}}, 2 * time.Minute},
		{"date from date header", http.Header{
			"Retry-After": {"Mon, 04 Mar 2030 05:08:07 GMT"},
			"Date":        {"Mon, 04 Mar 2030 05:07:07 GMT"},
		}, time.Minute},
		{"rfc 850 date", http.Header{"Retry-After": {"Monday, 04-Mar-30 05:06:17 GMT"}}, 10 * time.Second},
		{"asctime date", http.Header{"Retry-After": {"Mon Mar  4 05:06:37 2030"}}, 30 * time.Second},
		{"past date", http.Header{"Retry-After": {"Mon, 04 Mar 2030 05:00:00 GMT"}}, 0},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, parseRetryAfter(tt.header, now), tt.name)
	}
}

func TestStatusErrorMessage(t *testing.T) {
	t.Parallel()
	require.EqualError(t, &StatusError{StatusCode: 503}, "unexpected status 503 service unavailable")
	require.EqualError(t, &StatusError{StatusCode: 302}, "redirect status 302 found is not followed")
	require.EqualError(t, &StatusError{StatusCode: 599}, "unexpected status 599")
}
