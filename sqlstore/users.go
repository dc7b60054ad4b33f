package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/datapusher/datapusher"
)

const userColumns = `id, email, username, password_hash, is_superuser, created_at, updated_at`

func scanUser(row interface{ Scan(...any) error }) (*datapusher.User, error) {
	var u datapusher.User
	var createdAt, updatedAt dbTime
	if err := row.Scan(&u.ID, &u.Email, &u.Username, &u.PasswordHash, &u.IsSuperuser, &createdAt, &updatedAt); err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt = createdAt.Time, updatedAt.Time
	return &u, nil
}

// CreateUser inserts u, filling its id and timestamps. The email is stored in
// lower case; a second user with the same email is rejected. An invited user
// without a password whose invitations have all expired or been used gives
// way: it is deleted with its memberships and invitations, and u joins none
// of those accounts. An open invitation keeps the email for its invitee.
func (s *Store) CreateUser(ctx context.Context, u *datapusher.User) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.deleteLapsedInvitee(ctx, tx, u.Email); err != nil {
			return err
		}
		var invited bool
		err := tx.QueryRowContext(ctx, `SELECT password_hash = '' FROM users WHERE email = $1`,
			normalizeEmail(u.Email)).Scan(&invited)
		if err == nil && invited {
			return datapusher.FieldError("email",
				"This email has an open invitation to an account; accept it, or register after it expires.")
		} else if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return mapError(fmt.Errorf("select user: %w", err))
		}
		return s.createUser(ctx, tx, u)
	})
}

// openInvitation is a condition on a row of users: the user has an
// invitation that is neither used nor expired at the time bound to $2.
const openInvitation = `EXISTS (SELECT 1 FROM invitations i
	WHERE i.user_id = users.id AND i.used_at IS NULL AND i.expires_at > $2)`

// deleteLapsedInvitee deletes the user with email if it never set a
// password and has no open invitation, with its memberships and invitations.
func (s *Store) deleteLapsedInvitee(ctx context.Context, tx *sql.Tx, email string) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM users WHERE email = $1 AND password_hash = '' AND NOT `+openInvitation,
		normalizeEmail(email), s.timeArg(s.Now()))
	if err != nil {
		return mapError(fmt.Errorf("delete invited user: %w", err))
	}
	return nil
}

func (s *Store) createUser(ctx context.Context, tx *sql.Tx, u *datapusher.User) error {
	u.ID = newID()
	u.Email = normalizeEmail(u.Email)
	u.CreatedAt = s.Now()
	u.UpdatedAt = u.CreatedAt
	_, err := tx.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		u.ID, u.Email, u.Username, u.PasswordHash, u.IsSuperuser, s.timeArg(u.CreatedAt), s.timeArg(u.UpdatedAt))
	if unique, _ := isUniqueViolation(err); unique {
		return datapusher.FieldError("email", "A user with this email already exists.")
	}
	if err != nil {
		return mapError(fmt.Errorf("insert user: %w", err))
	}
	return nil
}

// UserByEmail returns the user with that email, compared case-insensitively.
func (s *Store) UserByEmail(ctx context.Context, email string) (*datapusher.User, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`,
		strings.ToLower(strings.TrimSpace(email)))
	return s.userFromRow(row)
}

// UserByID returns the user with that id.
func (s *Store) UserByID(ctx context.Context, id string) (*datapusher.User, error) {
	if !validID(id) {
		return nil, notFound("user")
	}
	row := s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id)
	return s.userFromRow(row)
}

func (s *Store) userFromRow(row *sql.Row) (*datapusher.User, error) {
	u, err := scanUser(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("user")
	} else if err != nil {
		return nil, mapError(fmt.Errorf("select user: %w", err))
	}
	return u, nil
}

// SetSuperuser creates a superuser, or makes an existing user with that email
// a superuser and sets their password. An invited user without a password is
// replaced, with its memberships and invitations, so that the superuser joins
// no account through an invitation made for someone else.
func (s *Store) SetSuperuser(ctx context.Context, email, passwordHash string) (*datapusher.User, error) {
	var user *datapusher.User
	email = normalizeEmail(email)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		user = nil
		_, err := tx.ExecContext(ctx, `DELETE FROM users WHERE email = $1 AND password_hash = ''`, email)
		if err != nil {
			return mapError(fmt.Errorf("delete invited user: %w", err))
		}
		res, err := tx.ExecContext(ctx, `UPDATE users SET is_superuser = $1, password_hash = $2, updated_at = $3
			WHERE email = $4`, true, passwordHash, s.timeArg(s.Now()), email)
		if err != nil {
			return mapError(fmt.Errorf("update user: %w", err))
		}
		if n, _ := res.RowsAffected(); n == 0 {
			user = &datapusher.User{Email: email, PasswordHash: passwordHash, IsSuperuser: true}
			return s.createUser(ctx, tx, user)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if user != nil {
		return user, nil
	}
	return s.UserByEmail(ctx, email)
}

// CreateRefreshToken records an issued refresh token so it can be revoked.
func (s *Store) CreateRefreshToken(ctx context.Context, jti, userID string, expiresAt time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO refresh_tokens (jti, user_id, expires_at) VALUES ($1, $2, $3)`,
		jti, userID, s.timeArg(expiresAt))
	if err != nil {
		return mapError(fmt.Errorf("insert refresh token: %w", err))
	}
	return nil
}

// RefreshTokenActive reports whether the refresh token with that id was
// issued to userID, is not revoked and has not expired.
func (s *Store) RefreshTokenActive(ctx context.Context, jti, userID string) (bool, error) {
	var count int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM refresh_tokens
		WHERE jti = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3`,
		jti, userID, s.timeArg(s.Now())).Scan(&count)
	if err != nil {
		return false, mapError(fmt.Errorf("select refresh token: %w", err))
	}
	return count > 0, nil
}

// RevokeRefreshToken marks a refresh token revoked. It returns false when no
// active token has that id.
func (s *Store) RevokeRefreshToken(ctx context.Context, jti, userID string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = $1
		WHERE jti = $2 AND user_id = $3 AND revoked_at IS NULL AND expires_at > $1`,
		s.timeArg(s.Now()), jti, userID)
	if err != nil {
		return false, mapError(fmt.Errorf("revoke refresh token: %w", err))
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// CreateInvitation stores the hash of a one-time invitation token for user.
func (s *Store) CreateInvitation(ctx context.Context, tokenHash, userID, accountID string, expiresAt time.Time) error {
	return s.insertInvitation(ctx, s.db, Invitation{TokenHash: tokenHash, ExpiresAt: expiresAt}, userID, accountID)
}

// execer runs a statement on the connection pool or in a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// insertInvitation stores invite for user and account through db.
func (s *Store) insertInvitation(ctx context.Context, db execer, invite Invitation, userID, accountID string) error {
	_, err := db.ExecContext(ctx, `INSERT INTO invitations (token_hash, user_id, account_id, expires_at, created_at)
		VALUES ($1, $2, $3, $4, $5)`, invite.TokenHash, userID, accountID, s.timeArg(invite.ExpiresAt), s.timeArg(s.Now()))
	if err != nil {
		return mapError(fmt.Errorf("insert invitation: %w", err))
	}
	return nil
}

// AcceptInvitation sets the password of the invited user and uses up every
// open invitation of that user. An unknown, used or expired token is
// rejected, and so is any token once the user has a password, so an
// invitation can only ever set a user's first password.
func (s *Store) AcceptInvitation(ctx context.Context, tokenHash, passwordHash string) (*datapusher.User, error) {
	var userID string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		nowArg := s.timeArg(s.Now())
		err := tx.QueryRowContext(ctx, `UPDATE invitations SET used_at = $1
			WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING user_id`,
			nowArg, tokenHash).Scan(&userID)
		if errors.Is(err, sql.ErrNoRows) {
			return datapusher.FieldError("token", "Invalid or expired invitation token.")
		} else if err != nil {
			return mapError(fmt.Errorf("use invitation: %w", err))
		}
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = $1, updated_at = $2
			WHERE id = $3 AND password_hash = ''`, passwordHash, nowArg, userID)
		if err != nil {
			return mapError(fmt.Errorf("set password: %w", err))
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return datapusher.FieldError("token", "Invalid or expired invitation token.")
		}
		_, err = tx.ExecContext(ctx, `UPDATE invitations SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL`,
			nowArg, userID)
		if err != nil {
			return mapError(fmt.Errorf("use other invitations: %w", err))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.UserByID(ctx, userID)
}

func normalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }
