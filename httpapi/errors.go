package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/datapusher/datapusher"
)

// Error codes of this package, beside the datapusher ones.
const (
	// codeTooLarge marks a request body over Config.MaxBodyBytes.
	codeTooLarge = "too_large"

	// codeMethodNotAllowed marks a request whose method the path does not
	// accept.
	codeMethodNotAllowed = "method_not_allowed"

	// codeThrottled marks a request rejected by a rate limit.
	codeThrottled = "throttled"
)

// statusCodes maps error codes to HTTP status codes. Any other code is 500.
var statusCodes = map[string]int{
	datapusher.EINVALID:      http.StatusBadRequest,
	datapusher.EUNAUTHORIZED: http.StatusUnauthorized,
	datapusher.EFORBIDDEN:    http.StatusForbidden,
	datapusher.ENOTFOUND:     http.StatusNotFound,
	datapusher.ECONFLICT:     http.StatusConflict,
	datapusher.EUNAVAILABLE:  http.StatusServiceUnavailable,
	codeMethodNotAllowed:     http.StatusMethodNotAllowed,
	codeTooLarge:             http.StatusRequestEntityTooLarge,
	codeThrottled:            http.StatusTooManyRequests,
}

// statusFor returns the HTTP status for an error code.
func statusFor(code string) int {
	if status, ok := statusCodes[code]; ok {
		return status
	}
	return http.StatusInternalServerError
}

// Fixed messages of the Django REST Framework error bodies.
const (
	msgNotAuthenticated = "Authentication credentials were not provided."
	msgTokenNotValid    = "Given token not valid for any token type"
	msgForbidden        = "You do not have permission to perform this action."
	msgNotFound         = "Not found."
	msgUnavailable      = "Service Unavailable"
	msgInternal         = "Internal error."
)

// authError is a 401 error whose body carries a machine-readable code, as
// in {"detail": "...", "code": "token_not_valid"}.
type authError struct {
	Detail string
	Code   string
}

func (e *authError) Error() string { return "authentication: " + e.Detail }

func (e *authError) Unwrap() error {
	return &datapusher.Error{Code: datapusher.EUNAUTHORIZED, Message: e.Detail}
}

var (
	errNotAuthenticated = &authError{Detail: msgNotAuthenticated}
	errTokenNotValid    = &authError{Detail: msgTokenNotValid, Code: "token_not_valid"}
	errNotFound         = datapusher.Errorf(datapusher.ENOTFOUND, msgNotFound)
	errForbidden        = datapusher.Errorf(datapusher.EFORBIDDEN, msgForbidden)
)

// errorBody returns the JSON body for err, which has the given code.
func errorBody(err error, code string) any {
	switch code {
	case datapusher.EINVALID:
		var e *datapusher.Error
		if errors.As(err, &e) && len(e.Fields) > 0 {
			return e.Fields
		}
		return map[string]string{"detail": datapusher.ErrorMessage(err)}
	case datapusher.EUNAUTHORIZED:
		body := map[string]string{"detail": datapusher.ErrorMessage(err)}
		var e *authError
		if errors.As(err, &e) && e.Code != "" {
			body["code"] = e.Code
		}
		return body
	case datapusher.EFORBIDDEN:
		return map[string]string{"detail": msgForbidden}
	case datapusher.ENOTFOUND:
		return map[string]string{"detail": msgNotFound}
	case datapusher.EUNAVAILABLE:
		return map[string]string{"detail": msgUnavailable}
	case codeMethodNotAllowed, codeTooLarge, codeThrottled, datapusher.ECONFLICT:
		return map[string]string{"detail": datapusher.ErrorMessage(err)}
	}
	return map[string]string{"detail": msgInternal}
}

// writeError writes the status and JSON body for err. Server faults are
// logged with their detail, which the client never receives. Client errors
// are logged at debug level.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := datapusher.ErrorCode(err)
	status := statusFor(code)
	if status >= http.StatusInternalServerError {
		s.logger.ErrorContext(r.Context(), "request error",
			"error", err, "method", r.Method, "route", routePattern(r), "request_id", RequestIDFromContext(r.Context()))
	} else {
		s.logger.DebugContext(r.Context(), "request rejected",
			"code", code, "status", status, "request_id", RequestIDFromContext(r.Context()))
	}
	if status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
	}
	writeJSON(w, status, errorBody(err, code))
}

// writeJSON writes status and v encoded as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v == nil {
		return
	}
	// An encoding error here means the client went away. The status is
	// already sent, so there is nothing left to report to it.
	_ = json.NewEncoder(w).Encode(v)
}

// invalid returns an EINVALID error whose body is {"detail": message}.
func invalid(message string) error {
	return datapusher.Errorf(datapusher.EINVALID, "%s", message)
}
