package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/sqlstore"
)

// Validation messages of Django REST Framework, which clients may match.
const (
	msgRequired = "This field is required."
	msgNotNull  = "This field may not be null."
	msgBlank    = "This field may not be blank."

	msgNullCharacter = "Null characters are not allowed."

	msgInvalidTime = "Enter a valid date/time in RFC 3339 format, such as 2026-01-02T15:04:05Z."
	msgTimeRange   = "Enter a time from year 1 to year 9999 in UTC."
)

// form is a JSON object request body whose fields are decoded one at a time,
// so that each field's error is reported under its name and a PATCH can tell
// a missing field from a null one. Unknown fields are ignored.
type form struct {
	raw    map[string]json.RawMessage
	errors datapusher.Validation
}

// presence is whether a field was missing, null or set.
type presence int

const (
	absent presence = iota
	null
	set
)

// readForm reads the request body, at most Config.MaxBodyBytes of it, as
// a JSON object. An empty body is an empty object.
func (s *Server) readForm(w http.ResponseWriter, r *http.Request) (*form, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, datapusher.Errorf(codeTooLarge, "Request body is larger than %d bytes.", tooLarge.Limit)
	} else if err != nil {
		return nil, invalid("Could not read the request body.")
	}
	return parseForm(body)
}

// parseForm parses body as a JSON object.
func parseForm(body []byte) (*form, error) {
	f := &form{raw: map[string]json.RawMessage{}}
	if len(bytes.TrimSpace(body)) == 0 {
		return f, nil
	}
	if err := json.Unmarshal(body, &f.raw); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, datapusher.FieldError("non_field_errors",
				fmt.Sprintf("Invalid data. Expected a dictionary, but got %s.", typeErr.Value))
		}
		return nil, invalid("JSON parse error - " + err.Error())
	}
	if f.raw == nil {
		return nil, datapusher.FieldError("non_field_errors", "Invalid data. Expected a dictionary, but got null.")
	}
	return f, nil
}

// has reports whether the body contains the field, null or not.
func (f *form) has(name string) bool {
	_, ok := f.raw[name]
	return ok
}

// field decodes the named field into dst, recording typeMessage when the
// value has the wrong JSON type. Null leaves dst unchanged.
func (f *form) field(name string, dst any, typeMessage string) presence {
	raw, ok := f.raw[name]
	if !ok {
		return absent
	}
	if string(bytes.TrimSpace(raw)) == "null" {
		return null
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		f.errors.Add(name, typeMessage)
		return absent
	}
	return set
}

// string returns a string field that may not be null. required records an
// error when the field is missing.
func (f *form) string(name string, required bool) (string, bool) {
	var v string
	switch f.field(name, &v, "Not a valid string.") {
	case set:
		if strings.IndexByte(v, 0) >= 0 {
			f.errors.Add(name, msgNullCharacter)
			return "", false
		}
		return v, true
	case null:
		f.errors.Add(name, msgNotNull)
	case absent:
		if required && !f.has(name) {
			f.errors.Add(name, msgRequired)
		}
	}
	return "", false
}

// nullableString returns a string field that may be null. The pointer is
// nil for null, and ok is false when the field is missing or invalid.
func (f *form) nullableString(name string) (value *string, ok bool) {
	var v string
	switch f.field(name, &v, "Not a valid string.") {
	case set:
		if strings.IndexByte(v, 0) >= 0 {
			f.errors.Add(name, msgNullCharacter)
			return nil, false
		}
		return &v, true
	case null:
		return nil, true
	}
	return nil, false
}

// int returns an integer field that may not be null.
func (f *form) int(name string, required bool) (int, bool) {
	var v int
	switch f.field(name, &v, "A valid integer is required.") {
	case set:
		return v, true
	case null:
		f.errors.Add(name, msgNotNull)
	case absent:
		if required && !f.has(name) {
			f.errors.Add(name, msgRequired)
		}
	}
	return 0, false
}

// nullableInt returns an integer field that may be null.
func (f *form) nullableInt(name string) (value *int, ok bool) {
	var v int
	switch f.field(name, &v, "A valid integer is required.") {
	case set:
		return &v, true
	case null:
		return nil, true
	}
	return nil, false
}

// bool returns a boolean field that may not be null.
func (f *form) bool(name string) (bool, bool) {
	var v bool
	switch f.field(name, &v, "Must be a valid boolean.") {
	case set:
		return v, true
	case null:
		f.errors.Add(name, msgNotNull)
	}
	return false, false
}

// time returns an RFC 3339 timestamp field that may not be null, in UTC,
// or nil when it is missing or invalid.
func (f *form) time(name string, required bool) *time.Time {
	v, ok := f.string(name, required)
	if !ok {
		return nil
	}
	t, msg := parseTime(v)
	if msg != "" {
		f.errors.Add(name, msg)
		return nil
	}
	return &t
}

// parseTime parses an RFC 3339 timestamp within the stores' range and
// returns it in UTC, or the validation message for v.
func parseTime(v string) (time.Time, string) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, msgInvalidTime
	}
	if !sqlstore.TimeInRange(t) {
		return time.Time{}, msgTimeRange
	}
	return t.UTC(), ""
}

// err returns the recorded validation errors, or nil.
func (f *form) err() error { return f.errors.Err() }
