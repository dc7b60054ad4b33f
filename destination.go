package datapusher

import "time"

// Destination is a webhook endpoint of an account. Every event of the
// account is delivered to each of its enabled destinations.
type Destination struct {
	ID             string            `json:"id"`
	AccountID      string            `json:"account_id"`
	URL            string            `json:"url"`
	HTTPMethod     string            `json:"http_method"`
	Headers        map[string]string `json:"headers"`
	Enabled        bool              `json:"enabled"`
	DisabledReason string            `json:"disabled_reason"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
	CreatedBy      *string           `json:"created_by"`
	UpdatedBy      *string           `json:"updated_by"`

	// SigningSecret signs every delivery (Standard Webhooks). While
	// PreviousSigningSecretExpiresAt is in the future the previous secret
	// signs too, so receivers can roll over.
	SigningSecret                  string     `json:"signing_secret,omitempty"`
	PreviousSigningSecret          string     `json:"-"`
	PreviousSigningSecretExpiresAt *time.Time `json:"-"`
}

// SigningSecrets returns the secrets that sign a delivery made at now.
func (d *Destination) SigningSecrets(now time.Time) []string {
	secrets := []string{d.SigningSecret}
	if d.PreviousSigningSecret != "" && d.PreviousSigningSecretExpiresAt != nil &&
		now.Before(*d.PreviousSigningSecretExpiresAt) {
		secrets = append(secrets, d.PreviousSigningSecret)
	}
	return secrets
}

// DestinationFilter selects destinations. Nil fields do not filter.
type DestinationFilter struct {
	AccountID  *string
	HTTPMethod *string
	Search     *string
	Ordering   string

	// VisibleTo limits the result to accounts this user is a member of,
	// unless it is empty, which lists every account for a superuser.
	VisibleTo string

	Offset, Limit int
}

// HTTP methods a destination may use.
var DestinationMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
