package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

type contextKey int

const (
	requestIDKey contextKey = iota
	requestLogKey
)

// requestLog carries values that handlers learn during a request, such as
// the account it concerns, into the request's log line.
type requestLog struct {
	mu        sync.Mutex
	accountID string
}

// setLogAccount records the account a request concerns, for its log line.
func setLogAccount(ctx context.Context, accountID string) {
	if entry, ok := ctx.Value(requestLogKey).(*requestLog); ok {
		entry.mu.Lock()
		entry.accountID = accountID
		entry.mu.Unlock()
	}
}

// maxRequestIDLength is the longest X-Request-ID header taken from a client.
const maxRequestIDLength = 128

// RequestIDFromContext returns the request id that the middleware stored in
// ctx, or "" outside a request.
func RequestIDFromContext(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// middleware wraps the router: it sets the request id, logs one line per
// request and turns panics into 500 responses.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := requestID(r.Header.Get("X-Request-ID"))
		w.Header().Set("X-Request-ID", id)
		entry := &requestLog{}
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		r = r.WithContext(context.WithValue(ctx, requestLogKey, entry))

		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		s.serveRecovered(rec, r, next)

		// The mux sets r.Pattern on this request value when a route matches.
		duration := time.Since(start)
		attrs := []any{"method", r.Method, "route", routePattern(r), "status", rec.statusCode(),
			"duration_ms", duration.Milliseconds(), "request_id", id}
		entry.mu.Lock()
		if entry.accountID != "" {
			attrs = append(attrs, "account_id", entry.accountID)
		}
		entry.mu.Unlock()
		s.logger.InfoContext(r.Context(), "request", attrs...)
		s.cfg.Metrics.ObserveRequest(s.metricRoute(r), metricMethod(r.Method), rec.statusCode(), duration)
	})
}

// metricRoute returns the route label of r's request metrics: the pattern
// of the route that matched, or "" when none did. r.Pattern is used only
// when it is a registered pattern, because for a CONNECT request that
// ServeMux redirects it is the raw path, which would add a series per path.
func (s *Server) metricRoute(r *http.Request) string {
	if !s.patterns[r.Pattern] {
		return ""
	}
	return routePattern(r)
}

// metricMethods are the methods that request metrics record by name.
var metricMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// metricMethod returns the method label of request metrics: the method for
// the ones this API serves, and "other" for any other, so that clients
// cannot add a series per made-up method.
func metricMethod(method string) string {
	if metricMethods[method] {
		return method
	}
	return "other"
}

// routePattern returns the pattern of the route that matched r, such as
// "GET /api/accounts/{account_id}/", or "" when none did.
func routePattern(r *http.Request) string {
	return strings.TrimSuffix(r.Pattern, "{$}")
}

// serveRecovered calls next and writes a 500 response if it panics.
func (s *Server) serveRecovered(w *statusRecorder, r *http.Request, next http.Handler) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			panic(v)
		}
		s.logger.ErrorContext(r.Context(), "panic serving request",
			"error", fmt.Errorf("panic: %v", v), "stack", string(debug.Stack()),
			"request_id", RequestIDFromContext(r.Context()))
		if !w.wroteHeader {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"detail": msgInternal})
		}
	}()
	next.ServeHTTP(w, r)
}

// requestID returns header when it is 1 to 128 visible ASCII characters,
// and a new UUID otherwise.
func requestID(header string) string {
	if header == "" || len(header) > maxRequestIDLength {
		return uuid.NewString()
	}
	for i := 0; i < len(header); i++ {
		if header[i] < 0x21 || header[i] > 0x7e {
			return uuid.NewString()
		}
	}
	return header
}

// statusRecorder remembers the status code written through it.
type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusRecorder) WriteHeader(status int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = status, true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusRecorder) statusCode() int {
	if !w.wroteHeader {
		return http.StatusOK
	}
	return w.status
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
