package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/datapusher/datapusher"
)

// MaxLogRetentionDays is the longest per-account retention period that
// SetAccountRetention accepts. 100 years keeps "now minus the period" well
// within the range of time.Duration.
const MaxLogRetentionDays = 36500

// DefaultRetentionBatchSize is the number of rows DeleteLogsBefore deletes
// per statement when it is given a batch size of zero or less.
const DefaultRetentionBatchSize = 1000

// retentionScope selects the rows that one retention period applies to: the
// rows received before cutoff that match condition, in which "?" stands for
// the next of args and "t" is the table's alias.
type retentionScope struct {
	cutoff    time.Time
	condition string
	args      []any
}

// DeleteLogsBefore deletes the delivery logs received before cutoff, with
// their attempts, then the events received before cutoff that have no
// delivery log left. For an account whose log_retention_days is set, the
// cutoff is now minus that many days instead, whether that is earlier or
// later than cutoff.
//
// Each statement deletes at most batchSize rows and commits on its own, so
// no transaction holds locks on the tables for long. DeleteLogsBefore
// returns the number of delivery logs it deleted, also when it stops on an
// error part-way; what it deleted until then stays deleted.
//
// A delivery job whose log was deleted ends without sending, because the
// delivery worker treats a missing log as deleted.
func (s *Store) DeleteLogsBefore(ctx context.Context, cutoff time.Time, batchSize int) (int, error) {
	if batchSize <= 0 {
		batchSize = DefaultRetentionBatchSize
	}
	scopes, err := s.retentionScopes(ctx, cutoff)
	if err != nil {
		return 0, err
	}

	deleted := 0
	for _, scope := range scopes {
		n, err := s.deleteInBatches(ctx, "delivery_logs", scope, "", batchSize)
		deleted += n
		if err != nil {
			return deleted, fmt.Errorf("delete delivery logs: %w", err)
		}
		_, err = s.deleteInBatches(ctx, "events", scope,
			"NOT EXISTS (SELECT 1 FROM delivery_logs l WHERE l.event_pk = t.id)", batchSize)
		if err != nil {
			return deleted, fmt.Errorf("delete events: %w", err)
		}
	}
	return deleted, nil
}

// retentionScopes returns one scope for the accounts that keep the global
// cutoff and one per account with its own retention period.
func (s *Store) retentionScopes(ctx context.Context, cutoff time.Time) ([]retentionScope, error) {
	scopes := []retentionScope{{
		cutoff: cutoff,
		condition: `NOT EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = t.account_id
			AND a.log_retention_days IS NOT NULL)`,
	}}
	rows, err := s.db.QueryContext(ctx, `SELECT account_id, log_retention_days FROM accounts
		WHERE log_retention_days IS NOT NULL ORDER BY account_id`)
	if err != nil {
		return nil, mapError(fmt.Errorf("select account retention: %w", err))
	}
	defer rows.Close()
	now := s.Now()
	for rows.Next() {
		var accountID string
		var days int
		if err := rows.Scan(&accountID, &days); err != nil {
			return nil, fmt.Errorf("scan account retention: %w", err)
		}
		scopes = append(scopes, retentionScope{
			cutoff:    now.AddDate(0, 0, -days),
			condition: "t.account_id = ?",
			args:      []any{accountID},
		})
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(fmt.Errorf("select account retention: %w", err))
	}
	return scopes, nil
}

// deleteInBatches deletes the rows of table (delivery_logs or events) in
// scope that also match extra, oldest first, batchSize rows per statement,
// and returns how many it deleted.
//
// Rows that are older than the cutoff but do not match (logs of an account
// with a longer retention period, events that still have logs) would be
// scanned again by every batch. A cursor on (received_at, id) after the last
// deleted row keeps each batch from reading them twice.
func (s *Store) deleteInBatches(ctx context.Context, table string, scope retentionScope, extra string, batchSize int) (int, error) {
	deleted := 0
	var afterTime time.Time
	var afterID string
	for {
		var w where
		w.add("t.received_at < ?", s.timeArg(scope.cutoff))
		w.add(scope.condition, scope.args...)
		if extra != "" {
			w.add(extra)
		}
		if afterID != "" {
			w.add("(t.received_at, t.id) > (?, ?)", s.timeArg(afterTime), afterID)
		}
		query := fmt.Sprintf(`DELETE FROM %[1]s WHERE id IN (SELECT t.id FROM %[1]s t%[2]s
			ORDER BY t.received_at, t.id LIMIT %[3]d) RETURNING received_at, id`, table, w.String(), batchSize)

		n, lastTime, lastID, err := s.deleteBatch(ctx, query, w.args)
		deleted += n
		if err != nil {
			return deleted, err
		}
		if n < batchSize {
			return deleted, nil
		}
		afterTime, afterID = lastTime, lastID
	}
}

// deleteBatch runs one DELETE ... RETURNING received_at, id and returns how
// many rows it deleted and the key of the last of them in (received_at, id)
// order. RETURNING gives no order, so the last key is found here.
func (s *Store) deleteBatch(ctx context.Context, query string, args []any) (int, time.Time, string, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, time.Time{}, "", mapError(err)
	}
	defer rows.Close()
	n := 0
	var lastTime time.Time
	var lastID string
	for rows.Next() {
		var receivedAt dbTime
		var id string
		if err := rows.Scan(&receivedAt, &id); err != nil {
			return n, lastTime, lastID, fmt.Errorf("scan deleted row: %w", err)
		}
		n++
		if receivedAt.Time.After(lastTime) || (receivedAt.Time.Equal(lastTime) && id > lastID) {
			lastTime, lastID = receivedAt.Time, id
		}
	}
	if err := rows.Err(); err != nil {
		return n, lastTime, lastID, mapError(err)
	}
	return n, lastTime, lastID, nil
}

// SetAccountRetention sets how many days the account's delivery logs are
// kept, overriding the global retention period, or clears the override when
// days is nil.
func (s *Store) SetAccountRetention(ctx context.Context, accountID string, days *int) error {
	if days != nil && (*days < 1 || *days > MaxLogRetentionDays) {
		return datapusher.FieldError("log_retention_days",
			fmt.Sprintf("Ensure this value is between 1 and %d, or null for the default.", MaxLogRetentionDays))
	}
	if !validID(accountID) {
		return notFound("account")
	}
	res, err := s.db.ExecContext(ctx, `UPDATE accounts SET log_retention_days = $1 WHERE account_id = $2`,
		days, accountID)
	if err != nil {
		return mapError(fmt.Errorf("update account retention: %w", err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("account")
	}
	return nil
}

// AccountRetention returns the account's retention period in days, or nil
// when the account keeps the global period.
func (s *Store) AccountRetention(ctx context.Context, accountID string) (*int, error) {
	if !validID(accountID) {
		return nil, notFound("account")
	}
	var days sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT log_retention_days FROM accounts WHERE account_id = $1`,
		accountID).Scan(&days)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("account")
	} else if err != nil {
		return nil, mapError(fmt.Errorf("select account retention: %w", err))
	}
	if !days.Valid {
		return nil, nil
	}
	v := int(days.Int64)
	return &v, nil
}
