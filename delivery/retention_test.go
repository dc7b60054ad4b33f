package delivery_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/delivery"
	"github.com/datapusher/datapusher/internal/testdb"
	"github.com/datapusher/datapusher/sqlstore"
)

// retentionFixture is a store with one account, one destination and the
// given clock.
type retentionFixture struct {
	store       *sqlstore.Store
	account     *datapusher.Account
	destination *datapusher.Destination
}

func setupRetention(t *testing.T, dialect string, now time.Time) *retentionFixture {
	t.Helper()
	ctx := context.Background()
	store := testdb.Open(t, dialect)
	store.Now = func() time.Time { return now }
	owner := &datapusher.User{Email: "owner@example.com", PasswordHash: "x"}
	require.NoError(t, store.CreateUser(ctx, owner))
	account := &datapusher.Account{AccountName: "Retention"}
	require.NoError(t, store.CreateAccount(ctx, account, "token-hash", owner.ID))
	destination := &datapusher.Destination{
		AccountID: account.AccountID, URL: "https://example.test/hook", HTTPMethod: "POST",
		SigningSecret: "whsec_x", Enabled: true,
	}
	require.NoError(t, store.CreateDestination(ctx, destination, owner.ID))
	return &retentionFixture{store: store, account: account, destination: destination}
}

// insert stores an event received at receivedAt with one log, and returns
// the log's id.
func (f *retentionFixture) insert(t *testing.T, eventID string, receivedAt time.Time) string {
	t.Helper()
	event := &sqlstore.NewEvent{
		Event: &datapusher.Event{
			AccountID: f.account.AccountID, EventID: eventID, Body: json.RawMessage(`{}`), ReceivedAt: receivedAt,
		},
		Destinations: []*datapusher.Destination{f.destination},
	}
	require.NoError(t, f.store.InsertEvents(context.Background(), []*sqlstore.NewEvent{event}, nil))
	return event.Logs[0].ID
}

// remaining returns the ids of the account's delivery logs.
func (f *retentionFixture) remaining(t *testing.T) []string {
	t.Helper()
	page, err := f.store.Logs(context.Background(), datapusher.LogFilter{AccountID: &f.account.AccountID})
	require.NoError(t, err)
	ids := []string{}
	for _, l := range page.Logs {
		ids = append(ids, l.ID)
	}
	return ids
}

func retentionJob(maxAge time.Duration) *river.Job[delivery.RetentionArgs] {
	return &river.Job[delivery.RetentionArgs]{
		JobRow: &rivertype.JobRow{Kind: "log_retention"}, Args: delivery.RetentionArgs{MaxAge: maxAge},
	}
}

func TestRetentionWorker(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour

	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()

			t.Run("DeletesOlderThanMaxAge", func(t *testing.T) {
				t.Parallel()
				f := setupRetention(t, dialect, now)
				f.insert(t, "old-1", now.Add(-10*day))
				f.insert(t, "old-2", now.Add(-8*day))
				f.insert(t, "old-3", now.Add(-7*day-time.Second))
				newLogs := []string{f.insert(t, "new-1", now.Add(-6*day)), f.insert(t, "new-2", now.Add(-time.Hour))}

				var logs bytes.Buffer
				worker := delivery.NewRetentionWorker(f.store, delivery.RetentionConfig{BatchSize: 2},
					slog.New(slog.NewTextHandler(&logs, nil)))
				require.NoError(t, worker.Work(context.Background(), retentionJob(7*day)))

				require.ElementsMatch(t, newLogs, f.remaining(t))
				require.Contains(t, logs.String(), "log retention done")
				require.Contains(t, logs.String(), "deleted_logs=3")
			})
			t.Run("DefaultMaxAgeIs30Days", func(t *testing.T) {
				t.Parallel()
				f := setupRetention(t, dialect, now)
				f.insert(t, "old", now.Add(-31*day))
				newLog := f.insert(t, "new", now.Add(-29*day))

				worker := delivery.NewRetentionWorker(f.store, delivery.RetentionConfig{}, slog.New(slog.DiscardHandler))
				require.NoError(t, worker.Work(context.Background(), retentionJob(0)))
				require.Equal(t, []string{newLog}, f.remaining(t))
			})
			t.Run("SnoozesWhenRunTimeEnds", func(t *testing.T) {
				t.Parallel()
				f := setupRetention(t, dialect, now)
				old := f.insert(t, "old", now.Add(-31*day))

				// A run time of one nanosecond ends before the first delete.
				worker := delivery.NewRetentionWorker(f.store, delivery.RetentionConfig{RunTime: time.Nanosecond}, slog.New(slog.DiscardHandler))
				err := worker.Work(context.Background(), retentionJob(0))
				var snooze *rivertype.JobSnoozeError
				require.ErrorAs(t, err, &snooze)
				require.Equal(t, time.Second, snooze.Duration)
				require.Equal(t, []string{old}, f.remaining(t))
			})
			t.Run("ReturnsErrorWhenCanceled", func(t *testing.T) {
				t.Parallel()
				f := setupRetention(t, dialect, now)
				f.insert(t, "old", now.Add(-31*day))

				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				worker := delivery.NewRetentionWorker(f.store, delivery.RetentionConfig{}, slog.New(slog.DiscardHandler))
				err := worker.Work(ctx, retentionJob(0))
				require.ErrorIs(t, err, context.Canceled)
				var snooze *rivertype.JobSnoozeError
				require.False(t, errors.As(err, &snooze), "shutdown is no reason to snooze")
			})
		})
	}
}

// TestRetentionPeriodicJob runs a real queue with the periodic job, which
// checks that the queue accepts its insert options on both databases.
func TestRetentionPeriodicJob(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			f := setupRetention(t, dialect, now)
			f.insert(t, "old", now.Add(-31*24*time.Hour))
			newLog := f.insert(t, "new", now.Add(-time.Hour))

			workers := river.NewWorkers()
			river.AddWorker(workers, delivery.NewRetentionWorker(f.store, delivery.RetentionConfig{}, slog.New(slog.DiscardHandler)))
			client, err := river.NewClient[*sql.Tx](f.store.RiverDriver(), &river.Config{
				Workers:           workers,
				Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}},
				PeriodicJobs:      delivery.PeriodicJobs(0, time.Hour),
				FetchCooldown:     10 * time.Millisecond,
				FetchPollInterval: 20 * time.Millisecond,
				Logger:            slog.New(slog.DiscardHandler),
			})
			require.NoError(t, err)
			require.NoError(t, client.Start(context.Background()))
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = client.Stop(ctx)
			})

			require.Eventually(t, func() bool { return len(f.remaining(t)) == 1 }, 30*time.Second, 50*time.Millisecond,
				"the job runs once the queue starts")
			require.Equal(t, []string{newLog}, f.remaining(t))
		})
	}
}
