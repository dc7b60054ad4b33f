package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/datapusher/datapusher"
)

const memberColumns = `m.id, m.account_id, m.user_id, u.email, m.role_id,
	m.created_at, m.updated_at, m.created_by, m.updated_by`

const memberFrom = ` FROM account_members m JOIN users u ON u.id = m.user_id`

func scanMember(row interface{ Scan(...any) error }) (*datapusher.Member, error) {
	var m datapusher.Member
	var createdBy, updatedBy sql.NullString
	var createdAt, updatedAt dbTime
	err := row.Scan(&m.ID, &m.AccountID, &m.UserID, &m.Email, &m.RoleID,
		&createdAt, &updatedAt, &createdBy, &updatedBy)
	if err != nil {
		return nil, err
	}
	m.CreatedAt, m.UpdatedAt = createdAt.Time, updatedAt.Time
	m.CreatedBy, m.UpdatedBy = nullString(createdBy), nullString(updatedBy)
	return &m, nil
}

// Roles returns every role.
func (s *Store) Roles(ctx context.Context) ([]*datapusher.Role, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, role_name, created_at, updated_at FROM roles ORDER BY id`)
	if err != nil {
		return nil, mapError(fmt.Errorf("select roles: %w", err))
	}
	defer rows.Close()
	roles := []*datapusher.Role{}
	for rows.Next() {
		var r datapusher.Role
		var createdAt, updatedAt dbTime
		if err := rows.Scan(&r.ID, &r.RoleName, &createdAt, &updatedAt); err != nil {
			return nil, fmt.Errorf("scan role: %w", err)
		}
		r.CreatedAt, r.UpdatedAt = createdAt.Time, updatedAt.Time
		roles = append(roles, &r)
	}
	return roles, mapError(rows.Err())
}

// MemberRole returns the role id userID has in the account, or 0 when the
// user is not a member.
func (s *Store) MemberRole(ctx context.Context, accountID, userID string) (int, error) {
	if !validID(accountID) || !validID(userID) {
		return 0, nil
	}
	var roleID int
	err := s.db.QueryRowContext(ctx, `SELECT role_id FROM account_members WHERE account_id = $1 AND user_id = $2`,
		accountID, userID).Scan(&roleID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	} else if err != nil {
		return 0, mapError(fmt.Errorf("select member role: %w", err))
	}
	return roleID, nil
}

// msgInvitationPending rejects adding a user who was invited but has not
// set a password yet. Only the invitation that created the user can set its
// first password, so another account cannot obtain a second one.
const msgInvitationPending = "This user has not accepted their invitation yet; add them once they have set a password."

// Invitation is a one-time token, stored as its hash, with which a user that
// CreateMember creates sets their first password.
type Invitation struct {
	TokenHash string
	ExpiresAt time.Time
}

// CreateMember adds a user to an account. When m.UserID is empty and email
// names no user, a user without a password is created first with invite, in
// the same transaction, and created reports that, so the caller can hand the
// token out. A user without a password whose invitations have all expired
// or been used counts as no user: it is deleted with its memberships first,
// so that a new invitation never reaches the memberships of an old one.
func (s *Store) CreateMember(ctx context.Context, m *datapusher.Member, actorID string, invite *Invitation) (created bool, err error) {
	// A retried transaction sets m.UserID again, so whether the caller gave
	// an email is decided once, before the first try.
	byEmail := m.UserID == ""
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		created = false
		field := "user_id"
		nowArg := s.timeArg(s.Now())
		if byEmail {
			field = "email"
			if err := s.deleteLapsedInvitee(ctx, tx, m.Email); err != nil {
				return err
			}
			user := &datapusher.User{Email: m.Email}
			err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE email = $1`, normalizeEmail(m.Email)).Scan(&m.UserID)
			if errors.Is(err, sql.ErrNoRows) {
				if err := s.createUser(ctx, tx, user); err != nil {
					return err
				}
				m.UserID, created = user.ID, true
			} else if err != nil {
				return mapError(fmt.Errorf("select user: %w", err))
			}
		}
		if !created {
			var pending, invited bool
			err := tx.QueryRowContext(ctx, `SELECT password_hash = '', `+openInvitation+` FROM users WHERE id = $1`,
				m.UserID, nowArg).Scan(&pending, &invited)
			if err == nil && pending && invited {
				return datapusher.FieldError(field, msgInvitationPending)
			} else if err == nil && pending {
				return datapusher.FieldError(field, "This user never set a password and has no open invitation; invite them again by email.")
			} else if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return mapError(fmt.Errorf("select user: %w", err))
			}
		}
		if err := s.createMember(ctx, tx, m, actorID); err != nil || !created {
			return err
		}
		if invite == nil {
			return errors.New("create member: a new user needs an invitation")
		}
		return s.insertInvitation(ctx, tx, *invite, m.UserID, m.AccountID)
	})
	return created, err
}

func (s *Store) createMember(ctx context.Context, tx *sql.Tx, m *datapusher.Member, actorID string) error {
	m.ID = newID()
	m.CreatedAt = s.Now()
	m.UpdatedAt = m.CreatedAt
	m.CreatedBy, m.UpdatedBy = &actorID, &actorID
	err := tx.QueryRowContext(ctx, `SELECT email FROM users WHERE id = $1`, m.UserID).Scan(&m.Email)
	if errors.Is(err, sql.ErrNoRows) {
		return datapusher.FieldError("user_id", "No user has this id.")
	} else if err != nil {
		return mapError(fmt.Errorf("select user: %w", err))
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO account_members (id, account_id, user_id, role_id,
		created_at, updated_at, created_by, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		m.ID, m.AccountID, m.UserID, m.RoleID, s.timeArg(m.CreatedAt), s.timeArg(m.UpdatedAt), actorID, actorID)
	if unique, _ := isUniqueViolation(err); unique {
		return datapusher.FieldError("user_id", "This user is already a member of the account.")
	}
	if err != nil {
		return mapError(fmt.Errorf("insert member: %w", err))
	}
	return nil
}

// Member returns the membership with that id.
func (s *Store) Member(ctx context.Context, id string) (*datapusher.Member, error) {
	if !validID(id) {
		return nil, notFound("account member")
	}
	row := s.db.QueryRowContext(ctx, `SELECT `+memberColumns+memberFrom+` WHERE m.id = $1`, id)
	m, err := scanMember(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("account member")
	} else if err != nil {
		return nil, mapError(fmt.Errorf("select member: %w", err))
	}
	return m, nil
}

// Members returns one page of the memberships that match f, and how many
// match in all.
func (s *Store) Members(ctx context.Context, f datapusher.MemberFilter) ([]*datapusher.Member, int, error) {
	var w where
	w.visibleTo("m.account_id", f.VisibleTo)
	if f.AccountID != nil {
		w.add("m.account_id = ?", *f.AccountID)
	}
	if f.UserID != nil {
		w.add("m.user_id = ?", *f.UserID)
	}
	if f.RoleID != nil {
		w.add("m.role_id = ?", *f.RoleID)
	}

	var count int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*)`+memberFrom+w.String(), w.args...).Scan(&count); err != nil {
		return nil, 0, mapError(fmt.Errorf("count members: %w", err))
	}

	rows, err := s.db.QueryContext(ctx, `SELECT `+memberColumns+memberFrom+w.String()+
		` ORDER BY m.created_at, m.id`+limitOffset(f.Limit, f.Offset), w.args...)
	if err != nil {
		return nil, 0, mapError(fmt.Errorf("select members: %w", err))
	}
	defer rows.Close()
	members := []*datapusher.Member{}
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("scan member: %w", err)
		}
		members = append(members, m)
	}
	return members, count, mapError(rows.Err())
}

// ErrLastAdmin rejects a change that would leave an account without an Admin.
var ErrLastAdmin = datapusher.FieldError("role_id", "An account must keep at least one Admin who has set a password.")

// UpdateMemberRole changes a member's role. Demoting the account's last Admin
// is rejected with ErrLastAdmin.
func (s *Store) UpdateMemberRole(ctx context.Context, id string, roleID int, actorID string) (*datapusher.Member, error) {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		m, err := s.lockMember(ctx, tx, id)
		if err != nil {
			return err
		}
		if m.RoleID == datapusher.RoleIDAdmin && roleID != datapusher.RoleIDAdmin {
			if err := s.checkOtherAdmin(ctx, tx, m); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE account_members SET role_id = $1, updated_at = $2, updated_by = $3
			WHERE id = $4`, roleID, s.timeArg(s.Now()), actorID, id)
		if err != nil {
			return mapError(fmt.Errorf("update member: %w", err))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.Member(ctx, id)
}

// DeleteMember removes a membership. Removing the account's last Admin is
// rejected with ErrLastAdmin.
func (s *Store) DeleteMember(ctx context.Context, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		m, err := s.lockMember(ctx, tx, id)
		if err != nil {
			return err
		}
		if m.RoleID == datapusher.RoleIDAdmin {
			if err := s.checkOtherAdmin(ctx, tx, m); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM account_members WHERE id = $1`, id); err != nil {
			return mapError(fmt.Errorf("delete member: %w", err))
		}
		return nil
	})
}

// lockMember reads a membership for a change. It first locks the account's
// row, so that all role changes and removals in one account run one at a
// time and the last-Admin check reads a stable set of Admins.
func (s *Store) lockMember(ctx context.Context, tx *sql.Tx, id string) (*datapusher.Member, error) {
	if !validID(id) {
		return nil, notFound("account member")
	}
	var m datapusher.Member
	err := tx.QueryRowContext(ctx, `SELECT account_id FROM account_members WHERE id = $1`, id).Scan(&m.AccountID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("account member")
	} else if err != nil {
		return nil, mapError(fmt.Errorf("select member: %w", err))
	}
	_, err = tx.ExecContext(ctx, `SELECT account_id FROM accounts WHERE account_id = $1`+s.forUpdate(), m.AccountID)
	if err != nil {
		return nil, mapError(fmt.Errorf("lock account: %w", err))
	}
	err = tx.QueryRowContext(ctx, `SELECT id, role_id FROM account_members WHERE id = $1`, id).Scan(&m.ID, &m.RoleID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("account member")
	} else if err != nil {
		return nil, mapError(fmt.Errorf("select member: %w", err))
	}
	return &m, nil
}

// checkOtherAdmin returns ErrLastAdmin unless the account has an Admin other
// than m. The caller holds the account lock taken by lockMember.
func (s *Store) checkOtherAdmin(ctx context.Context, tx *sql.Tx, m *datapusher.Member) error {
	// An invited Admin who has not set a password cannot act, and the
	// invitation may never be accepted, so only Admins who can sign in count.
	rows, err := tx.QueryContext(ctx, `SELECT m.id FROM account_members m JOIN users u ON u.id = m.user_id
		WHERE m.account_id = $1 AND m.role_id = $2 AND u.password_hash <> ''`,
		m.AccountID, datapusher.RoleIDAdmin)
	if err != nil {
		return mapError(fmt.Errorf("select admins: %w", err))
	}
	defer rows.Close()
	others := 0
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("scan admin: %w", err)
		}
		if id != m.ID {
			others++
		}
	}
	if err := rows.Err(); err != nil {
		return mapError(err)
	}
	if others == 0 {
		return ErrLastAdmin
	}
	return nil
}
