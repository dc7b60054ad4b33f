// Package sender makes one outbound webhook HTTP request. It builds the
// request from a stored event and destination and signs it with Standard
// Webhooks headers. It rejects connections to internal networks (SSRF
// protection) and classifies the outcome, so the caller can decide whether
// to retry.
package sender

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Defaults for the zero values of Options.
const (
	DefaultTimeout             = 10 * time.Second
	DefaultUserAgent           = "DataPusher/1"
	DefaultMaxIdleConnsPerHost = 100
	DefaultMaxIdleConns        = 1000
	DefaultIdleConnTimeout     = 90 * time.Second
	DefaultTLSHandshakeTimeout = 10 * time.Second
)

// MaxResponseBodyBytes is the maximum number of response body bytes that a
// Result keeps.
const MaxResponseBodyBytes = 4 << 10

// maxDiscardBytes is the maximum number of response body bytes read and
// dropped after the first MaxResponseBodyBytes. A body that ends within this
// limit leaves the connection reusable, and a longer body closes it.
const maxDiscardBytes = 64 << 10

// maxResponseHeaderBytes limits the response header size that the transport
// accepts. It is lower than the net/http default of 1 MiB because receivers
// have no reason to send large headers to a webhook sender.
const maxResponseHeaderBytes = 64 << 10

// Header names that the sender sets and destination headers cannot override.
const (
	HeaderEventID          = "CL-X-EVENT-ID"
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// ErrorClass is the category of a failed delivery attempt.
type ErrorClass string

// Error classes of a Result. A successful (2xx) Result has the empty class.
const (
	ClassDNS        ErrorClass = "dns"         // host name lookup failed
	ClassConnect    ErrorClass = "connect"     // connection refused, reset or closed early
	ClassTLS        ErrorClass = "tls"         // TLS handshake or certificate error
	ClassTimeout    ErrorClass = "timeout"     // request did not finish within Options.Timeout
	ClassHTTPStatus ErrorClass = "http_status" // response status other than 2xx and 3xx
	ClassRedirect   ErrorClass = "redirect"    // 3xx response, which is never followed
	ClassBlocked    ErrorClass = "blocked"     // destination address is in a blocked network
	ClassInvalid    ErrorClass = "invalid"     // request cannot be built from its input
	ClassCanceled   ErrorClass = "canceled"    // caller's context was canceled, for example at shutdown
)

// Request is one delivery attempt.
type Request struct {
	URL       string            // destination URL (http or https)
	Method    string            // GET, POST, PUT, PATCH or DELETE (upper case)
	Headers   map[string]string // destination's stored headers
	Body      []byte            // event's JSON object, exact bytes as received
	EventID   string            // sent as header CL-X-EVENT-ID unless empty
	WebhookID string            // Standard Webhooks "webhook-id", stable across retries, EventID when empty
	Timestamp time.Time         // Standard Webhooks "webhook-timestamp", the current time when zero
	Secrets   []string          // signing secrets "whsec_<base64 key>", one signature each
}

// Result is the outcome of one delivery attempt.
type Result struct {
	RequestURL string        // final URL including the query
	StatusCode int           // 0 when no response arrived
	Body       []byte        // first MaxResponseBodyBytes of the response body at most
	Duration   time.Duration // time from the start of Send until the response body was read
	RetryAfter time.Duration // parsed Retry-After header of any response, 0 if absent or invalid
	Class      ErrorClass    // empty on success (2xx)
	Err        error         // nil on success, otherwise the cause, free of header values and secrets
}

// Success reports whether the destination responded with a 2xx status.
func (r Result) Success() bool {
	return r.StatusCode >= 200 && r.StatusCode <= 299
}

// Retryable reports whether a later attempt may succeed. Network errors
// (DNS, connect, TLS), timeouts, cancellation, and statuses 408, 429 and 5xx
// are retryable. Other 4xx statuses, redirects, blocked destinations and
// invalid requests are not, and neither is a success.
func (r Result) Retryable() bool {
	switch r.Class {
	case ClassDNS, ClassConnect, ClassTLS, ClassTimeout, ClassCanceled:
		return true
	case ClassHTTPStatus:
		return r.StatusCode == http.StatusRequestTimeout ||
			r.StatusCode == http.StatusTooManyRequests ||
			r.StatusCode >= 500
	default:
		return false
	}
}

// Options configures a Sender. Zero values select the defaults.
type Options struct {
	// Timeout limits one request from connecting until up to
	// MaxResponseBodyBytes of the response body are read.
	Timeout time.Duration

	// AllowedNetworks opens networks that are blocked by default, for
	// example 10.0.0.0/8 for receivers inside a private network.
	AllowedNetworks []netip.Prefix

	UserAgent           string        // default DefaultUserAgent, replaced by a destination's User-Agent header
	MaxIdleConns        int           // idle connections over all hosts, default DefaultMaxIdleConns
	MaxIdleConnsPerHost int           // default DefaultMaxIdleConnsPerHost
	IdleConnTimeout     time.Duration // default DefaultIdleConnTimeout
	TLSHandshakeTimeout time.Duration // default DefaultTLSHandshakeTimeout

	// TLSConfig, if not nil, is cloned into the transport, for example to
	// trust a private certificate authority.
	TLSConfig *tls.Config
}

// Sender sends webhook requests over one shared HTTP transport. It is safe
// for concurrent use.
type Sender struct {
	client    *http.Client
	transport *http.Transport
	guard     *addressGuard
	timeout   time.Duration
	userAgent string
}

// New returns a Sender for opts, with defaults for the zero fields.
func New(opts Options) *Sender {
	opts = withDefaults(opts)
	guard := newAddressGuard(opts.AllowedNetworks)

	dialer := &net.Dialer{
		KeepAlive: 30 * time.Second,
		// Control runs for every resolved address right before connect, so
		// a host name that resolves to a blocked address is rejected even
		// when its DNS answer changed after CheckURL.
		Control: guard.control,
	}
	transport := &http.Transport{
		// Proxy stays nil on purpose, because with a proxy the connect-time
		// address check would see the proxy address instead of the
		// destination.
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           opts.MaxIdleConns,
		MaxIdleConnsPerHost:    opts.MaxIdleConnsPerHost,
		IdleConnTimeout:        opts.IdleConnTimeout,
		TLSHandshakeTimeout:    opts.TLSHandshakeTimeout,
		ExpectContinueTimeout:  1 * time.Second,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		// Without Accept-Encoding from us, receivers send an uncompressed
		// body, so Result.Body is readable text.
		DisableCompression: true,
	}
	if opts.TLSConfig != nil {
		transport.TLSClientConfig = opts.TLSConfig.Clone()
	}

	client := &http.Client{
		Transport: transport,
		// Redirects are never followed. The 3xx response itself becomes the
		// result, classified as ClassRedirect.
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return &Sender{
		client:    client,
		transport: transport,
		guard:     guard,
		timeout:   opts.Timeout,
		userAgent: opts.UserAgent,
	}
}

func withDefaults(opts Options) Options {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.UserAgent == "" {
		opts.UserAgent = DefaultUserAgent
	}
	if opts.MaxIdleConns <= 0 {
		opts.MaxIdleConns = DefaultMaxIdleConns
	}
	if opts.MaxIdleConnsPerHost <= 0 {
		opts.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	if opts.IdleConnTimeout <= 0 {
		opts.IdleConnTimeout = DefaultIdleConnTimeout
	}
	if opts.TLSHandshakeTimeout <= 0 {
		opts.TLSHandshakeTimeout = DefaultTLSHandshakeTimeout
	}
	return opts
}

// CloseIdleConnections closes the idle connections of the shared transport,
// for example at shutdown.
func (s *Sender) CloseIdleConnections() {
	s.transport.CloseIdleConnections()
}

// Send makes one delivery attempt and classifies its outcome. It never
// follows redirects and never connects to a blocked address. The error in
// the Result never contains header values or secrets.
func (s *Sender) Send(ctx context.Context, r Request) Result {
	start := time.Now()
	result := s.send(ctx, r)
	result.Duration = time.Since(start)
	return result
}

func (s *Sender) send(ctx context.Context, r Request) Result {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	req, err := s.buildRequest(ctx, r)
	if err != nil {
		var blocked *BlockedError
		if errors.As(err, &blocked) {
			return Result{RequestURL: r.URL, Class: ClassBlocked, Err: blocked}
		}
		return Result{RequestURL: r.URL, Class: ClassInvalid, Err: err}
	}
	result := Result{RequestURL: req.URL.String()}

	resp, err := s.client.Do(req)
	if err != nil {
		result.Class, result.Err = classifyError(ctx, err)
		return result
	}
	result.StatusCode = resp.StatusCode
	result.RetryAfter = parseRetryAfter(resp.Header, time.Now())
	result.Body = readAndClose(resp.Body)

	switch {
	case result.Success():
	case resp.StatusCode >= 300 && resp.StatusCode <= 399:
		result.Class = ClassRedirect
		result.Err = &StatusError{StatusCode: resp.StatusCode}
	default:
		result.Class = ClassHTTPStatus
		result.Err = &StatusError{StatusCode: resp.StatusCode}
	}
	return result
}

// readAndClose returns the first MaxResponseBodyBytes of body, discards up to
// maxDiscardBytes more so that the connection can be reused, and closes body.
//
// NOTE: a read error, such as a timeout while the receiver trickles its body,
// is dropped. The status code is the receiver's response, and the body is
// only kept for display.
func readAndClose(body io.ReadCloser) []byte {
	defer body.Close()
	data, _ := io.ReadAll(io.LimitReader(body, MaxResponseBodyBytes))
	_, _ = io.CopyN(io.Discard, body, maxDiscardBytes)
	return data
}

// buildRequest turns r into an HTTP request that carries ctx. A destination
// in a blocked network yields a *BlockedError.
func (s *Sender) buildRequest(ctx context.Context, r Request) (*http.Request, error) {
	if !isSupportedMethod(r.Method) {
		return nil, fmt.Errorf("unsupported method %q: expected GET, POST, PUT, PATCH or DELETE", r.Method)
	}
	u, err := parseURL(r.URL, s.guard)
	if err != nil {
		return nil, err
	}
	u.Fragment = ""
	u.RawFragment = ""

	webhookID := r.WebhookID
	if webhookID == "" {
		webhookID = r.EventID
	}
	if webhookID == "" {
		return nil, errors.New("missing webhook id: set WebhookID or EventID")
	}
	timestamp := r.Timestamp
	if timestamp.IsZero() {
		timestamp = time.Now()
	}

	// A GET request carries the event in its query, so the signature covers
	// the query string exactly as sent. Other methods sign the body bytes.
	var body io.Reader
	var payload []byte
	if r.Method == http.MethodGet {
		params, err := queryFromBody(r.Body)
		if err != nil {
			return nil, fmt.Errorf("invalid event body for get request: %w", err)
		}
		u.RawQuery = joinQuery(u.RawQuery, params)
		payload = []byte(u.RawQuery)
	} else {
		body = bytes.NewReader(r.Body)
		payload = r.Body
	}

	signatures, err := signatureHeader(r.Secrets, webhookID, timestamp.Unix(), payload)
	if err != nil {
		return nil, err
	}

	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("invalid request: %w", err)
	}
	req.Header.Set("User-Agent", s.userAgent)
	if r.Method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := setDestinationHeaders(req, r.Headers); err != nil {
		return nil, err
	}

	// The sender's own headers come last so that destination headers cannot
	// override them.
	if r.EventID != "" {
		req.Header.Set(HeaderEventID, r.EventID)
	}
	req.Header.Set(HeaderWebhookID, webhookID)
	req.Header.Set(HeaderWebhookTimestamp, strconv.FormatInt(timestamp.Unix(), 10))
	if signatures != "" {
		req.Header.Set(HeaderWebhookSignature, signatures)
	}
	return req, nil
}

func isSupportedMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// setDestinationHeaders copies the destination's headers into req, in sorted
// order so that names differing only in case resolve the same way every time.
// A Content-Type header replaces the default application/json, and a Host
// header sets the request's Host. Headers that the sender owns are skipped.
func setDestinationHeaders(req *http.Request, headers map[string]string) error {
	names := make([]string, 0, len(headers))
	for name := range headers {
		names = append(names, name)
	}
	sort.Strings(names)

	for _, name := range names {
		value := headers[name]
		if !isValidHeaderName(name) {
			return fmt.Errorf("invalid header name %q", name)
		}
		// The message leaves out the value because it may be a credential.
		if !isValidHeaderValue(value) {
			return fmt.Errorf("invalid value for header %q: control characters are not allowed", name)
		}
		if isReservedHeader(name) {
			continue
		}
		if strings.EqualFold(name, "Host") {
			req.Host = value
			continue
		}
		req.Header.Set(name, value)
	}
	return nil
}

func isReservedHeader(name string) bool {
	for _, reserved := range []string{HeaderEventID, HeaderWebhookID, HeaderWebhookTimestamp, HeaderWebhookSignature} {
		if strings.EqualFold(name, reserved) {
			return true
		}
	}
	return false
}

// isValidHeaderName reports whether name is an RFC 9110 token.
func isValidHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isValidHeaderValue reports whether value contains no control characters
// other than horizontal tab, which rules out header injection with CR or LF.
func isValidHeaderValue(value string) bool {
	for i := 0; i < len(value); i++ {
		c := value[i]
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
