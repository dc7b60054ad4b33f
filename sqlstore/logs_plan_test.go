package sqlstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/internal/testdb"
	"github.com/datapusher/datapusher/sqlstore"
)

// fillLogs writes rows delivery logs spread over destinations and over the
// days before base, straight in SQL, because going through InsertEvents
// would take minutes for a million rows.
func fillLogs(t testing.TB, store *sqlstore.Store, account *datapusher.Account, destinations []*datapusher.Destination, rows int) {
	t.Helper()
	ctx := context.Background()
	ids := make([]string, len(destinations))
	for i, d := range destinations {
		ids[i] = "'" + d.ID + "'"
	}
	_, err := store.DB().ExecContext(ctx, fmt.Sprintf(`
		INSERT INTO events (id, account_id, event_id, body, received_at)
		SELECT gen_random_uuid(), $1, 'fill-' || n, '{}', $2::timestamptz - n * interval '1 second'
		FROM generate_series(1, %d) AS n`, rows), account.AccountID, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	_, err = store.DB().ExecContext(ctx, fmt.Sprintf(`
		INSERT INTO delivery_logs (id, event_pk, account_id, destination_id, event_id, status,
			received_at, processed_at)
		SELECT gen_random_uuid(), e.id, e.account_id,
			(ARRAY[%s]::uuid[])[1 + (hashtext(e.event_id) & 2147483647) %% %d],
			e.event_id, 'success', e.received_at, e.received_at + interval '1 second'
		FROM events e WHERE e.account_id = $1`, strings.Join(ids, ","), len(ids)), account.AccountID)
	require.NoError(t, err)
	_, err = store.DB().ExecContext(ctx, `ANALYZE events; ANALYZE delivery_logs`)
	require.NoError(t, err)
}

// logsQueryPlan returns PostgreSQL's plan of the logs query that lists one
// destination's logs in a time range, as the API runs it.
func logsQueryPlan(t testing.TB, store *sqlstore.Store, f datapusher.LogFilter) string {
	t.Helper()
	query, args, err := store.LogsQuery(f)
	require.NoError(t, err)
	return explain(t, store, query, args)
}

// explain returns PostgreSQL's plan of query.
func explain(t testing.TB, store *sqlstore.Store, query string, args []any) string {
	t.Helper()
	var plan strings.Builder
	rows, err := store.DB().QueryContext(context.Background(), "EXPLAIN "+query, args...)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var line string
		require.NoError(t, rows.Scan(&line))
		plan.WriteString(line + "\n")
	}
	require.NoError(t, rows.Err())
	return plan.String()
}

func TestLogsQueryPlanUsesIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := testdb.Open(t, sqlstore.DialectPostgres)
	owner := createUser(t, store, "plan@example.com")
	account := createAccount(t, store, owner, "Plan")
	var destinations []*datapusher.Destination
	for range 20 {
		destinations = append(destinations, createDestination(t, store, account, "POST"))
	}
	fillLogs(t, store, account, destinations, 50_000)

	from := time.Date(2026, 5, 31, 12, 0, 0, 0, time.UTC)
	to := from.Add(2 * time.Hour)
	filters := map[string]datapusher.LogFilter{
		"DestinationAndTime": {DestinationID: &destinations[3].ID, ReceivedTimestampGTE: &from,
			ReceivedTimestampLTE: &to, Limit: 50, VisibleTo: owner.ID},
		"AccountNewestFirst": {AccountID: &account.AccountID, Limit: 50},
		"ProcessedRange":     {ProcessedTimestampGTE: &from, ProcessedTimestampLTE: &to, Limit: 50},
	}
	for name, f := range filters {
		t.Run(name, func(t *testing.T) {
			plan := logsQueryPlan(t, store, f)
			require.NotContains(t, plan, "Seq Scan on delivery_logs", plan)
			require.NotContains(t, plan, "Seq Scan on events", plan)
		})
	}

	t.Run("RecoverDestination", func(t *testing.T) {
		query, args := store.RecoverQuery(destinations[3].ID, from, &to)
		plan := explain(t, store, query, args)
		require.NotContains(t, plan, "Seq Scan on delivery_logs", plan)
	})

	page, err := store.Logs(ctx, filters["DestinationAndTime"])
	require.NoError(t, err)
	require.NotEmpty(t, page.Logs)
	for _, l := range page.Logs {
		require.Equal(t, destinations[3].ID, l.DestinationID)
	}
}

// BenchmarkLogsQuery1M lists one destination's logs in a two-hour window of
// a table with a million delivery logs on PostgreSQL.
func BenchmarkLogsQuery1M(b *testing.B) {
	store := testdb.Open(b, sqlstore.DialectPostgres)
	owner := &datapusher.User{Email: "bench@example.com", PasswordHash: "x"}
	require.NoError(b, store.CreateUser(context.Background(), owner))
	account := &datapusher.Account{AccountName: "Bench"}
	require.NoError(b, store.CreateAccount(context.Background(), account, "bench-hash", owner.ID))
	var destinations []*datapusher.Destination
	for range 50 {
		d := &datapusher.Destination{AccountID: account.AccountID, URL: "https://example.test/", HTTPMethod: "POST",
			SigningSecret: "whsec_x", Enabled: true}
		require.NoError(b, store.CreateDestination(context.Background(), d, owner.ID))
		destinations = append(destinations, d)
	}
	fillLogs(b, store, account, destinations, 1_000_000)

	from := time.Date(2026, 5, 25, 0, 0, 0, 0, time.UTC)
	to := from.Add(2 * time.Hour)
	f := datapusher.LogFilter{DestinationID: &destinations[7].ID, ReceivedTimestampGTE: &from,
		ReceivedTimestampLTE: &to, Limit: 50, VisibleTo: owner.ID}
	b.ResetTimer()
	for b.Loop() {
		page, err := store.Logs(context.Background(), f)
		if err != nil || len(page.Logs) == 0 {
			b.Fatalf("logs query: %v (%d rows)", err, len(page.Logs))
		}
	}
}

// TestDeliveryTasksProbeKeys checks that reading one delivery batch looks its
// logs and events up by key in tables of a young installation, instead of
// reading every row. The URL sets the planner cost that the store sets by
// default, so that a server configured otherwise does not fail the test.
func TestDeliveryTasksProbeKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, withParam(t, testdb.DSN(t, sqlstore.DialectPostgres), "random_page_cost", "1.1"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	_, err = store.Migrate(ctx)
	require.NoError(t, err)
	owner := createUser(t, store, "tasks-plan@example.com")
	account := createAccount(t, store, owner, "Tasks plan")
	destinations := []*datapusher.Destination{
		createDestination(t, store, account, "POST"), createDestination(t, store, account, "POST"),
	}
	fillLogs(t, store, account, destinations, 20_000)

	ids := queryStrings(t, store, `SELECT id FROM delivery_logs ORDER BY received_at DESC LIMIT 256`)
	require.Len(t, ids, 256)

	tasksQuery, args := sqlstore.DeliveryTasksQuery(ids)
	plan := explain(t, store, tasksQuery, args)
	require.NotContains(t, plan, "Seq Scan on delivery_logs", plan)
	require.NotContains(t, plan, "Seq Scan on events", plan)

	tasks, err := store.DeliveryTasks(ctx, ids)
	require.NoError(t, err)
	require.Len(t, tasks, 256)
}
