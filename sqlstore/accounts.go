package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/datapusher/datapusher"
)

const accountColumns = `account_id, account_name, email, website, rate_limit_per_second,
	created_at, updated_at, created_by, updated_by`

// AccountOrderings maps the accepted ordering names of account lists to columns.
var AccountOrderings = map[string]string{
	"account_name": "account_name", "created_at": "created_at", "updated_at": "updated_at",
}

// scanAccount reads the columns of accountColumns, then any extra columns
// into extra.
func scanAccount(row interface{ Scan(...any) error }, extra ...any) (*datapusher.Account, error) {
	var a datapusher.Account
	var email, website, createdBy, updatedBy sql.NullString
	var rateLimit sql.NullInt64
	var createdAt, updatedAt dbTime
	err := row.Scan(append([]any{&a.AccountID, &a.AccountName, &email, &website, &rateLimit,
		&createdAt, &updatedAt, &createdBy, &updatedBy}, extra...)...)
	if err != nil {
		return nil, err
	}
	a.Email, a.Website = nullString(email), nullString(website)
	a.CreatedBy, a.UpdatedBy = nullString(createdBy), nullString(updatedBy)
	if rateLimit.Valid {
		v := int(rateLimit.Int64)
		a.RateLimitPerSecond = &v
	}
	a.CreatedAt, a.UpdatedAt = createdAt.Time, updatedAt.Time
	return &a, nil
}

func nullString(v sql.NullString) *string {
	if !v.Valid {
		return nil
	}
	return &v.String
}

// CreateAccount inserts a, storing tokenHash as the hash of its app secret
// token, and makes the creator the account's first Admin in the same
// transaction.
func (s *Store) CreateAccount(ctx context.Context, a *datapusher.Account, tokenHash, creatorID string) error {
	a.AccountID = newID()
	a.CreatedAt = s.Now()
	a.UpdatedAt = a.CreatedAt
	a.CreatedBy, a.UpdatedBy = &creatorID, &creatorID
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO accounts (`+accountColumns+`, token_hash)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			a.AccountID, a.AccountName, a.Email, a.Website, a.RateLimitPerSecond,
			s.timeArg(a.CreatedAt), s.timeArg(a.UpdatedAt), creatorID, creatorID, tokenHash)
		if err := accountWriteError(err); err != nil {
			return err
		}
		member := &datapusher.Member{AccountID: a.AccountID, UserID: creatorID, RoleID: datapusher.RoleIDAdmin}
		return s.createMember(ctx, tx, member, creatorID)
	})
}

func accountWriteError(err error) error {
	if err == nil {
		return nil
	}
	if unique, _ := isUniqueViolation(err); unique {
		return datapusher.FieldError("email", "An account with this email already exists.")
	}
	return mapError(fmt.Errorf("write account: %w", err))
}

// Account returns the account with that id.
func (s *Store) Account(ctx context.Context, id string) (*datapusher.Account, error) {
	if !validID(id) {
		return nil, notFound("account")
	}
	row := s.db.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE account_id = $1`, id)
	a, err := scanAccount(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("account")
	} else if err != nil {
		return nil, mapError(fmt.Errorf("select account: %w", err))
	}
	return a, nil
}

// Accounts returns one page of the accounts that match f, and how many match
// in all.
func (s *Store) Accounts(ctx context.Context, f datapusher.AccountFilter) ([]*datapusher.Account, int, error) {
	var w where
	w.visibleTo("account_id", f.VisibleTo)
	if f.Search != nil {
		pattern := likePattern(*f.Search)
		w.add(`(lower(account_name) LIKE ? ESCAPE '\' OR lower(coalesce(email, '')) LIKE ? ESCAPE '\'
			OR lower(coalesce(website, '')) LIKE ? ESCAPE '\')`, pattern, pattern, pattern)
	}
	if f.CreatedAtGTE != nil {
		w.add("created_at >= ?", s.timeArg(*f.CreatedAtGTE))
	}
	if f.CreatedAtLTE != nil {
		w.add("created_at <= ?", s.timeArg(*f.CreatedAtLTE))
	}
	order, err := orderBy(f.Ordering, "-created_at", AccountOrderings, "account_id")
	if err != nil {
		return nil, 0, datapusher.FieldError("ordering", err.Error())
	}

	var count int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM accounts`+w.String(), w.args...).Scan(&count); err != nil {
		return nil, 0, mapError(fmt.Errorf("count accounts: %w", err))
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+accountColumns+` FROM accounts`+w.String()+order+
		limitOffset(f.Limit, f.Offset), w.args...)
	if err != nil {
		return nil, 0, mapError(fmt.Errorf("select accounts: %w", err))
	}
	defer rows.Close()
	accounts := []*datapusher.Account{}
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("scan account: %w", err)
		}
		accounts = append(accounts, a)
	}
	return accounts, count, mapError(rows.Err())
}

// UpdateAccount writes the editable fields of a.
func (s *Store) UpdateAccount(ctx context.Context, a *datapusher.Account, userID string) error {
	a.UpdatedAt = s.Now()
	a.UpdatedBy = &userID
	res, err := s.db.ExecContext(ctx, `UPDATE accounts SET account_name = $1, email = $2, website = $3,
		rate_limit_per_second = $4, updated_at = $5, updated_by = $6 WHERE account_id = $7`,
		a.AccountName, a.Email, a.Website, a.RateLimitPerSecond, s.timeArg(a.UpdatedAt), userID, a.AccountID)
	if err := accountWriteError(err); err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("account")
	}
	return nil
}

// DeleteAccount deletes the account with its members, destinations, events
// and delivery logs.
func (s *Store) DeleteAccount(ctx context.Context, id string) error {
	if !validID(id) {
		return notFound("account")
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM accounts WHERE account_id = $1`, id)
		if err != nil {
			return mapError(fmt.Errorf("delete account: %w", err))
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("account")
		}
		return nil
	})
}

// RotateAccountToken replaces the account's token hash. For grace > 0 the
// old token keeps working until that much time has passed.
func (s *Store) RotateAccountToken(ctx context.Context, id, newHash string, grace time.Duration, userID string) error {
	if !validID(id) {
		return notFound("account")
	}
	now := s.Now()
	query := `UPDATE accounts SET previous_token_hash = NULL, previous_token_expires_at = NULL,
		token_hash = $1, updated_at = $2, updated_by = $3 WHERE account_id = $4`
	args := []any{newHash, s.timeArg(now), userID, id}
	if grace > 0 {
		query = `UPDATE accounts SET previous_token_hash = token_hash, previous_token_expires_at = $5,
			token_hash = $1, updated_at = $2, updated_by = $3 WHERE account_id = $4`
		args = append(args, s.timeArg(now.Add(grace)))
	}
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return mapError(fmt.Errorf("rotate account token: %w", err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("account")
	}
	return nil
}

// AccountByTokenHash returns the account whose current token, or previous
// token within its grace period, has that hash, and when that token stops
// working: the end of the grace period for a previous token, nil for the
// current one.
func (s *Store) AccountByTokenHash(ctx context.Context, tokenHash string) (*datapusher.Account, *time.Time, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+accountColumns+`, NULL FROM accounts WHERE token_hash = $1
		UNION ALL
		SELECT `+accountColumns+`, previous_token_expires_at FROM accounts
		WHERE previous_token_hash = $1 AND previous_token_expires_at > $2
		LIMIT 1`, tokenHash, s.timeArg(s.Now()))
	var until dbTime
	a, err := scanAccount(row, &until)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, datapusher.Errorf(datapusher.EUNAUTHORIZED, "Unauthenticated")
	} else if err != nil {
		return nil, nil, mapError(fmt.Errorf("select account by token: %w", err))
	}
	return a, until.ptr(), nil
}

// AccountTokenHashes returns the account's current and previous token hashes, for tests
// and tools that check what is stored.
func (s *Store) AccountTokenHashes(ctx context.Context, id string) (current string, previous sql.NullString, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT token_hash, previous_token_hash FROM accounts WHERE account_id = $1`, id).
		Scan(&current, &previous)
	return current, previous, err
}
