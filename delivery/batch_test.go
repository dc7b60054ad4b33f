package delivery_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/delivery"
	"github.com/datapusher/datapusher/delivery/sender"
	"github.com/datapusher/datapusher/internal/testdb"
	"github.com/datapusher/datapusher/sqlstore"
)

// arrivals is a destination that responds 200 after delay and records when
// each request arrived, by webhook id.
type arrivals struct {
	*httptest.Server
	mu    sync.Mutex
	times []time.Time
	ids   []string
}

func newArrivals(t *testing.T, delay time.Duration) *arrivals {
	a := &arrivals{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.times = append(a.times, time.Now())
		a.ids = append(a.ids, r.Header.Get("webhook-id"))
		a.mu.Unlock()
		time.Sleep(delay)
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *arrivals) after(since time.Time) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, at := range a.times {
		if at.After(since) {
			n++
		}
	}
	return n
}

func (a *arrivals) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.times)
}

func (a *arrivals) byID() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := map[string]int{}
	for _, id := range a.ids {
		m[id]++
	}
	return m
}

var eventSeq atomic.Int64

// insertLogs stores n events for the account's destinations without jobs
// and returns their logs.
func insertLogs(t *testing.T, store *sqlstore.Store, accountID string, n int) []*datapusher.DeliveryLog {
	t.Helper()
	ctx := context.Background()
	destinations, err := store.AccountDestinations(ctx, accountID)
	require.NoError(t, err)
	var items []*sqlstore.NewEvent
	for i := range n {
		items = append(items, &sqlstore.NewEvent{
			Event:        &datapusher.Event{AccountID: accountID, EventID: fmt.Sprint("batch-", eventSeq.Add(1), "-", i), Body: []byte(`{"a":1}`)},
			Destinations: destinations,
		})
	}
	require.NoError(t, store.InsertEvents(ctx, items, nil))
	var logs []*datapusher.DeliveryLog
	for _, item := range items {
		logs = append(logs, item.Logs...)
	}
	return logs
}

func TestBatchStopsAtChangedDestination(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects {
		for _, change := range []string{"disable", "delete"} {
			t.Run(dialect+"/"+change, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				f := setupWithConfig(t, dialect, delivery.Config{MaxPerDestination: 1, BusyWait: 500 * time.Millisecond})
				dest := newArrivals(t, 100*time.Millisecond)
				d := f.destination(t, "POST", dest.URL, nil)

				logs := insertLogs(t, f.store, f.account.AccountID, 20)
				require.NoError(t, f.store.WithTx(ctx, func(tx *sql.Tx) error {
					return f.queue.Enqueue(ctx, tx, logs)
				}))
				require.Eventually(t, func() bool { return dest.count() > 0 }, 10*time.Second, time.Millisecond)

				if change == "disable" {
					d.Enabled, d.DisabledReason = false, "paused by an admin"
					require.NoError(t, f.store.UpdateDestination(ctx, d, f.owner.ID))
				} else {
					require.NoError(t, f.store.DeleteDestination(ctx, d.ID))
				}
				changedAt := time.Now()
				time.Sleep(2 * time.Second)
				require.LessOrEqual(t, dest.after(changedAt), 5,
					"requests that reached the destination after it was %sd", change)
			})
		}
	}
}

func TestBatchPastDeadlineHandsOff(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			store := testdb.Open(t, dialect)
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			s := sender.New(sender.Options{
				Timeout:         2 * time.Second,
				AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			})
			worker := delivery.NewWorker(store, s, delivery.Config{MaxPerDestination: 1, RequestTimeout: 2 * time.Second}, logger)
			_, err := delivery.NewQueue(store, worker, delivery.QueueConfig{}, logger)
			require.NoError(t, err)
			t.Cleanup(worker.Close)

			owner := &datapusher.User{Email: "owner@example.com", PasswordHash: "x"}
			require.NoError(t, store.CreateUser(ctx, owner))
			account := &datapusher.Account{AccountName: "Deadline"}
			require.NoError(t, store.CreateAccount(ctx, account, "hash", owner.ID))
			dest := newArrivals(t, 300*time.Millisecond) // healthy: responds well within RequestTimeout
			require.NoError(t, store.CreateDestination(ctx, &datapusher.Destination{
				AccountID: account.AccountID, URL: dest.URL, HTTPMethod: "POST",
				SigningSecret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Enabled: true,
			}, owner.ID))

			logs := insertLogs(t, store, account.AccountID, 20)
			ids := make([]string, len(logs))
			for i, log := range logs {
				ids[i] = log.ID
			}
			// A batch that runs out of time: with one request at a time and
			// 300 ms each, most of its 20 logs cannot start within 1 s.
			jobCtx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_ = worker.Batch().Work(jobCtx, &river.Job[delivery.BatchArgs]{
				JobRow: &rivertype.JobRow{}, Args: delivery.BatchArgs{LogIDs: ids},
			})

			received := dest.byID()
			withoutRequest := 0
			for _, id := range ids {
				attempts, err := store.Attempts(ctx, id)
				require.NoError(t, err)
				if len(attempts) > received["msg_"+id] {
					withoutRequest++
					t.Logf("log %s: %d attempt(s), class %q, error %q, requests %d", id[len(id)-8:], len(attempts),
						attempts[0].ErrorClass, attempts[0].ErrorMessage, received["msg_"+id])
				}
			}
			t.Logf("requests received: %d, logs: %d", dest.count(), len(ids))
			assert.Zero(t, withoutRequest, "logs with a recorded attempt but no request")
			moved := 0
			for _, id := range ids {
				log, err := store.Log(ctx, id)
				require.NoError(t, err)
				if log.Generation > 0 && log.Attempts == 0 {
					moved++
				}
			}
			assert.Positive(t, moved, "logs left when the batch ran out of time moved to jobs of their own")

			// A new log to the healthy destination, in a fresh job.
			before := dest.count()
			fresh := insertFreshLog(t, store, account.AccountID)
			require.NoError(t, worker.Batch().Work(ctx, &river.Job[delivery.BatchArgs]{
				JobRow: &rivertype.JobRow{}, Args: delivery.BatchArgs{LogIDs: []string{fresh}},
			}))
			freshLog, err := store.Log(ctx, fresh)
			require.NoError(t, err)
			t.Logf("fresh log: status %s, attempts %d, generation %d", freshLog.Status, freshLog.Attempts, freshLog.Generation)
			assert.Equal(t, before+1, dest.count(), "the breaker let the healthy destination's next delivery through")
		})
	}
}

func insertFreshLog(t *testing.T, store *sqlstore.Store, accountID string) string {
	t.Helper()
	ctx := context.Background()
	destinations, err := store.AccountDestinations(ctx, accountID)
	require.NoError(t, err)
	item := &sqlstore.NewEvent{
		Event:        &datapusher.Event{AccountID: accountID, EventID: "fresh", Body: []byte(`{"a":1}`)},
		Destinations: destinations,
	}
	require.NoError(t, store.InsertEvents(ctx, []*sqlstore.NewEvent{item}, nil))
	return item.Logs[0].ID
}

func TestBatchSkipsRequeuedLog(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := setupWithConfig(t, dialect, delivery.Config{MaxPerDestination: 1, BusyWait: 500 * time.Millisecond})
			dest := newArrivals(t, 100*time.Millisecond)
			f.destination(t, "POST", dest.URL, nil)

			logs := insertLogs(t, f.store, f.account.AccountID, 10)
			require.NoError(t, f.store.WithTx(ctx, func(tx *sql.Tx) error {
				return f.queue.Enqueue(ctx, tx, logs)
			}))
			require.Eventually(t, func() bool { return dest.count() > 0 }, 10*time.Second, time.Millisecond)

			// Replay the batch's last log while the batch still holds it.
			last := logs[len(logs)-1]
			_, err := f.store.RequeueLog(ctx, last.ID, f.queue.Enqueue)
			require.NoError(t, err)
			require.Eventually(t, func() bool { return dest.count() >= 10 }, 10*time.Second, 10*time.Millisecond)
			time.Sleep(time.Second)

			final, err := f.store.Log(ctx, last.ID)
			require.NoError(t, err)
			t.Logf("requeued log: status %s, attempts %d, generation %d", final.Status, final.Attempts, final.Generation)
			require.Equal(t, 1, dest.byID()["msg_"+last.ID], "requests for the requeued log, which was never attempted before")
		})
	}
}

// newWorkerQueue builds a worker and a started queue on store.
func newWorkerQueue(t *testing.T, store *sqlstore.Store, cfg delivery.Config) (*delivery.Worker, *delivery.Queue) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := sender.New(sender.Options{
		Timeout:         2 * time.Second,
		AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	cfg.RequestTimeout = 2 * time.Second
	worker := delivery.NewWorker(store, s, cfg, logger)
	queue, err := delivery.NewQueue(store, worker, delivery.QueueConfig{Workers: 10, PollInterval: 20 * time.Millisecond}, logger)
	require.NoError(t, err)
	require.NoError(t, queue.Start(context.Background()))
	return worker, queue
}

func TestStopMidBatchLosesNothing(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			store := testdb.Open(t, dialect)
			cfg := delivery.Config{MaxPerDestination: 2, BusyWait: 500 * time.Millisecond, Schedule: []time.Duration{50 * time.Millisecond}}
			_, queue := newWorkerQueue(t, store, cfg)

			owner := &datapusher.User{Email: "owner@example.com", PasswordHash: "x"}
			require.NoError(t, store.CreateUser(ctx, owner))
			account := &datapusher.Account{AccountName: "Stop"}
			require.NoError(t, store.CreateAccount(ctx, account, "hash", owner.ID))
			dest := newArrivals(t, 100*time.Millisecond)
			require.NoError(t, store.CreateDestination(ctx, &datapusher.Destination{
				AccountID: account.AccountID, URL: dest.URL, HTTPMethod: "POST",
				SigningSecret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Enabled: true,
			}, owner.ID))
			logs := insertLogs(t, store, account.AccountID, 40)
			require.NoError(t, store.WithTx(ctx, func(tx *sql.Tx) error { return queue.Enqueue(ctx, tx, logs) }))
			require.Eventually(t, func() bool { return dest.count() >= 4 }, 10*time.Second, time.Millisecond)

			stopCtx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
			_ = queue.Stop(stopCtx)
			cancel()
			t.Logf("requests before restart: %d", dest.count())

			_, queue = newWorkerQueue(t, store, cfg)
			t.Cleanup(func() {
				stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = queue.Stop(stopCtx)
			})
			require.Eventually(t, func() bool {
				for _, log := range logs {
					got, err := store.Log(ctx, log.ID)
					require.NoError(t, err)
					if got.Status != datapusher.StatusSuccess {
						return false
					}
				}
				return true
			}, 30*time.Second, 100*time.Millisecond, "every log reaches success after the restart")
			t.Logf("requests in all: %d for %d logs", dest.count(), len(logs))
		})
	}
}

func TestBadIDsInJobArgs(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			store := testdb.Open(t, dialect)
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			worker := delivery.NewWorker(store, sender.New(sender.Options{}), delivery.Config{}, logger)
			_, err := delivery.NewQueue(store, worker, delivery.QueueConfig{}, logger)
			require.NoError(t, err)
			t.Cleanup(worker.Close)
			bad := []string{"", "not-a-uuid", "0190F2B4-0000-7000-8000-000000000000", "'; DROP TABLE delivery_logs; --",
				"0190f2b4-0000-7000-8000-000000000000"}
			require.NoError(t, worker.Batch().Work(ctx, &river.Job[delivery.BatchArgs]{
				JobRow: &rivertype.JobRow{}, Args: delivery.BatchArgs{LogIDs: bad},
			}))
			require.NoError(t, worker.Batch().Work(ctx, &river.Job[delivery.BatchArgs]{JobRow: &rivertype.JobRow{}}))
			for _, id := range bad {
				require.NoError(t, worker.Work(ctx, &river.Job[delivery.Args]{JobRow: &rivertype.JobRow{}, Args: delivery.Args{LogID: id}}))
			}
		})
	}
}

func TestLimitHoldsAcrossBatches(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			f := setupWithConfig(t, dialect, delivery.Config{
				MaxPerDestination: 3, BusyWait: 30 * time.Millisecond, BusyDelay: 20 * time.Millisecond,
				MaxBusyDelay: 100 * time.Millisecond, Schedule: []time.Duration{10 * time.Millisecond, 10 * time.Millisecond},
			})
			receiver := newConcurrencyReceiver(t, 20*time.Millisecond, func(call int) bool { return call%3 == 0 })
			f.destination(t, "POST", receiver.URL, nil)
			all := enqueueBatches(t, f, 6, 20)
			waitLogs(t, f.store, all, datapusher.StatusSuccess, datapusher.StatusFailed)

			calls, maxInFlight := receiver.stats()
			t.Logf("calls %d, max in flight %d", calls, maxInFlight)
			require.LessOrEqual(t, maxInFlight, 3)
		})
	}
}

func TestLimitGrowsForFastDestination(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			const maxPerDestination = 30
			f := setupWithConfig(t, dialect, delivery.Config{MaxPerDestination: maxPerDestination})
			receiver := newConcurrencyReceiver(t, 20*time.Millisecond, nil)
			f.destination(t, "POST", receiver.URL, nil)
			all := enqueueBatches(t, f, 6, 100)
			waitLogs(t, f.store, all, datapusher.StatusSuccess)

			_, maxInFlight := receiver.stats()
			t.Logf("max in flight %d", maxInFlight)
			require.Greater(t, maxInFlight, 10, "successes while deliveries waited raised the initial limit")
			require.LessOrEqual(t, maxInFlight, maxPerDestination)
		})
	}
}

// concurrencyReceiver is a destination that responds after a delay and
// records the most requests it had in flight at once.
type concurrencyReceiver struct {
	*httptest.Server

	mu                           sync.Mutex
	calls, inFlight, maxInFlight int
}

// newConcurrencyReceiver starts a receiver that responds after delay, with
// 500 to the calls (counted from 1) for which fail reports true.
func newConcurrencyReceiver(t *testing.T, delay time.Duration, fail func(call int) bool) *concurrencyReceiver {
	t.Helper()
	r := &concurrencyReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		r.mu.Lock()
		r.calls++
		r.inFlight++
		r.maxInFlight = max(r.maxInFlight, r.inFlight)
		failed := fail != nil && fail(r.calls)
		r.mu.Unlock()

		time.Sleep(delay)

		r.mu.Lock()
		r.inFlight--
		r.mu.Unlock()
		if failed {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(r.Close)
	return r
}

// stats returns the number of requests so far and the most in flight at
// once.
func (r *concurrencyReceiver) stats() (calls, maxInFlight int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls, r.maxInFlight
}

// enqueueBatches stores batches groups of size logs for the fixture's
// account and queues each group in a transaction of its own.
func enqueueBatches(t *testing.T, f *fixture, batches, size int) []*datapusher.DeliveryLog {
	t.Helper()
	ctx := context.Background()
	var all []*datapusher.DeliveryLog
	for range batches {
		logs := insertLogs(t, f.store, f.account.AccountID, size)
		require.NoError(t, f.store.WithTx(ctx, func(tx *sql.Tx) error { return f.queue.Enqueue(ctx, tx, logs) }))
		all = append(all, logs...)
	}
	return all
}

// waitLogs waits until every log in logs has one of statuses.
func waitLogs(t *testing.T, store *sqlstore.Store, logs []*datapusher.DeliveryLog, statuses ...string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, log := range logs {
			got, err := store.Log(context.Background(), log.ID)
			require.NoError(t, err)
			if !slices.Contains(statuses, got.Status) {
				return false
			}
		}
		return true
	}, 60*time.Second, 100*time.Millisecond)
}
