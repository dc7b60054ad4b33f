package datapusher

import "time"

// User is a person who signs in to the management API.
type User struct {
	ID          string    `json:"id"`
	Email       string    `json:"email"`
	Username    string    `json:"username"`
	IsSuperuser bool      `json:"is_superuser"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`

	// PasswordHash is empty for a user who was invited and has not set a
	// password yet, so that no password signs them in.
	PasswordHash string `json:"-"`
}

// HasPassword reports whether the user can sign in with a password.
func (u *User) HasPassword() bool { return u.PasswordHash != "" }

// Role names, created by a migration.
const (
	RoleAdmin      = "Admin"
	RoleNormalUser = "Normal user"
)

// Role ids, fixed by the migration that creates the roles.
const (
	RoleIDAdmin      = 1
	RoleIDNormalUser = 2
)

// Role is a set of permissions a member has in an account.
type Role struct {
	ID        int       `json:"id"`
	RoleName  string    `json:"role_name"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Member is a user's membership of an account with one role.
type Member struct {
	ID        string    `json:"id"`
	AccountID string    `json:"account_id"`
	UserID    string    `json:"user_id"`
	Email     string    `json:"email"`
	RoleID    int       `json:"role_id"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	CreatedBy *string   `json:"created_by"`
	UpdatedBy *string   `json:"updated_by"`
}

// MemberFilter selects members. Nil fields do not filter.
type MemberFilter struct {
	AccountID *string
	UserID    *string
	RoleID    *int

	// VisibleTo limits the result to accounts this user is a member of,
	// unless it is empty, which lists every account for a superuser.
	VisibleTo string

	Offset, Limit int
}
