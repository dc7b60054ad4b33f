package httpapi

import (
	"fmt"
	"net/mail"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/datapusher/datapusher"
)

// Length limits of text fields, from the columns of the Django models.
const (
	maxEmailLength    = 254
	maxNameLength     = 255
	maxUsernameLength = 150
	maxWebsiteLength  = 200
	maxURLLength      = 2048

	// minPasswordLength and maxPasswordBytes bound passwords. bcrypt reads
	// at most 72 bytes, so a longer password is rejected instead of being
	// cut silently.
	minPasswordLength = 8
	maxPasswordBytes  = 72
)

// validateEmail returns the message for an invalid email address, or "".
func validateEmail(email string) string {
	if len(email) > maxEmailLength {
		return fmt.Sprintf("Ensure this field has no more than %d characters.", maxEmailLength)
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Name != "" || addr.Address != email {
		return "Enter a valid email address."
	}
	_, domain, _ := strings.Cut(email, "@")
	if !strings.Contains(strings.Trim(domain, "."), ".") {
		return "Enter a valid email address."
	}
	return ""
}

// validatePassword records the rules a new password breaks.
func validatePassword(v *datapusher.Validation, password, email string) {
	if utf8.RuneCountInString(password) < minPasswordLength {
		v.Add("password", fmt.Sprintf("This password is too short. It must contain at least %d characters.", minPasswordLength))
	}
	if len(password) > maxPasswordBytes {
		v.Add("password", fmt.Sprintf("This password is too long. It must contain at most %d bytes.", maxPasswordBytes))
	}
	if password != "" && strings.Trim(password, "0123456789") == "" {
		v.Add("password", "This password is entirely numeric.")
	}
	if email != "" && strings.EqualFold(password, email) {
		v.Add("password", "The password is too similar to the email.")
	}
}

// validateHTTPURL returns the message for a URL that is not an absolute
// http or https URL with a host, or "".
func validateHTTPURL(raw string, maxLength int) string {
	if len(raw) > maxLength {
		return fmt.Sprintf("Ensure this field has no more than %d characters.", maxLength)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return "Enter a valid URL."
	}
	if scheme := strings.ToLower(u.Scheme); scheme != "http" && scheme != "https" {
		return "Enter a valid URL with the http or https scheme."
	}
	if strings.ContainsAny(raw, " \t\r\n\x00") {
		return "Enter a valid URL."
	}
	return ""
}

// validateName records the message for an empty or too long name.
func validateName(v *datapusher.Validation, field, name string) {
	if strings.TrimSpace(name) == "" {
		v.Add(field, msgBlank)
	} else if utf8.RuneCountInString(name) > maxNameLength {
		v.Add(field, fmt.Sprintf("Ensure this field has no more than %d characters.", maxNameLength))
	}
}
