// Package datapusher holds the domain types of Data Pusher, a webhook gateway
// that receives JSON events for an account and delivers each one to every
// webhook destination of that account.
package datapusher

import (
	"errors"
	"fmt"
)

// Error codes. The HTTP layer maps each code to one status.
const (
	ECONFLICT     = "conflict"
	EFORBIDDEN    = "forbidden"
	EINTERNAL     = "internal"
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	EUNAUTHORIZED = "unauthorized"
	EUNAVAILABLE  = "unavailable"
)

// Error is a domain error that is safe to show to a client. Fields carries
// per-field validation messages, keyed by the JSON field name.
type Error struct {
	Code    string
	Message string
	Fields  map[string][]string
}

func (e *Error) Error() string {
	return fmt.Sprintf("datapusher: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns a validation Error for one field.
func FieldError(field, message string) *Error {
	return &Error{Code: EINVALID, Message: message, Fields: map[string][]string{field: {message}}}
}

// ErrorCode returns the code of the first Error in err's chain, EINTERNAL for
// any other error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err. Internal errors get a
// generic message so that no detail of the server leaks.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// Validation collects field errors for one request body.
type Validation struct {
	fields map[string][]string
}

// Add records a message for field.
func (v *Validation) Add(field, message string) {
	if v.fields == nil {
		v.fields = make(map[string][]string)
	}
	v.fields[field] = append(v.fields[field], message)
}

// Err returns an EINVALID Error carrying every recorded field message, or nil
// when nothing was recorded.
func (v *Validation) Err() error {
	if len(v.fields) == 0 {
		return nil
	}
	return &Error{Code: EINVALID, Message: "Invalid input.", Fields: v.fields}
}
