package sender

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// loopback opens 127.0.0.0/8 so that tests can reach their httptest servers.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// testSecret is a fixed signing secret: whsec_ and the base64 of 32 bytes.
const testSecret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// capturedRequest is what a test server received.
type capturedRequest struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     []byte
}

// recorder stores the requests that a test server received.
type recorder struct {
	mu       sync.Mutex
	requests []capturedRequest
}

func (rec *recorder) add(r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.requests = append(rec.requests, capturedRequest{
		Method:   r.Method,
		Path:     r.URL.Path,
		RawQuery: r.URL.RawQuery,
		Header:   r.Header.Clone(),
		Body:     body,
	})
}

func (rec *recorder) all() []capturedRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]capturedRequest(nil), rec.requests...)
}

// only returns the single request that the server received.
func (rec *recorder) only(t *testing.T) capturedRequest {
	t.Helper()
	requests := rec.all()
	require.Len(t, requests, 1, "server should receive exactly one request")
	return requests[0]
}

// newServer starts a loopback server that records every request and then
// runs respond, or responds 200 "ok" when respond is nil.
func newServer(t *testing.T, respond http.HandlerFunc) (*httptest.Server, *recorder) {
	t.Helper()
	rec := &recorder{}
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		if respond == nil {
			_, _ = io.WriteString(w, "ok")
			return
		}
		respond(w, r)
	}))
	t.Cleanup(server.Close)
	return server, rec
}

func statusHandler(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
	}
}

func newTestSender(opts Options) *Sender {
	if opts.AllowedNetworks == nil {
		opts.AllowedNetworks = loopback
	}
	return New(opts)
}

func postRequest(url string, body string) Request {
	return Request{
		URL:       url,
		Method:    http.MethodPost,
		Body:      []byte(body),
		EventID:   "evt_1",
		WebhookID: "msg_1",
		Timestamp: time.Unix(1700000000, 0),
		Secrets:   []string{testSecret},
	}
}

func TestSendPOSTRequest(t *testing.T) {
	t.Parallel()
	server, rec := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"received":true}`)
	})
	body := "{\"b\": 1,\n \"a\": \"\\u00e9\", \"n\": 12345678901234567890}"
	request := postRequest(server.URL+"/hooks/orders?source=dp", body)
	request.Headers = map[string]string{"Authorization": "Bearer token-1", "X-Custom": "yes"}

	result := newTestSender(Options{}).Send(t.Context(), request)

	require.NoError(t, result.Err)
	require.True(t, result.Success())
	require.False(t, result.Retryable())
	require.Equal(t, ErrorClass(""), result.Class)
	require.Equal(t, http.StatusCreated, result.StatusCode)
	require.Equal(t, `{"received":true}`, string(result.Body))
	require.Equal(t, server.URL+"/hooks/orders?source=dp", result.RequestURL)
	require.Positive(t, result.Duration)

	got := rec.only(t)
	require.Equal(t, http.MethodPost, got.Method)
	require.Equal(t, "/hooks/orders", got.Path)
	require.Equal(t, "source=dp", got.RawQuery)
	require.Equal(t, []byte(body), got.Body)
	require.Equal(t, "application/json", got.Header.Get("Content-Type"))
	require.Equal(t, "Bearer token-1", got.Header.Get("Authorization"))
	require.Equal(t, "yes", got.Header.Get("X-Custom"))
	require.Equal(t, DefaultUserAgent, got.Header.Get("User-Agent"))
	require.Equal(t, "evt_1", got.Header.Get("CL-X-EVENT-ID"))
	require.Equal(t, "msg_1", got.Header.Get("webhook-id"))
	require.Equal(t, "1700000000", got.Header.Get("webhook-timestamp"))
	require.Equal(t, referenceSignature(t, testSecret, "msg_1", 1700000000, []byte(body)),
		got.Header.Get("webhook-signature"))
}

func TestSendBodyMethods(t *testing.T) {
	t.Parallel()
	for _, method := range []string{http.MethodPut, http.MethodPatch, http.MethodDelete} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			server, rec := newServer(t, nil)
			request := postRequest(server.URL+"/items/7", `{"id":7}`)
			request.Method = method

			result := newTestSender(Options{}).Send(t.Context(), request)

			require.NoError(t, result.Err)
			got := rec.only(t)
			require.Equal(t, method, got.Method)
			require.Equal(t, "/items/7", got.Path)
			require.Equal(t, []byte(`{"id":7}`), got.Body)
			require.Equal(t, "application/json", got.Header.Get("Content-Type"))
		})
	}
}

func TestSendGETQuery(t *testing.T) {
	t.Parallel()
	server, rec := newServer(t, nil)
	body := `{"s":"hello world","n":12345678901234567890,"f":1.50,"t":true,"z":null,` +
		`"o":{"b":1, "a":[1,2]},"arr":[ "x" , 2 ],"k&=":"v/?"}`
	request := postRequest(server.URL+"/hook?token=abc&x=1", body)
	request.Method = http.MethodGet

	result := newTestSender(Options{}).Send(t.Context(), request)

	require.NoError(t, result.Err)
	wantQuery := "token=abc&x=1" +
		"&arr=%5B%22x%22%2C2%5D" +
		"&f=1.50" +
		"&k%26%3D=v%2F%3F" +
		"&n=12345678901234567890" +
		"&o=%7B%22b%22%3A1%2C%22a%22%3A%5B1%2C2%5D%7D" +
		"&s=hello+world" +
		"&t=true" +
		"&z=null"
	require.Equal(t, server.URL+"/hook?"+wantQuery, result.RequestURL)

	got := rec.only(t)
	require.Equal(t, http.MethodGet, got.Method)
	require.Equal(t, "/hook", got.Path)
	require.Equal(t, wantQuery, got.RawQuery)
	require.Empty(t, got.Body)
	require.Empty(t, got.Header.Get("Content-Type"))
	require.Equal(t, referenceSignature(t, testSecret, "msg_1", 1700000000, []byte(wantQuery)),
		got.Header.Get("webhook-signature"))

	values, err := url.ParseQuery(got.RawQuery)
	require.NoError(t, err)
	require.Equal(t, "hello world", values.Get("s"))
	require.Equal(t, "12345678901234567890", values.Get("n"))
	require.Equal(t, `{"b":1,"a":[1,2]}`, values.Get("o"))
	require.Equal(t, `["x",2]`, values.Get("arr"))
	require.Equal(t, "v/?", values.Get("k&="))
}

func TestSendGETRejectsNonObjectBody(t *testing.T) {
	t.Parallel()
	server, rec := newServer(t, nil)
	request := postRequest(server.URL, `[1,2]`)
	request.Method = http.MethodGet

	result := newTestSender(Options{}).Send(t.Context(), request)

	require.Equal(t, ClassInvalid, result.Class)
	require.ErrorContains(t, result.Err, "invalid event body")
	require.False(t, result.Retryable())
	require.Empty(t, rec.all())
}

func TestSendContentTypeOverride(t *testing.T) {
	t.Parallel()
	server, rec := newServer(t, nil)
	request := postRequest(server.URL, `{}`)
	request.Headers = map[string]string{"content-type": "application/cloudevents+json"}

	result := newTestSender(Options{}).Send(t.Context(), request)

	require.NoError(t, result.Err)
	got := rec.only(t)
	require.Equal(t, []string{"application/cloudevents+json"}, got.Header.Values("Content-Type"))
}

func TestSendHostHeader(t *testing.T) {
	t.Parallel()
	var gotHost atomic.Value
	server, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		gotHost.Store(r.Host)
	})
	request := postRequest(server.URL, `{}`)
	request.Headers = map[string]string{"Host": "api.example.com"}

	result := newTestSender(Options{}).Send(t.Context(), request)

	require.NoError(t, result.Err)
	require.Equal(t, "api.example.com", gotHost.Load())
}

func TestSendReservedHeadersWin(t *testing.T) {
	t.Parallel()
	server, rec := newServer(t, nil)
	request := postRequest(server.URL, `{}`)
	request.Headers = map[string]string{
		"cl-x-event-id":     "forged",
		"Webhook-Id":        "forged",
		"WEBHOOK-TIMESTAMP": "1",
		"webhook-signature": "v1,forged",
		"User-Agent":        "Receiver-Requested/2",
	}

	result := newTestSender(Options{}).Send(t.Context(), request)

	require.NoError(t, result.Err)
	got := rec.only(t)
	require.Equal(t, []string{"evt_1"}, got.Header.Values("CL-X-EVENT-ID"))
	require.Equal(t, []string{"msg_1"}, got.Header.Values("webhook-id"))
	require.Equal(t, []string{"1700000000"}, got.Header.Values("webhook-timestamp"))
	require.Equal(t, []string{referenceSignature(t, testSecret, "msg_1", 1700000000, []byte(`{}`))},
		got.Header.Values("webhook-signature"))
	require.Equal(t, "Receiver-Requested/2", got.Header.Get("User-Agent"))
}

func TestSendRejectsHeaderInjection(t *testing.T) {
	t.Parallel()
	server, rec := newServer(t, nil)
	request := postRequest(server.URL, `{}`)
	request.Headers = map[string]string{"X-Token": "secret-value\r\nX-Injected: 1"}

	result := newTestSender(Options{}).Send(t.Context(), request)

	require.Equal(t, ClassInvalid, result.Class)
	require.ErrorContains(t, result.Err, `"X-Token"`)
	require.NotContains(t, result.Err.Error(), "secret-value")
	require.Empty(t, rec.all())
}

func TestSendInvalidInput(t *testing.T) {
	t.Parallel()
	server, rec := newServer(t, nil)
	tests := []struct {
		name   string
		modify func(*Request)
		want   string
	}{
		{"lower case method", func(r *Request) { r.Method = "post" }, "unsupported method"},
		{"empty method", func(r *Request) { r.Method = "" }, "unsupported method"},
		{"ftp scheme", func(r *Request) { r.URL = "ftp://127.0.0.1/" }, "scheme"},
		{"empty url", func(r *Request) { r.URL = "" }, "missing url"},
		{"missing ids", func(r *Request) { r.EventID, r.WebhookID = "", "" }, "missing webhook id"},
		{"secret without prefix", func(r *Request) { r.Secrets = []string{"abc"} }, "signing secret 1 of 1"},
		{"secret not base64", func(r *Request) { r.Secrets = []string{testSecret, "whsec_%%%"} }, "signing secret 2 of 2"},
		{"invalid header name", func(r *Request) { r.Headers = map[string]string{"Bad Name": "x"} }, "invalid header name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			request := postRequest(server.URL, `{}`)
			tt.modify(&request)

			result := newTestSender(Options{}).Send(t.Context(), request)

			require.Equal(t, ClassInvalid, result.Class)
			require.ErrorContains(t, result.Err, tt.want)
			require.False(t, result.Retryable())
			require.False(t, result.Success())
			require.Zero(t, result.StatusCode)
		})
	}
	// The subtests run in parallel after this function returns, so the
	// server is checked once they have all finished.
	t.Cleanup(func() { require.Empty(t, rec.all()) })
}

func TestSendStatusClasses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status    int
		class     ErrorClass
		retryable bool
	}{
		{http.StatusOK, "", false},
		{http.StatusAccepted, "", false},
		{http.StatusNoContent, "", false},
		{http.StatusBadRequest, ClassHTTPStatus, false},
		{http.StatusUnauthorized, ClassHTTPStatus, false},
		{http.StatusNotFound, ClassHTTPStatus, false},
		{http.StatusGone, ClassHTTPStatus, false},
		{http.StatusRequestTimeout, ClassHTTPStatus, true},
		{http.StatusTooManyRequests, ClassHTTPStatus, true},
		{http.StatusInternalServerError, ClassHTTPStatus, true},
		{http.StatusBadGateway, ClassHTTPStatus, true},
		{http.StatusServiceUnavailable, ClassHTTPStatus, true},
		{599, ClassHTTPStatus, true},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			t.Parallel()
			server, _ := newServer(t, statusHandler(tt.status))

			result := newTestSender(Options{}).Send(t.Context(), postRequest(server.URL, `{}`))

			require.Equal(t, tt.status, result.StatusCode)
			require.Equal(t, tt.class, result.Class)
			require.Equal(t, tt.retryable, result.Retryable())
			if tt.class == "" {
				require.True(t, result.Success())
				require.NoError(t, result.Err)
				return
			}
			require.False(t, result.Success())
			var statusErr *StatusError
			require.ErrorAs(t, result.Err, &statusErr)
			require.Equal(t, tt.status, statusErr.StatusCode)
		})
	}
}

func TestSendStatusErrorMessage(t *testing.T) {
	t.Parallel()
	server, _ := newServer(t, statusHandler(http.StatusNotFound))

	result := newTestSender(Options{}).Send(t.Context(), postRequest(server.URL, `{}`))

	require.EqualError(t, result.Err, "unexpected status 404 not found")
}

func TestSendRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			target, targetRec := newServer(t, nil)
			server, rec := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+"/moved", status)
			})

			result := newTestSender(Options{}).Send(t.Context(), postRequest(server.URL, `{}`))

			require.Equal(t, ClassRedirect, result.Class)
			require.Equal(t, status, result.StatusCode)
			require.False(t, result.Retryable())
			require.False(t, result.Success())
			require.ErrorContains(t, result.Err, "is not followed")
			require.Len(t, rec.all(), 1)
			require.Empty(t, targetRec.all(), "redirect target should receive nothing")
		})
	}
}

func TestSendRetryAfterSeconds(t *testing.T) {
	t.Parallel()
	server, _ := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusTooManyRequests)
	})

	result := newTestSender(Options{}).Send(t.Context(), postRequest(server.URL, `{}`))

	require.Equal(t, ClassHTTPStatus, result.Class)
	require.True(t, result.Retryable())
	require.Equal(t, 120*time.Second, result.RetryAfter)
}

func TestSendRetryAfterHTTPDate(t *testing.T) {
	t.Parallel()
	// The delay is measured from the response's Date header, so the test
	// does not depend on the clock.
	date := time.Date(2030, time.January, 2, 3, 4, 5, 0, time.UTC)
	server, _ := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Date", date.Format(http.TimeFormat))
		w.Header().Set("Retry-After", date.Add(90*time.Second).Format(http.TimeFormat))
		w.WriteHeader(http.StatusTooManyRequests)
	})

	result := newTestSender(Options{}).Send(t.Context(), postRequest(server.URL, `{}`))

	require.Equal(t, http.StatusTooManyRequests, result.StatusCode)
	require.Equal(t, 90*time.Second, result.RetryAfter)
}

func TestSendRetryAfterOnSuccess(t *testing.T) {
	t.Parallel()
	server, _ := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "5")
	})

	result := newTestSender(Options{}).Send(t.Context(), postRequest(server.URL, `{}`))

	require.True(t, result.Success())
	require.Equal(t, 5*time.Second, result.RetryAfter)
}

// newHangingServer starts a server whose handler runs before, then blocks
// until the client goes away or the test ends.
func newHangingServer(t *testing.T, before http.HandlerFunc) (*httptest.Server, *recorder) {
	t.Helper()
	release := make(chan struct{})
	server, rec := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if before != nil {
			before(w, r)
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	// Cleanups run in reverse order, so the handler is released before
	// server.Close waits for it.
	t.Cleanup(func() { close(release) })
	return server, rec
}

func TestSendTimeout(t *testing.T) {
	t.Parallel()
	server, rec := newHangingServer(t, nil)

	result := newTestSender(Options{Timeout: 200 * time.Millisecond}).Send(t.Context(), postRequest(server.URL, `{}`))

	require.Equal(t, ClassTimeout, result.Class)
	require.True(t, result.Retryable())
	require.Zero(t, result.StatusCode)
	require.ErrorContains(t, result.Err, "request timed out")
	require.Len(t, rec.all(), 1)
}

func TestSendSlowBodyKeepsStatus(t *testing.T) {
	t.Parallel()
	server, _ := newHangingServer(t, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
	})

	result := newTestSender(Options{Timeout: 200 * time.Millisecond}).Send(t.Context(), postRequest(server.URL, `{}`))

	require.True(t, result.Success())
	require.NoError(t, result.Err)
	require.Equal(t, "partial", string(result.Body))
}

func TestSendConnectionClosed(t *testing.T) {
	t.Parallel()
	server, rec := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		_ = conn.Close()
	})

	result := newTestSender(Options{}).Send(t.Context(), postRequest(server.URL, `{}`))

	require.Equal(t, ClassConnect, result.Class)
	require.True(t, result.Retryable())
	require.Zero(t, result.StatusCode)
	require.Error(t, result.Err)
	require.Len(t, rec.all(), 1)
}

// closedPortURL returns a loopback URL on a port that had a listener a moment
// ago and has none now.
func closedPortURL(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := listener.Addr().String()
	require.NoError(t, listener.Close())
	return "http://" + addr
}

func TestSendUnreachablePort(t *testing.T) {
	t.Parallel()
	request := postRequest(closedPortURL(t)+"/hook?token=s3cret", `{}`)

	result := newTestSender(Options{}).Send(t.Context(), request)

	require.Equal(t, ClassConnect, result.Class)
	require.True(t, result.Retryable())
	require.ErrorContains(t, result.Err, "connection refused")
	require.NotContains(t, result.Err.Error(), "s3cret", "error should not repeat the url")
	require.Contains(t, result.RequestURL, "token=s3cret")
}

func TestSendCanceledContext(t *testing.T) {
	t.Parallel()
	server, _ := newServer(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	result := newTestSender(Options{}).Send(ctx, postRequest(server.URL, `{}`))

	require.Equal(t, ClassCanceled, result.Class)
	require.True(t, result.Retryable())
	require.ErrorIs(t, result.Err, context.Canceled)
}

func TestSendBlockedLiteralLoopback(t *testing.T) {
	t.Parallel()
	server, rec := newServer(t, nil)

	for _, allowed := range [][]netip.Prefix{nil, {netip.MustParsePrefix("10.0.0.0/8")}} {
		sender := New(Options{AllowedNetworks: allowed})
		result := sender.Send(t.Context(), postRequest(server.URL, `{}`))

		require.Equal(t, ClassBlocked, result.Class)
		require.False(t, result.Retryable())
		require.Zero(t, result.StatusCode)
		require.EqualError(t, result.Err, "destination address 127.0.0.1 is not allowed (loopback); "+
			"allow it with DATAPUSHER_ALLOWED_DESTINATION_NETWORKS")
	}
	require.Empty(t, rec.all(), "blocked destination should receive nothing")
}

// requireLocalhostInHostsFile skips the test unless /etc/hosts maps
// localhost, so that resolving it sends no DNS query.
func requireLocalhostInHostsFile(t *testing.T) {
	t.Helper()
	hosts, err := os.ReadFile("/etc/hosts")
	if err != nil {
		t.Skipf("read hosts file: %v", err)
	}
	for line := range strings.Lines(string(hosts)) {
		fields := strings.Fields(line)
		if len(fields) >= 2 && !strings.HasPrefix(fields[0], "#") && fields[1] == "localhost" {
			return
		}
	}
	t.Skip("hosts file does not map localhost")
}

func TestSendBlockedAtConnectTime(t *testing.T) {
	t.Parallel()
	requireLocalhostInHostsFile(t)
	server, rec := newServer(t, nil)
	port := server.URL[strings.LastIndexByte(server.URL, ':')+1:]
	destination := "http://localhost:" + port + "/hook"
	// The host name passes validation, and the address it resolves to is
	// rejected when the sender connects.
	require.NoError(t, CheckURL(destination, nil))

	result := New(Options{}).Send(t.Context(), postRequest(destination, `{}`))

	require.Equal(t, ClassBlocked, result.Class)
	require.False(t, result.Retryable())
	require.ErrorContains(t, result.Err, "is not allowed (loopback)")
	require.ErrorContains(t, result.Err, AllowedNetworksVariable)
	require.Empty(t, rec.all(), "blocked destination should receive nothing")
}

func TestSendAllowedNetworkReachesServer(t *testing.T) {
	t.Parallel()
	requireLocalhostInHostsFile(t)
	server, rec := newServer(t, nil)
	port := server.URL[strings.LastIndexByte(server.URL, ':')+1:]
	allowed, err := ParseNetworks("127.0.0.1, ::1")
	require.NoError(t, err)

	result := New(Options{AllowedNetworks: allowed}).Send(t.Context(), postRequest("http://localhost:"+port, `{}`))

	require.NoError(t, result.Err)
	require.Len(t, rec.all(), 1)
}

// newQuietTLSServer starts a loopback TLS server that does not log handshake
// errors, which the untrusted-certificate test causes on purpose.
func newQuietTLSServer(t *testing.T) (*httptest.Server, *recorder) {
	t.Helper()
	rec := &recorder{}
	server := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		_, _ = io.WriteString(w, "ok")
	}))
	server.Config.ErrorLog = log.New(io.Discard, "", 0)
	server.StartTLS()
	t.Cleanup(server.Close)
	return server, rec
}

func TestSendUntrustedCertificate(t *testing.T) {
	t.Parallel()
	server, rec := newQuietTLSServer(t)

	result := newTestSender(Options{}).Send(t.Context(), postRequest(server.URL, `{}`))

	require.Equal(t, ClassTLS, result.Class)
	require.True(t, result.Retryable())
	require.ErrorContains(t, result.Err, "certificate")
	require.Empty(t, rec.all())
}

func TestSendTrustedCertificate(t *testing.T) {
	t.Parallel()
	server, rec := newQuietTLSServer(t)
	roots := x509.NewCertPool()
	roots.AddCert(server.Certificate())

	sender := newTestSender(Options{TLSConfig: &tls.Config{RootCAs: roots}})
	result := sender.Send(t.Context(), postRequest(server.URL, `{"tls":true}`))

	require.NoError(t, result.Err)
	require.True(t, result.Success())
	require.Equal(t, []byte(`{"tls":true}`), rec.only(t).Body)
}

func TestSendHTTPSToPlainServer(t *testing.T) {
	t.Parallel()
	server, _ := newServer(t, nil)

	result := newTestSender(Options{}).Send(t.Context(), postRequest(strings.Replace(server.URL, "http:", "https:", 1), `{}`))

	require.Equal(t, ClassTLS, result.Class)
}

func TestSendResponseBodyTruncated(t *testing.T) {
	t.Parallel()
	large := bytes.Repeat([]byte("0123456789abcdef"), 1024) // 16 KiB
	server, _ := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(large)
	})

	result := newTestSender(Options{}).Send(t.Context(), postRequest(server.URL, `{}`))

	require.True(t, result.Success())
	require.Len(t, result.Body, MaxResponseBodyBytes)
	require.Equal(t, large[:MaxResponseBodyBytes], result.Body)
}

func TestSendReusesConnections(t *testing.T) {
	t.Parallel()
	var newConns atomic.Int64
	body := bytes.Repeat([]byte("x"), 10<<10) // larger than MaxResponseBodyBytes
	server := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(body)
	}))
	server.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			newConns.Add(1)
		}
	}
	server.Start()
	t.Cleanup(server.Close)
	sender := newTestSender(Options{})

	const requests = 20
	for range requests {
		result := sender.Send(t.Context(), postRequest(server.URL, `{}`))
		require.True(t, result.Success())
	}

	// Without draining and closing each body, every request would need a
	// new connection. The transport may dial a spare connection while an
	// idle one is being returned, so the bound is loose.
	require.Less(t, newConns.Load(), int64(requests/2))
}

func TestResultRetryable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		result Result
		want   bool
	}{
		{Result{StatusCode: 200}, false},
		{Result{Class: ClassDNS}, true},
		{Result{Class: ClassConnect}, true},
		{Result{Class: ClassTLS}, true},
		{Result{Class: ClassTimeout}, true},
		{Result{Class: ClassCanceled}, true},
		{Result{Class: ClassRedirect, StatusCode: 302}, false},
		{Result{Class: ClassBlocked}, false},
		{Result{Class: ClassInvalid}, false},
		{Result{Class: ClassHTTPStatus, StatusCode: 400}, false},
		{Result{Class: ClassHTTPStatus, StatusCode: 404}, false},
		{Result{Class: ClassHTTPStatus, StatusCode: 408}, true},
		{Result{Class: ClassHTTPStatus, StatusCode: 429}, true},
		{Result{Class: ClassHTTPStatus, StatusCode: 500}, true},
		{Result{Class: ClassHTTPStatus, StatusCode: 503}, true},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.result.Retryable(), "class %q status %d", tt.result.Class, tt.result.StatusCode)
	}
}
