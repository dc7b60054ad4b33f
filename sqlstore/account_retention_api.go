package sqlstore

import (
	"context"
	"fmt"
	"strings"
)

// AccountRetentions returns the log retention period in days of each of the
// given accounts that has its own, keyed by account id. Accounts that keep
// the global period and ids that name no account are absent. It runs one
// query whatever the number of ids, so a page of accounts costs the same as
// one account. Pass at most one page of ids: each id is a bind parameter,
// and PostgreSQL takes at most 65535 of them, SQLite (3.32 and later) 32766.
func (s *Store) AccountRetentions(ctx context.Context, accountIDs []string) (map[string]int, error) {
	days := make(map[string]int)
	var w where
	var placeholders []string
	for _, id := range accountIDs {
		if validID(id) {
			placeholders = append(placeholders, w.arg(id))
		}
	}
	if len(placeholders) == 0 {
		return days, nil
	}

	rows, err := s.db.QueryContext(ctx, `SELECT account_id, log_retention_days FROM accounts
		WHERE log_retention_days IS NOT NULL AND account_id IN (`+strings.Join(placeholders, ", ")+`)`,
		w.args...)
	if err != nil {
		return nil, mapError(fmt.Errorf("select account retentions: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		var accountID string
		var n int
		if err := rows.Scan(&accountID, &n); err != nil {
			return nil, fmt.Errorf("scan account retention: %w", err)
		}
		days[accountID] = n
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(fmt.Errorf("select account retentions: %w", err))
	}
	return days, nil
}
