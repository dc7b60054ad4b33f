package sqlstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/internal/testdb"
	"github.com/datapusher/datapusher/sqlstore"
)

// insertEventAt stores an event of account received at the given time, with
// one pending log per destination.
func insertEventAt(t *testing.T, store *sqlstore.Store, account *datapusher.Account, eventID string,
	receivedAt time.Time, destinations ...*datapusher.Destination) *sqlstore.NewEvent {
	t.Helper()
	event := &sqlstore.NewEvent{
		Event: &datapusher.Event{
			AccountID: account.AccountID, EventID: eventID, Body: json.RawMessage(`{"n":1}`), ReceivedAt: receivedAt,
		},
		Destinations: destinations,
	}
	require.NoError(t, store.InsertEvents(context.Background(), []*sqlstore.NewEvent{event}, nil))
	require.False(t, event.Duplicate)
	return event
}

// recordAttempt stores one attempt of the log that moves it to status.
func recordAttempt(t *testing.T, store *sqlstore.Store, logID, status string, final bool) {
	t.Helper()
	attempt := &datapusher.Attempt{StartedAt: store.Now(), RequestURL: "https://example.test/hook"}
	outcome := sqlstore.AttemptOutcome{Attempt: attempt, Status: status, Final: final}
	require.NoError(t, store.RecordAttempt(context.Background(), logID, outcome))
}

// logIDs returns the ids of every delivery log of the account.
func logIDs(t *testing.T, store *sqlstore.Store, accountID string) []string {
	t.Helper()
	page, err := store.Logs(context.Background(), datapusher.LogFilter{AccountID: &accountID, Limit: 1000})
	require.NoError(t, err)
	require.Nil(t, page.Next)
	ids := []string{}
	for _, l := range page.Logs {
		ids = append(ids, l.ID)
	}
	return ids
}

// eventIDs returns the event ids of every stored event of the account.
func eventIDs(t *testing.T, store *sqlstore.Store, accountID string) []string {
	t.Helper()
	return queryStrings(t, store, `SELECT event_id FROM events WHERE account_id = $1`, accountID)
}

// queryStrings returns the one text column of every row that query returns.
func queryStrings(t testing.TB, store *sqlstore.Store, query string, args ...any) []string {
	t.Helper()
	rows, err := store.DB().Query(query, args...)
	require.NoError(t, err)
	defer rows.Close()
	values := []string{}
	for rows.Next() {
		var value string
		require.NoError(t, rows.Scan(&value))
		values = append(values, value)
	}
	require.NoError(t, rows.Err())
	return values
}

func logIDsOf(events ...*sqlstore.NewEvent) []string {
	ids := []string{}
	for _, event := range events {
		for _, l := range event.Logs {
			ids = append(ids, l.ID)
		}
	}
	return ids
}

func TestDeleteLogsBefore(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	daysAgo := func(days int) time.Time { return now.AddDate(0, 0, -days) }
	cutoff := daysAgo(30)

	for _, dialect := range testdb.Dialects {
		for _, batchSize := range []int{1, 3, 1000} {
			t.Run(fmt.Sprintf("%s/Batch%d", dialect, batchSize), func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				store := testdb.Open(t, dialect)
				store.Now = func() time.Time { return now }
				owner := createUser(t, store, "owner@example.com")

				// Account global keeps the global 30 days, account long keeps
				// 90 and account short keeps 5.
				global := createAccount(t, store, owner, "Global")
				long := createAccount(t, store, owner, "Long")
				short := createAccount(t, store, owner, "Short")
				require.NoError(t, store.SetAccountRetention(ctx, long.AccountID, new(90)))
				require.NoError(t, store.SetAccountRetention(ctx, short.AccountID, new(5)))
				globalDests := []*datapusher.Destination{
					createDestination(t, store, global, "POST"), createDestination(t, store, global, "GET"),
				}
				longDests := []*datapusher.Destination{createDestination(t, store, long, "POST")}
				shortDests := []*datapusher.Destination{
					createDestination(t, store, short, "POST"), createDestination(t, store, short, "PUT"),
				}

				globalOld := []*sqlstore.NewEvent{
					insertEventAt(t, store, global, "g60", daysAgo(60), globalDests...),
					insertEventAt(t, store, global, "g40", daysAgo(40), globalDests...),
					insertEventAt(t, store, global, "g31", daysAgo(31), globalDests...),
					insertEventAt(t, store, global, "g30", cutoff.Add(-time.Microsecond), globalDests...),
				}
				insertEventAt(t, store, global, "g45-no-destinations", daysAgo(45))
				globalNew := []*sqlstore.NewEvent{
					insertEventAt(t, store, global, "g-cutoff", cutoff, globalDests...),
					insertEventAt(t, store, global, "g29", daysAgo(29), globalDests...),
					insertEventAt(t, store, global, "g1", daysAgo(1), globalDests...),
				}
				insertEventAt(t, store, global, "g10-no-destinations", daysAgo(10))

				insertEventAt(t, store, long, "l100", daysAgo(100), longDests...)
				longNew := []*sqlstore.NewEvent{
					insertEventAt(t, store, long, "l60", daysAgo(60), longDests...),
					insertEventAt(t, store, long, "l35", daysAgo(35), longDests...),
				}
				insertEventAt(t, store, long, "l45-no-destinations", daysAgo(45))

				insertEventAt(t, store, short, "s60", daysAgo(60), shortDests...)
				insertEventAt(t, store, short, "s10", daysAgo(10), shortDests...)
				insertEventAt(t, store, short, "s6", daysAgo(6), shortDests...)
				shortNew := []*sqlstore.NewEvent{insertEventAt(t, store, short, "s4", daysAgo(4), shortDests...)}

				// One attempt on a log that goes and one on a log that stays.
				oldLog, newLog := globalOld[0].Logs[0].ID, globalNew[0].Logs[0].ID
				recordAttempt(t, store, oldLog, datapusher.StatusFailed, true)
				recordAttempt(t, store, newLog, datapusher.StatusSuccess, true)

				deleted, err := store.DeleteLogsBefore(ctx, cutoff, batchSize)
				require.NoError(t, err)
				require.Equal(t, 8+1+6, deleted, "logs of g60, g40, g31, g30, l100, s60, s10 and s6")

				require.ElementsMatch(t, logIDsOf(globalNew...), logIDs(t, store, global.AccountID))
				require.ElementsMatch(t, logIDsOf(longNew...), logIDs(t, store, long.AccountID))
				require.ElementsMatch(t, logIDsOf(shortNew...), logIDs(t, store, short.AccountID))
				require.ElementsMatch(t, []string{"g-cutoff", "g29", "g1", "g10-no-destinations"},
					eventIDs(t, store, global.AccountID))
				require.ElementsMatch(t, []string{"l60", "l35", "l45-no-destinations"}, eventIDs(t, store, long.AccountID))
				require.ElementsMatch(t, []string{"s4"}, eventIDs(t, store, short.AccountID))

				attempts, err := store.Attempts(ctx, oldLog)
				require.NoError(t, err)
				require.Empty(t, attempts, "attempts go with their log")
				attempts, err = store.Attempts(ctx, newLog)
				require.NoError(t, err)
				require.Len(t, attempts, 1)

				deleted, err = store.DeleteLogsBefore(ctx, cutoff, batchSize)
				require.NoError(t, err)
				require.Zero(t, deleted, "a second run finds nothing")
				require.Len(t, logIDs(t, store, global.AccountID), 6)
			})
		}
	}
}

func TestDeleteLogsBeforeClearedOverride(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
		store.Now = func() time.Time { return now }
		owner := createUser(t, store, "owner@example.com")
		account := createAccount(t, store, owner, "Acme")
		destination := createDestination(t, store, account, "POST")
		insertEventAt(t, store, account, "e60", now.AddDate(0, 0, -60), destination)

		require.NoError(t, store.SetAccountRetention(ctx, account.AccountID, new(90)))
		deleted, err := store.DeleteLogsBefore(ctx, now.AddDate(0, 0, -30), 0)
		require.NoError(t, err)
		require.Zero(t, deleted, "the account keeps 90 days")

		require.NoError(t, store.SetAccountRetention(ctx, account.AccountID, nil))
		deleted, err = store.DeleteLogsBefore(ctx, now.AddDate(0, 0, -30), 0)
		require.NoError(t, err)
		require.Equal(t, 1, deleted, "the account is back on the global 30 days")
		require.Empty(t, eventIDs(t, store, account.AccountID))
	})
}

func TestSetAccountRetention(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		owner := createUser(t, store, "owner@example.com")
		account := createAccount(t, store, owner, "Acme")

		t.Run("DefaultIsNull", func(t *testing.T) {
			days, err := store.AccountRetention(ctx, account.AccountID)
			require.NoError(t, err)
			require.Nil(t, days)
		})
		t.Run("SetsAndClears", func(t *testing.T) {
			require.NoError(t, store.SetAccountRetention(ctx, account.AccountID, new(7)))
			days, err := store.AccountRetention(ctx, account.AccountID)
			require.NoError(t, err)
			require.Equal(t, new(7), days)

			require.NoError(t, store.SetAccountRetention(ctx, account.AccountID, nil))
			days, err = store.AccountRetention(ctx, account.AccountID)
			require.NoError(t, err)
			require.Nil(t, days)
		})
		t.Run("RejectsOutOfRange", func(t *testing.T) {
			for _, days := range []int{-1, 0, sqlstore.MaxLogRetentionDays + 1} {
				err := store.SetAccountRetention(ctx, account.AccountID, &days)
				require.Equal(t, datapusher.EINVALID, datapusher.ErrorCode(err), "days %d", days)
			}
			require.NoError(t, store.SetAccountRetention(ctx, account.AccountID, new(sqlstore.MaxLogRetentionDays)))
		})
		t.Run("UnknownAccountIsNotFound", func(t *testing.T) {
			for _, id := range []string{"not-a-uuid", "0190b2a4-0000-7000-8000-000000000000"} {
				err := store.SetAccountRetention(ctx, id, new(7))
				require.Equal(t, datapusher.ENOTFOUND, datapusher.ErrorCode(err), "id %s", id)
				_, err = store.AccountRetention(ctx, id)
				require.Equal(t, datapusher.ENOTFOUND, datapusher.ErrorCode(err), "id %s", id)
			}
		})
	})
}
