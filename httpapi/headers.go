package httpapi

import (
	"fmt"
	"sort"
	"strings"
)

// Limits of a destination's custom headers.
const (
	maxHeaders           = 50
	maxHeaderNameLength  = 256
	maxHeaderValueLength = 4096
)

// reservedHeaders are header names, in lower case, that destinations may
// not set: the HTTP client sets the framing ones, and the delivery worker
// sets the event id and the Standard Webhooks signature headers.
var reservedHeaders = map[string]bool{
	"host":              true,
	"content-length":    true,
	"transfer-encoding": true,
	"connection":        true,
	"cl-x-event-id":     true,
	"webhook-id":        true,
	"webhook-timestamp": true,
	"webhook-signature": true,
}

// validateHeaders returns one message per invalid header, in name order.
// A name must be an RFC 7230 token, not reserved and not repeated in another
// case. A value must not contain control characters, because CR or LF could
// end the header early.
func validateHeaders(headers map[string]string) []string {
	if len(headers) > maxHeaders {
		return []string{fmt.Sprintf("Ensure there are no more than %d headers.", maxHeaders)}
	}
	names := make([]string, 0, len(headers))
	for name := range headers {
		names = append(names, name)
	}
	sort.Strings(names)

	var messages []string
	seen := map[string]bool{}
	for _, name := range names {
		if msg := validateHeader(name, headers[name]); msg != "" {
			messages = append(messages, msg)
		}

		// Header names are case-insensitive, so "X-A" and "x-a" would be
		// sent as one header with two values.
		lower := strings.ToLower(name)
		if seen[lower] {
			messages = append(messages, fmt.Sprintf("Header %q is given more than once; header names are case-insensitive.", name))
		}
		seen[lower] = true
	}
	return messages
}

func validateHeader(name, value string) string {
	switch {
	case name == "" || len(name) > maxHeaderNameLength || !isToken(name):
		return fmt.Sprintf("Header name %q is not a valid HTTP header name.", truncate(name, 64))
	case reservedHeaders[strings.ToLower(name)]:
		return fmt.Sprintf("Header %q is set by Data Pusher and cannot be overridden.", name)
	case len(value) > maxHeaderValueLength:
		return fmt.Sprintf("The value of header %q is longer than %d bytes.", name, maxHeaderValueLength)
	case hasControlCharacter(value):
		return fmt.Sprintf("The value of header %q must not contain control characters such as CR, LF or NUL.", name)
	}
	return ""
}

// hasControlCharacter reports whether a header value contains a character
// that RFC 7230 does not allow in a field value: an ASCII control character
// other than horizontal tab. net/http rejects such values when it sends.
func hasControlCharacter(value string) bool {
	for i := 0; i < len(value); i++ {
		if c := value[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return true
		}
	}
	return false
}

// isToken reports whether s is an RFC 7230 token: one or more of the
// visible ASCII characters other than separators.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return s != ""
}

// truncate shortens s to at most n bytes for use in a message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
