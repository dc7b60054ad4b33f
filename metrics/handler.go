package metrics

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Handler returns the handler that serves the metrics in Prometheus' text
// format. When bearerToken is not empty, a request must carry
// "Authorization: Bearer <bearerToken>" or it gets 401. On a nil *Metrics
// the handler responds 404.
func (m *Metrics) Handler(bearerToken string) http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	if bearerToken == "" {
		return m.handler
	}
	return requireBearer(bearerToken, m.handler)
}

// requireBearer lets through requests that carry token as a bearer token.
// Both tokens are hashed before the constant-time comparison, so that the
// time taken reveals neither the token's content nor its length.
func requireBearer(token string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requestToken, ok := bearerFrom(r.Header.Get("Authorization"))
		got := sha256.Sum256([]byte(requestToken))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"detail":"Authentication credentials were not provided or are invalid."}` + "\n"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearerFrom returns the token of an Authorization header value that uses
// the Bearer scheme. The scheme name is case-insensitive (RFC 7235).
func bearerFrom(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
