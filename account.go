package datapusher

import "time"

// Account is a tenant: the owner of destinations and events. Senders
// authenticate with the account's app secret token.
type Account struct {
	AccountID          string    `json:"account_id"`
	AccountName        string    `json:"account_name"`
	Email              *string   `json:"email"`
	Website            *string   `json:"website"`
	RateLimitPerSecond *int      `json:"rate_limit_per_second"`
	CreatedAt          time.Time `json:"created_at"`
	UpdatedAt          time.Time `json:"updated_at"`
	CreatedBy          *string   `json:"created_by"`
	UpdatedBy          *string   `json:"updated_by"`

	// AppSecretToken is set only right after the token was generated, in
	// the responses that create the account or rotate its token. The store
	// keeps only its SHA-256 hash.
	AppSecretToken string `json:"app_secret_token,omitempty"`
}

// AccountFilter selects accounts. Nil fields do not filter.
type AccountFilter struct {
	Search       *string
	CreatedAtGTE *time.Time
	CreatedAtLTE *time.Time
	Ordering     string

	// VisibleTo limits the result to accounts this user is a member of,
	// unless it is empty, which lists every account for a superuser.
	VisibleTo string

	Offset, Limit int
}
