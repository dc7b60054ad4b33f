package sqlstore_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/sqlstore"
)

// finishAt records a final attempt of the log as if it ended latency after
// the event was received, so that the log's processed time is exact.
func finishAt(t *testing.T, store *sqlstore.Store, event *sqlstore.NewEvent, index int, status string, latency time.Duration) {
	t.Helper()
	processedAt := event.Event.ReceivedAt.Add(latency)
	store.Now = func() time.Time { return processedAt }
	recordAttempt(t, store, event.Logs[index].ID, status, true)
}

func TestQueueStats(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
		store.Now = func() time.Time { return now }

		depth, age, err := store.QueueStats(ctx)
		require.NoError(t, err)
		require.Zero(t, depth)
		require.Zero(t, age)

		owner := createUser(t, store, "owner@example.com")
		account := createAccount(t, store, owner, "Acme")
		first, second := createDestination(t, store, account, "POST"), createDestination(t, store, account, "GET")
		insertEventAt(t, store, account, "pending-5m", now.Add(-5*time.Minute), first, second)
		retrying := insertEventAt(t, store, account, "retrying-20m", now.Add(-20*time.Minute), first)
		done := insertEventAt(t, store, account, "done-1h", now.Add(-time.Hour), first, second)
		recordAttempt(t, store, retrying.Logs[0].ID, datapusher.StatusRetrying, false)
		recordAttempt(t, store, done.Logs[0].ID, datapusher.StatusSuccess, true)
		recordAttempt(t, store, done.Logs[1].ID, datapusher.StatusFailed, true)

		depth, age, err = store.QueueStats(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(3), depth, "two pending logs and one retrying")
		require.Equal(t, 20*time.Minute, age, "the retrying log is the oldest waiting")

		recordAttempt(t, store, retrying.Logs[0].ID, datapusher.StatusSuccess, true)
		depth, age, err = store.QueueStats(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(2), depth)
		require.Equal(t, 5*time.Minute, age)
	})
}

func TestAccountStats(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		from := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		to := from.Add(24 * time.Hour)
		at := func(hour int) time.Time { return from.Add(time.Duration(hour) * time.Hour) }

		owner := createUser(t, store, "owner@example.com")
		account := createAccount(t, store, owner, "Acme")
		other := createAccount(t, store, owner, "Other")
		first, second := createDestination(t, store, account, "POST"), createDestination(t, store, account, "GET")
		otherDestination := createDestination(t, store, other, "POST")

		// In the window, with logs to both destinations. Latencies of the
		// final logs: 100, 200, 300, 400, 500 and 1000 ms.
		e1 := insertEventAt(t, store, account, "e1", at(1), first, second)
		e2 := insertEventAt(t, store, account, "e2", at(2), first, second)
		e3 := insertEventAt(t, store, account, "e3", at(3), first, second)
		insertEventAt(t, store, account, "e4", at(4), first, second)
		e5 := insertEventAt(t, store, account, "e5", at(5), first, second)
		finishAt(t, store, e1, 0, datapusher.StatusSuccess, 100*time.Millisecond)
		finishAt(t, store, e1, 1, datapusher.StatusSuccess, 200*time.Millisecond)
		finishAt(t, store, e2, 0, datapusher.StatusSuccess, 300*time.Millisecond)
		finishAt(t, store, e2, 1, datapusher.StatusFailed, 500*time.Millisecond)
		recordAttempt(t, store, e3.Logs[0].ID, datapusher.StatusRetrying, false)
		finishAt(t, store, e3, 1, datapusher.StatusSuccess, 400*time.Millisecond)
		finishAt(t, store, e5, 0, datapusher.StatusFailed, time.Second)
		recordAttempt(t, store, e5.Logs[1].ID, datapusher.StatusRetrying, false)

		// In the window without destinations: counted as an event only.
		insertEventAt(t, store, account, "e-no-destinations", at(6))

		// Outside the window, which ends before to, and of another account.
		before := insertEventAt(t, store, account, "before", from.Add(-time.Microsecond), first)
		atEnd := insertEventAt(t, store, account, "at-end", to, first)
		finishAt(t, store, before, 0, datapusher.StatusSuccess, time.Hour)
		finishAt(t, store, atEnd, 0, datapusher.StatusSuccess, time.Hour)
		otherEvent := insertEventAt(t, store, other, "other", at(1), otherDestination)
		finishAt(t, store, otherEvent, 0, datapusher.StatusFailed, time.Hour)

		stats, err := store.AccountStats(ctx, account.AccountID, from, to)
		require.NoError(t, err)
		require.Equal(t, account.AccountID, stats.AccountID)
		require.True(t, from.Equal(stats.From))
		require.True(t, to.Equal(stats.To))
		require.Equal(t, int64(6), stats.Events)
		require.Equal(t, map[string]int64{"pending": 2, "retrying": 2, "success": 4, "failed": 2}, stats.Deliveries)

		byDestination := map[string]map[string]int64{}
		for _, d := range stats.Destinations {
			byDestination[d.DestinationID] = d.Deliveries
		}
		require.Len(t, stats.Destinations, 2)
		require.Less(t, stats.Destinations[0].DestinationID, stats.Destinations[1].DestinationID)
		require.Equal(t, map[string]int64{"pending": 1, "retrying": 1, "success": 2, "failed": 1}, byDestination[first.ID])
		require.Equal(t, map[string]int64{"pending": 1, "retrying": 1, "success": 2, "failed": 1}, byDestination[second.ID])

		// Six samples: p50 lies halfway between 300 and 400, and p95 at
		// rank 4.75, three quarters of the way from 500 to 1000.
		require.Equal(t, 6, stats.LatencyMS.Samples)
		require.NotNil(t, stats.LatencyMS.P50)
		require.NotNil(t, stats.LatencyMS.P95)
		require.Equal(t, 350.0, *stats.LatencyMS.P50)
		require.Equal(t, 875.0, *stats.LatencyMS.P95)

		t.Run("JSONShape", func(t *testing.T) {
			raw, err := json.Marshal(stats)
			require.NoError(t, err)
			var body map[string]any
			require.NoError(t, json.Unmarshal(raw, &body))
			require.ElementsMatch(t, []string{"account_id", "from", "to", "events", "deliveries", "destinations", "latency_ms"},
				keys(body))
			require.Equal(t, "2030-01-01T00:00:00Z", body["from"])
			require.Equal(t, map[string]any{"p50": 350.0, "p95": 875.0, "samples": 6.0}, body["latency_ms"])
			destination := body["destinations"].([]any)[0].(map[string]any)
			require.ElementsMatch(t, []string{"destination_id", "deliveries"}, keys(destination))
		})
		t.Run("EmptyWindow", func(t *testing.T) {
			empty, err := store.AccountStats(ctx, account.AccountID, to.Add(time.Hour), to.Add(2*time.Hour))
			require.NoError(t, err)
			require.Zero(t, empty.Events)
			require.Equal(t, map[string]int64{"pending": 0, "retrying": 0, "success": 0, "failed": 0}, empty.Deliveries)
			require.Empty(t, empty.Destinations)
			require.Nil(t, empty.LatencyMS.P50)
			require.Nil(t, empty.LatencyMS.P95)

			raw, err := json.Marshal(empty)
			require.NoError(t, err)
			require.Contains(t, string(raw), `"destinations":[]`)
			require.Contains(t, string(raw), `"latency_ms":{"p50":null,"p95":null,"samples":0}`)
		})
		t.Run("TwoSamples", func(t *testing.T) {
			e1Only, err := store.AccountStats(ctx, account.AccountID, at(1), at(2))
			require.NoError(t, err)
			require.Equal(t, 2, e1Only.LatencyMS.Samples)
			require.Equal(t, 150.0, *e1Only.LatencyMS.P50)
			require.Equal(t, 195.0, *e1Only.LatencyMS.P95)
		})
		t.Run("RejectsEmptyWindow", func(t *testing.T) {
			_, err := store.AccountStats(ctx, account.AccountID, to, to)
			require.Equal(t, datapusher.EINVALID, datapusher.ErrorCode(err))
		})
		t.Run("MalformedIDIsNotFound", func(t *testing.T) {
			_, err := store.AccountStats(ctx, "not-a-uuid", from, to)
			require.Equal(t, datapusher.ENOTFOUND, datapusher.ErrorCode(err))
		})
	})
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
