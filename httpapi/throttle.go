package httpapi

import (
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/ratelimit"
)

// checkAPILimit counts one request of user against the per-user API rate
// limit and returns a 429 error when the user is over it.
func (s *Server) checkAPILimit(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	if s.cfg.Limiter == nil {
		return nil
	}
	result, err := s.cfg.Limiter.Allow(r.Context(), "api:"+user.ID, ratelimit.PerSecond(s.cfg.APIRatePerSecond))
	if err != nil {
		return fmt.Errorf("check api rate limit: %w", err)
	}
	if result.Allowed {
		return nil
	}
	s.cfg.Metrics.RateLimited("api")
	return throttled(w, result)
}

// ipLimited wraps h with the per-IP limit of public routes.
func (s *Server) ipLimited(h func(w http.ResponseWriter, r *http.Request) error) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.cfg.Limiter == nil {
			return h(w, r)
		}
		result, err := s.cfg.Limiter.Allow(r.Context(), "public-ip:"+clientIP(r), ratelimit.PerMinute(s.cfg.PublicRatePerMinute))
		if err != nil {
			return fmt.Errorf("check public rate limit: %w", err)
		}
		if !result.Allowed {
			s.cfg.Metrics.RateLimited("public")
			return throttled(w, result)
		}
		return h(w, r)
	}
}

// loginLimitKeys returns the rate limit keys of a sign-in attempt: one for
// the email address, normalized as the store does, and one for the client IP.
func loginLimitKeys(r *http.Request, email string) []string {
	return []string{
		"login-email:" + strings.ToLower(strings.TrimSpace(email)),
		"login-ip:" + clientIP(r),
	}
}

// checkLoginLimit returns a 429 error when any of keys has used up its
// failed sign-ins. It consumes nothing, so it runs before the password is
// checked.
//
// NOTE: the check and recordLoginFailure are separate steps, so sign-ins
// sent at the same time all pass the check, and one key can fail up to the
// number of concurrent requests more often than the limit.
func (s *Server) checkLoginLimit(w http.ResponseWriter, r *http.Request, keys []string) error {
	if s.cfg.Limiter == nil {
		return nil
	}
	var rejected *ratelimit.Result
	for _, key := range keys {
		result, err := s.cfg.Limiter.AllowN(r.Context(), key, s.loginLimit(), 0)
		if err != nil {
			return fmt.Errorf("check sign-in rate limit: %w", err)
		}
		if !result.Allowed && (rejected == nil || result.RetryAfter > rejected.RetryAfter) {
			rejected = &result
		}
	}
	if rejected == nil {
		return nil
	}
	s.cfg.Metrics.RateLimited("login")
	return throttled(w, *rejected)
}

// recordLoginFailure consumes one failed sign-in from each of keys. A
// limiter error is logged, because the client still gets the 401 of the
// failed sign-in.
func (s *Server) recordLoginFailure(r *http.Request, keys []string) {
	if s.cfg.Limiter == nil {
		return
	}
	for _, key := range keys {
		if _, err := s.cfg.Limiter.Allow(r.Context(), key, s.loginLimit()); err != nil {
			s.logger.ErrorContext(r.Context(), "record failed sign-in",
				"error", err, "request_id", RequestIDFromContext(r.Context()))
			return
		}
	}
}

func (s *Server) loginLimit() ratelimit.Limit {
	return ratelimit.PerMinute(s.cfg.LoginFailuresPerMinute)
}

// clientIP returns the host part of r.RemoteAddr. X-Forwarded-For and
// similar headers are ignored, because any client can set them.
//
// NOTE: behind a reverse proxy every client has the proxy's address, so
// they all share one per-IP sign-in limit.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// throttled sets the rate limit headers of a rejected request on w and
// returns the 429 error with Django REST Framework's message, such as
// "Request was throttled. Expected available in 3 seconds.". The number is
// the Retry-After value, in whole seconds.
func throttled(w http.ResponseWriter, result ratelimit.Result) error {
	result.SetHeaders(w.Header())
	wait := w.Header().Get("Retry-After")
	unit := "seconds"
	if wait == "1" {
		unit = "second"
	}
	return datapusher.Errorf(codeThrottled, "Request was throttled. Expected available in %s %s.", wait, unit)
}
