package sender

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// StatusError reports a response whose status is not 2xx.
type StatusError struct {
	StatusCode int
}

func (e *StatusError) Error() string {
	status := strconv.Itoa(e.StatusCode)
	if text := http.StatusText(e.StatusCode); text != "" {
		status += " " + strings.ToLower(text)
	}
	if e.StatusCode >= 300 && e.StatusCode <= 399 {
		return "redirect status " + status + " is not followed"
	}
	return "unexpected status " + status
}

// classifyError maps an error of http.Client.Do to an ErrorClass and a short
// error. ctx is the request's context, which distinguishes a timeout or a
// cancellation from other errors. The returned error drops the
// *url.Error layer because its message repeats the URL, whose query may
// carry tokens or event data.
func classifyError(ctx context.Context, err error) (ErrorClass, error) {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}

	var blocked *BlockedError
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &blocked):
		return ClassBlocked, blocked
	case errors.Is(ctx.Err(), context.Canceled):
		return ClassCanceled, fmt.Errorf("request canceled: %w", err)
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return ClassTimeout, fmt.Errorf("request timed out: %w", err)
	case errors.As(err, &dnsErr):
		return ClassDNS, fmt.Errorf("resolve host: %w", err)
	case isTLSError(err):
		return ClassTLS, fmt.Errorf("tls handshake: %w", err)
	case errors.As(err, &netErr) && netErr.Timeout():
		return ClassTimeout, fmt.Errorf("request timed out: %w", err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ClassConnect, fmt.Errorf("connection closed before the response was complete: %w", err)
	default:
		// Refused and reset connections, and responses that are not
		// valid HTTP, end up here.
		return ClassConnect, fmt.Errorf("connection failed: %w", err)
	}
}

// isTLSError reports whether err comes from a TLS handshake or certificate
// verification. Alerts sent by the server have an unexported type in
// crypto/tls, so errors in the chain are also matched by their "tls: " and
// "x509: " message prefixes.
func isTLSError(err error) bool {
	var (
		recordErr    tls.RecordHeaderError
		verifyErr    *tls.CertificateVerificationError
		alertErr     tls.AlertError
		echErr       *tls.ECHRejectionError
		authorityErr x509.UnknownAuthorityError
		hostnameErr  x509.HostnameError
		invalidErr   x509.CertificateInvalidError
	)
	if errors.As(err, &recordErr) || errors.As(err, &verifyErr) || errors.As(err, &alertErr) ||
		errors.As(err, &echErr) || errors.As(err, &authorityErr) || errors.As(err, &hostnameErr) ||
		errors.As(err, &invalidErr) {
		return true
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		message := e.Error()
		if strings.HasPrefix(message, "tls: ") || strings.HasPrefix(message, "x509: ") ||
			strings.Contains(message, "server gave HTTP response to HTTPS client") {
			return true
		}
	}
	return false
}

// parseRetryAfter returns the delay of a Retry-After header (RFC 9110,
// section 10.2.3), given as delta-seconds or as an HTTP-date. A date is
// measured from the response's Date header when it has one, so a clock skew
// between receiver and sender does not change the delay, and from now
// otherwise. A missing, invalid, past or overflowing value yields 0.
func parseRetryAfter(header http.Header, now time.Time) time.Duration {
	value := strings.TrimSpace(header.Get("Retry-After"))
	if value == "" {
		return 0
	}

	if isDigits(value) {
		seconds, err := strconv.ParseInt(value, 10, 64)
		if err != nil || seconds > math.MaxInt64/int64(time.Second) {
			return 0
		}
		return time.Duration(seconds) * time.Second
	}

	retryAt, err := http.ParseTime(value)
	if err != nil {
		return 0
	}
	base := now
	if date, err := http.ParseTime(header.Get("Date")); err == nil {
		base = date
	}
	if delay := retryAt.Sub(base); delay > 0 {
		return delay
	}
	return 0
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
