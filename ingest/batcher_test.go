package ingest_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/ingest"
	"github.com/datapusher/datapusher/internal/testdb"
	"github.com/datapusher/datapusher/sqlstore"
)

func TestBatcher(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()

			t.Run("ConcurrentEventsAreAllStored", func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect)
				// PostgreSQL may abort a batch, because two batches holding the
				// same event id can deadlock, and the batch then runs again. So
				// enqueue may get a log twice, and every stored log must have
				// been enqueued.
				var batches atomic.Int64
				var enqueuedMu sync.Mutex
				enqueued := map[string]bool{}
				enqueue := func(_ context.Context, _ *sql.Tx, logs []*datapusher.DeliveryLog) error {
					batches.Add(1)
					enqueuedMu.Lock()
					defer enqueuedMu.Unlock()
					for _, l := range logs {
						enqueued[l.ID] = true
					}
					return nil
				}
				batcher := ingest.NewBatcher(f.store, enqueue, 2, 50)
				defer batcher.Stop()
				service := ingest.NewService(f.store, enqueue, ingest.Options{Batcher: batcher})

				var wg sync.WaitGroup
				errs := make(chan error, 200)
				for i := range 200 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						// Every fourth event repeats an id, so some batches
						// hold duplicates of each other.
						id := fmt.Sprintf("evt-%d", i)
						if i%4 == 3 {
							id = fmt.Sprintf("evt-%d", i-1)
						}
						_, err := service.SubmitWithToken(ctx, "token-1", id, []byte(`{"i":1}`), "")
						errs <- err
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					require.NoError(t, err)
				}
				page, err := f.store.Logs(ctx, datapusher.LogFilter{Limit: 500})
				require.NoError(t, err)
				require.Len(t, page.Logs, 150, "one log per distinct event id")
				seen := map[string]bool{}
				for _, l := range page.Logs {
					require.True(t, enqueued[l.ID], "log %s was stored without a job", l.ID)
					require.False(t, seen[l.EventID], "event %s stored twice", l.EventID)
					seen[l.EventID] = true
				}
				require.Less(t, batches.Load(), int64(200), "events were committed in batches")
			})

			t.Run("BadEventFailsAlone", func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect)
				batcher := ingest.NewBatcher(f.store, nil, 1, 50)
				defer batcher.Stop()

				good := func(id string) *sqlstore.NewEvent {
					return &sqlstore.NewEvent{Event: &datapusher.Event{AccountID: f.account.AccountID, EventID: id,
						Body: json.RawMessage(`{}`)}}
				}
				orphan := &sqlstore.NewEvent{Event: &datapusher.Event{
					AccountID: "01a241cc-0000-7000-8000-000000000000", EventID: "orphan", Body: json.RawMessage(`{}`)}}

				var wg sync.WaitGroup
				results := map[string]error{}
				var mu sync.Mutex
				for _, item := range []*sqlstore.NewEvent{good("g1"), orphan, good("g2"), good("g3")} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						err := batcher.Insert(ctx, item)
						mu.Lock()
						results[item.Event.EventID] = err
						mu.Unlock()
					}()
				}
				wg.Wait()
				require.Error(t, results["orphan"])
				for _, id := range []string{"g1", "g2", "g3"} {
					require.NoError(t, results[id], "event %s", id)
				}
			})

			t.Run("StopRejectsNewEvents", func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect)
				batcher := ingest.NewBatcher(f.store, nil, 1, 10)
				batcher.Stop()
				err := batcher.Insert(ctx, &sqlstore.NewEvent{Event: &datapusher.Event{AccountID: f.account.AccountID,
					EventID: "late", Body: json.RawMessage(`{}`)}})
				require.ErrorIs(t, err, ingest.ErrBatcherStopped)
			})
		})
	}
}
