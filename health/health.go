// Package health serves the liveness (/healthz) and readiness (/readyz)
// endpoints. Readiness runs named checks of the service's dependencies and
// reports each result without exposing internal error text to clients.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// DefaultTimeout bounds all checks of one readiness request when Ready is
// given a timeout of zero or less.
const DefaultTimeout = 2 * time.Second

// Check is one named readiness check. Run returns nil when the dependency is
// ready. Its error is logged but never sent to clients, who see the Message
// of an *Error in the chain, or "check failed". Names must be unique within
// one Ready handler.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Error is a check failure with a message that is safe to send to any
// client. Class names the kind of failure. When Class is empty, Ready
// derives it from Err.
type Error struct {
	Message string
	Class   string
	Err     error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Message
	}
	return e.Message + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Result is the outcome of one check in a readiness response.
type Result struct {
	Status     string `json:"status"`
	Error      string `json:"error,omitempty"`
	ErrorClass string `json:"error_class,omitempty"`
}

// Response is the body of both endpoints.
type Response struct {
	Status string            `json:"status"`
	Checks map[string]Result `json:"checks,omitempty"`
}

// Live returns the liveness handler, which responds 200 {"status":"ok"} to
// every request, because a process that serves HTTP is alive.
func Live() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, Response{Status: "ok"})
	})
}

// Ready returns the readiness handler. Each request runs every check at once
// under one timeout and responds 200 {"status":"ok"} when all pass, or 503
// {"status":"unavailable"} when any fails, with each check's result under
// "checks". A check still running at the timeout fails with class
// "timeout". Failures are logged to logger when a check starts failing, and
// recovery when it passes again; repeated failures are logged at debug
// level.
func Ready(logger *slog.Logger, timeout time.Duration, checks ...Check) http.Handler {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	r := &readiness{logger: logger, timeout: timeout, checks: checks, failing: map[string]bool{}}
	return http.HandlerFunc(r.serveHTTP)
}

type readiness struct {
	logger  *slog.Logger
	timeout time.Duration
	checks  []Check

	mu      sync.Mutex
	failing map[string]bool
}

type outcome struct {
	name string
	err  error
}

func (rd *readiness) serveHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), rd.timeout)
	defer cancel()

	// The channel has room for every result, so a check that returns after
	// the timeout does not block.
	results := make(chan outcome, len(rd.checks))
	for _, check := range rd.checks {
		go func() { results <- outcome{check.Name, check.Run(ctx)} }()
	}
	errs := make(map[string]error, len(rd.checks))
wait:
	for range rd.checks {
		select {
		case res := <-results:
			errs[res.name] = res.err
		case <-ctx.Done():
			break wait
		}
	}
	for _, check := range rd.checks {
		if _, done := errs[check.Name]; !done {
			errs[check.Name] = &Error{Message: "check timed out", Class: "timeout", Err: ctx.Err()}
		}
	}

	body := Response{Status: "ok", Checks: make(map[string]Result, len(rd.checks))}
	status := http.StatusOK
	for _, check := range rd.checks {
		err := errs[check.Name]
		rd.logTransition(check.Name, err)
		if err == nil {
			body.Checks[check.Name] = Result{Status: "ok"}
			continue
		}
		body.Status, status = "unavailable", http.StatusServiceUnavailable
		message, class := describe(err)
		body.Checks[check.Name] = Result{Status: "error", Error: message, ErrorClass: class}
	}
	writeJSON(w, status, body)
}

// logTransition logs a check that starts failing at warn level and one that
// recovers at info level, so that a probe every few seconds against a down
// dependency does not flood the log.
func (rd *readiness) logTransition(name string, err error) {
	if rd.logger == nil {
		return
	}
	rd.mu.Lock()
	wasFailing := rd.failing[name]
	rd.failing[name] = err != nil
	rd.mu.Unlock()

	switch {
	case err != nil && !wasFailing:
		rd.logger.Warn("readiness check failed", "check", name, "error", err)
	case err != nil:
		rd.logger.Debug("readiness check still failing", "check", name, "error", err)
	case wasFailing:
		rd.logger.Info("readiness check recovered", "check", name)
	}
}

// describe returns the client-safe message and the class of a check error.
func describe(err error) (message, class string) {
	message, class = "check failed", ""
	var checkErr *Error
	if errors.As(err, &checkErr) {
		message, class = checkErr.Message, checkErr.Class
	}
	if class == "" {
		class = errorClass(err)
	}
	return message, class
}

// errorClass names the kind of err in a word that reveals no address or
// credential.
func errorClass(err error) string {
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection_refused"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.As(err, &netErr):
		return "network"
	}
	return "error"
}

func writeJSON(w http.ResponseWriter, status int, body Response) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
