package delivery_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/delivery"
	"github.com/datapusher/datapusher/delivery/sender"
	"github.com/datapusher/datapusher/ingest"
	"github.com/datapusher/datapusher/internal/payloads"
	"github.com/datapusher/datapusher/internal/testdb"
	"github.com/datapusher/datapusher/sqlstore"
)

// receiver is a real HTTP destination that records every request and
// responds with the statuses it is given, in order, then 200.
type receiver struct {
	*httptest.Server

	mu       sync.Mutex
	requests []recorded
	statuses []int
}

type recorded struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	rec := &receiver{statuses: statuses}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.requests = append(rec.requests, recorded{r.Method, r.URL.Path, r.URL.Query(), r.Header.Clone(), body})
		status := http.StatusOK
		if len(rec.statuses) > 0 {
			status, rec.statuses = rec.statuses[0], rec.statuses[1:]
		}
		rec.mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "answer "+http.StatusText(status))
	}))
	t.Cleanup(rec.Close)
	return rec
}

func (r *receiver) received() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.requests...)
}

type fixture struct {
	store   *sqlstore.Store
	queue   *delivery.Queue
	events  *ingest.Service
	account *datapusher.Account
	owner   *datapusher.User
}

// setup starts a store, a queue with running workers and an account.
func setup(t *testing.T, dialect string, schedule []time.Duration) *fixture {
	t.Helper()
	return setupWithConfig(t, dialect, delivery.Config{Schedule: schedule})
}

func setupWithConfig(t *testing.T, dialect string, cfg delivery.Config) *fixture {
	t.Helper()
	ctx := context.Background()
	store := testdb.Open(t, dialect)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	s := sender.New(sender.Options{
		Timeout:         2 * time.Second,
		AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	cfg.RequestTimeout = 2 * time.Second
	worker := delivery.NewWorker(store, s, cfg, logger)
	queue, err := delivery.NewQueue(store, worker, delivery.QueueConfig{Workers: 10, PollInterval: 20 * time.Millisecond}, logger)
	require.NoError(t, err)
	require.NoError(t, queue.Start(ctx))
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = queue.Stop(stopCtx)
	})

	owner := &datapusher.User{Email: "owner@example.com", PasswordHash: "x"}
	require.NoError(t, store.CreateUser(ctx, owner))
	account := &datapusher.Account{AccountName: "Deliveries"}
	require.NoError(t, store.CreateAccount(ctx, account, ingest.HashToken("token"), owner.ID))
	return &fixture{
		store: store, queue: queue, events: ingest.NewService(store, queue.Enqueue, ingest.Options{}),
		account: account, owner: owner,
	}
}

func (f *fixture) destination(t *testing.T, method, rawURL string, headers map[string]string) *datapusher.Destination {
	t.Helper()
	d := &datapusher.Destination{
		AccountID: f.account.AccountID, URL: rawURL, HTTPMethod: method, Headers: headers,
		SigningSecret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Enabled: true,
	}
	require.NoError(t, f.store.CreateDestination(context.Background(), d, f.owner.ID))
	return d
}

// waitFinal waits until every log of the event has a final status and
// returns the logs by destination id.
func (f *fixture) waitFinal(t *testing.T, eventID string) map[string]*datapusher.DeliveryLog {
	t.Helper()
	byDestination := map[string]*datapusher.DeliveryLog{}
	require.Eventually(t, func() bool {
		page, err := f.store.Logs(context.Background(), datapusher.LogFilter{EventID: &eventID})
		require.NoError(t, err)
		for _, l := range page.Logs {
			if l.Status != datapusher.StatusSuccess && l.Status != datapusher.StatusFailed {
				return false
			}
			byDestination[l.DestinationID] = l
		}
		return len(page.Logs) > 0
	}, 20*time.Second, 20*time.Millisecond)
	return byDestination
}

func TestDelivery(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()

			t.Run("GetAndPostBothSucceed", func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect, nil)
				getReceiver, postReceiver := newReceiver(t), newReceiver(t)
				get := f.destination(t, "GET", getReceiver.URL+"/hook?fixed=1", map[string]string{"X-Api-Key": "k1"})
				post := f.destination(t, "POST", postReceiver.URL+"/in", map[string]string{"Authorization": "Bearer abc"})

				body := []byte("{\"name\": \"Ada\",\n  \"n\": 12345678901234567890, \"tags\": [\"a\"], \"meta\": {\"k\": true}}")
				sub, err := f.events.SubmitWithToken(ctx, "token", "evt-1", body, "req-1")
				require.NoError(t, err)
				logs := f.waitFinal(t, sub.EventID)

				require.Equal(t, datapusher.StatusSuccess, logs[get.ID].Status)
				require.Equal(t, datapusher.StatusSuccess, logs[post.ID].Status)
				require.Equal(t, 200, *logs[post.ID].ResponseStatusCode)
				require.NotNil(t, logs[post.ID].ProcessedTimestamp)

				gets := getReceiver.received()
				require.Len(t, gets, 1)
				require.Equal(t, "GET", gets[0].Method)
				require.Equal(t, "/hook", gets[0].Path)
				require.Equal(t, "1", gets[0].Query.Get("fixed"))
				require.Equal(t, "Ada", gets[0].Query.Get("name"))
				require.Equal(t, "12345678901234567890", gets[0].Query.Get("n"))
				require.Equal(t, `["a"]`, gets[0].Query.Get("tags"))
				require.Equal(t, `{"k":true}`, gets[0].Query.Get("meta"))
				require.Equal(t, "k1", gets[0].Header.Get("X-Api-Key"))
				require.Equal(t, "evt-1", gets[0].Header.Get("CL-X-EVENT-ID"))
				require.Empty(t, gets[0].Body)

				posts := postReceiver.received()
				require.Len(t, posts, 1)
				require.Equal(t, "POST", posts[0].Method)
				require.Equal(t, "/in", posts[0].Path)
				require.Equal(t, body, posts[0].Body, "the body arrives byte for byte")
				require.Equal(t, "application/json", posts[0].Header.Get("Content-Type"))
				require.Equal(t, "Bearer abc", posts[0].Header.Get("Authorization"))
				require.Equal(t, "evt-1", posts[0].Header.Get("CL-X-EVENT-ID"))
				require.Equal(t, "msg_"+logs[post.ID].ID, posts[0].Header.Get("webhook-id"))
				require.NotEmpty(t, posts[0].Header.Get("webhook-signature"))
			})

			t.Run("ServerErrorEndsFailed", func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect, []time.Duration{})
				rec := newReceiver(t, 500)
				d := f.destination(t, "POST", rec.URL, nil)
				sub, err := f.events.SubmitWithToken(ctx, "token", "", []byte(`{"a":1}`), "")
				require.NoError(t, err)

				log := f.waitFinal(t, sub.EventID)[d.ID]
				require.Equal(t, datapusher.StatusFailed, log.Status)
				require.Equal(t, 500, *log.ResponseStatusCode)
				require.Contains(t, log.Error, "500")
				attempts, err := f.store.Attempts(ctx, log.ID)
				require.NoError(t, err)
				require.Len(t, attempts, 1)
				require.Equal(t, "http_status", attempts[0].ErrorClass)
				require.Equal(t, "answer Internal Server Error", attempts[0].ResponseBody)
			})

			t.Run("UnreachableEndsFailed", func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect, []time.Duration{})
				closed := httptest.NewServer(http.NotFoundHandler())
				closed.Close()
				d := f.destination(t, "POST", closed.URL, nil)
				sub, err := f.events.SubmitWithToken(ctx, "token", "", []byte(`{"a":1}`), "")
				require.NoError(t, err)

				log := f.waitFinal(t, sub.EventID)[d.ID]
				require.Equal(t, datapusher.StatusFailed, log.Status)
				require.Nil(t, log.ResponseStatusCode)
				require.NotEmpty(t, log.Error)
				attempts, err := f.store.Attempts(ctx, log.ID)
				require.NoError(t, err)
				require.Equal(t, "connect", attempts[0].ErrorClass)
			})

			t.Run("RetriesUntilSuccess", func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect, []time.Duration{10 * time.Millisecond, 10 * time.Millisecond})
				rec := newReceiver(t, 500, 503)
				d := f.destination(t, "POST", rec.URL, nil)
				sub, err := f.events.SubmitWithToken(ctx, "token", "", []byte(`{"a":1}`), "")
				require.NoError(t, err)

				log := f.waitFinal(t, sub.EventID)[d.ID]
				require.Equal(t, datapusher.StatusSuccess, log.Status)
				require.Equal(t, 3, log.Attempts)
				requests := rec.received()
				require.Len(t, requests, 3)
				for _, r := range requests {
					require.Equal(t, "msg_"+log.ID, r.Header.Get("webhook-id"), "retries keep the webhook id")
				}
			})

			t.Run("NotFoundIsPermanent", func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect, []time.Duration{10 * time.Millisecond})
				rec := newReceiver(t, 404)
				d := f.destination(t, "PUT", rec.URL, nil)
				sub, err := f.events.SubmitWithToken(ctx, "token", "", []byte(`{"a":1}`), "")
				require.NoError(t, err)

				log := f.waitFinal(t, sub.EventID)[d.ID]
				require.Equal(t, datapusher.StatusFailed, log.Status)
				require.Equal(t, 1, log.Attempts)
				require.Len(t, rec.received(), 1)
			})

			t.Run("GoneDisablesDestination", func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect, nil)
				rec := newReceiver(t, 410)
				d := f.destination(t, "POST", rec.URL, nil)
				sub, err := f.events.SubmitWithToken(ctx, "token", "", []byte(`{"a":1}`), "")
				require.NoError(t, err)

				log := f.waitFinal(t, sub.EventID)[d.ID]
				require.Equal(t, datapusher.StatusFailed, log.Status)
				got, err := f.store.Destination(ctx, d.ID)
				require.NoError(t, err)
				require.False(t, got.Enabled)
				require.Contains(t, got.DisabledReason, "410")
			})

			t.Run("RealPayloadsArriveUnchanged", func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect, nil)
				rec := newReceiver(t)
				f.destination(t, "POST", rec.URL, nil)
				bodies := payloads.LoadOrSkip(t, 20)
				for i, body := range bodies {
					_, err := f.events.SubmitWithToken(ctx, "token", payloadEventID(i), body, "")
					require.NoError(t, err)
				}
				require.Eventually(t, func() bool { return len(rec.received()) == len(bodies) }, 30*time.Second, 20*time.Millisecond)
				byEventID := map[string][]byte{}
				for _, r := range rec.received() {
					byEventID[r.Header.Get("CL-X-EVENT-ID")] = r.Body
				}
				for i, body := range bodies {
					require.Equal(t, string(body), string(byEventID[payloadEventID(i)]))
				}
			})
		})
	}
}

func payloadEventID(i int) string {
	b, _ := json.Marshal(i)
	return "payload-" + string(b)
}

func TestDeliveryFaults(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()

			t.Run("RetryAfterIsHonoured", func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect, []time.Duration{10 * time.Millisecond})
				var mu sync.Mutex
				var arrivals []time.Time
				rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					arrivals = append(arrivals, time.Now())
					first := len(arrivals) == 1
					mu.Unlock()
					if first {
						w.Header().Set("Retry-After", "1")
						w.WriteHeader(http.StatusTooManyRequests)
					}
				}))
				t.Cleanup(rec.Close)
				d := f.destination(t, "POST", rec.URL, nil)
				sub, err := f.events.SubmitWithToken(ctx, "token", "", []byte(`{"a":1}`), "")
				require.NoError(t, err)

				log := f.waitFinal(t, sub.EventID)[d.ID]
				require.Equal(t, datapusher.StatusSuccess, log.Status)
				mu.Lock()
				defer mu.Unlock()
				require.Len(t, arrivals, 2)
				require.GreaterOrEqual(t, arrivals[1].Sub(arrivals[0]), 900*time.Millisecond,
					"the second attempt waits for Retry-After, not the 10 ms schedule")
			})

			t.Run("HangingDestinationDoesNotBlockOthers", func(t *testing.T) {
				t.Parallel()
				f := setupWithConfig(t, dialect, delivery.Config{Schedule: []time.Duration{}, MaxPerDestination: 2})
				release := make(chan struct{})
				hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					select {
					case <-release:
					case <-r.Context().Done():
					}
				}))
				t.Cleanup(hanging.Close)
				t.Cleanup(func() { close(release) })
				healthy := newReceiver(t)
				f.destination(t, "POST", hanging.URL, nil)
				f.destination(t, "POST", healthy.URL, nil)

				// Ten events need ten requests to each destination; the
				// hanging one may hold only two workers at a time.
				for range 10 {
					_, err := f.events.SubmitWithToken(ctx, "token", "", []byte(`{"a":1}`), "")
					require.NoError(t, err)
				}
				require.Eventually(t, func() bool { return len(healthy.received()) == 10 }, 20*time.Second, 20*time.Millisecond)
			})

			t.Run("OpenBreakerHoldsDeliveriesWithoutAttempts", func(t *testing.T) {
				t.Parallel()
				f := setupWithConfig(t, dialect, delivery.Config{
					Schedule: []time.Duration{},
					Breaker:  delivery.BreakerConfig{Window: time.Minute, MinAttempts: 2, FailureRatio: 1, Cooldown: time.Hour},
				})
				rec := newReceiver(t, 500, 500, 500, 500)
				d := f.destination(t, "POST", rec.URL, nil)
				for _, id := range []string{"fail-1", "fail-2"} {
					_, err := f.events.SubmitWithToken(ctx, "token", id, []byte(`{"a":1}`), "")
					require.NoError(t, err)
					f.waitFinal(t, id)
				}

				_, err := f.events.SubmitWithToken(ctx, "token", "held", []byte(`{"a":1}`), "")
				require.NoError(t, err)
				heldEventID := "held"
				require.Never(t, func() bool { return len(rec.received()) > 2 }, 500*time.Millisecond, 20*time.Millisecond)
				page, err := f.store.Logs(ctx, datapusher.LogFilter{EventID: &heldEventID, DestinationID: &d.ID})
				require.NoError(t, err)
				require.Equal(t, datapusher.StatusPending, page.Logs[0].Status)
				require.Zero(t, page.Logs[0].Attempts)
			})

			t.Run("DisabledDestinationWaitsUntilEnabled", func(t *testing.T) {
				t.Parallel()
				f := setupWithConfig(t, dialect, delivery.Config{DisabledDelay: 20 * time.Millisecond})
				rec := newReceiver(t)
				d := f.destination(t, "POST", rec.URL, nil)
				d.Enabled, d.DisabledReason = false, "paused by an admin"
				require.NoError(t, f.store.UpdateDestination(ctx, d, f.owner.ID))

				sub, err := f.events.SubmitWithToken(ctx, "token", "", []byte(`{"a":1}`), "")
				require.NoError(t, err)
				require.Never(t, func() bool { return len(rec.received()) > 0 }, 300*time.Millisecond, 20*time.Millisecond)

				d.Enabled, d.DisabledReason = true, ""
				require.NoError(t, f.store.UpdateDestination(ctx, d, f.owner.ID))
				log := f.waitFinal(t, sub.EventID)[d.ID]
				require.Equal(t, datapusher.StatusSuccess, log.Status)
				require.Equal(t, 1, log.Attempts)
			})
		})
	}
}

func TestReplay(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := setup(t, dialect, []time.Duration{})
			rec := newReceiver(t, 500)
			d := f.destination(t, "POST", rec.URL, nil)
			sub, err := f.events.SubmitWithToken(ctx, "token", "replayed", []byte(`{"a":1}`), "")
			require.NoError(t, err)
			log := f.waitFinal(t, sub.EventID)[d.ID]
			require.Equal(t, datapusher.StatusFailed, log.Status)

			_, err = f.store.RequeueLog(ctx, log.ID, f.queue.Enqueue)
			require.NoError(t, err)
			log = f.waitFinal(t, sub.EventID)[d.ID]
			require.Equal(t, datapusher.StatusSuccess, log.Status)
			require.Equal(t, 2, log.Attempts, "the replay adds an attempt to the same log")
			requests := rec.received()
			require.Len(t, requests, 2)
			require.Equal(t, requests[0].Header.Get("webhook-id"), requests[1].Header.Get("webhook-id"))
		})
	}
}

// heldReceiver is a receiver whose first request waits until release is
// called. It counts its requests and the most it had in flight at once.
type heldReceiver struct {
	*httptest.Server
	requests, inFlight, maxInFlight atomic.Int32
	firstArrived, held              chan struct{}
	releaseOnce                     sync.Once
}

func newHeldReceiver(t *testing.T) *heldReceiver {
	t.Helper()
	r := &heldReceiver{firstArrived: make(chan struct{}), held: make(chan struct{})}
	r.Server = httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		n := r.inFlight.Add(1)
		defer r.inFlight.Add(-1)
		for peak := r.maxInFlight.Load(); n > peak && !r.maxInFlight.CompareAndSwap(peak, n); {
			peak = r.maxInFlight.Load()
		}
		if r.requests.Add(1) == 1 {
			close(r.firstArrived)
			<-r.held
		}
	}))
	// Cleanups run last first: the held request ends before Close waits for it.
	t.Cleanup(r.Close)
	t.Cleanup(r.release)
	return r
}

// release lets the first request finish; later calls do nothing.
func (r *heldReceiver) release() { r.releaseOnce.Do(func() { close(r.held) }) }

func TestReplayDuringRequestKeepsBothAttempts(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := setup(t, dialect, []time.Duration{})

			// The first request blocks until the replay's request has arrived.
			rec := newHeldReceiver(t)
			f.destination(t, "POST", rec.URL, nil)
			sub, err := f.events.SubmitWithToken(ctx, "token", "replayed-in-flight", []byte(`{"a":1}`), "")
			require.NoError(t, err)
			<-rec.firstArrived

			page, err := f.store.Logs(ctx, datapusher.LogFilter{EventID: &sub.EventID})
			require.NoError(t, err)
			require.Len(t, page.Logs, 1)
			logID := page.Logs[0].ID
			_, err = f.store.RequeueLog(ctx, logID, f.queue.Enqueue)
			require.NoError(t, err)
			require.Eventually(t, func() bool { return rec.requests.Load() == 2 }, 10*time.Second, 10*time.Millisecond)
			rec.release()

			// Both requests reached the receiver, so both are in the history.
			require.Eventually(t, func() bool {
				attempts, err := f.store.Attempts(ctx, logID)
				return err == nil && len(attempts) == 2
			}, 10*time.Second, 10*time.Millisecond)
			log, err := f.store.Log(ctx, logID)
			require.NoError(t, err)
			require.Equal(t, datapusher.StatusSuccess, log.Status)
			require.Equal(t, 2, log.Attempts)

			// The history lists the overtaken request first, because it
			// started first, whichever was recorded first.
			attempts, err := f.store.Attempts(ctx, logID)
			require.NoError(t, err)
			require.True(t, attempts[0].StartedAt.Before(attempts[1].StartedAt))
			require.ElementsMatch(t, []int{1, 2}, []int{attempts[0].Number, attempts[1].Number})
		})
	}
}

func TestBinaryResponseIsRecorded(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := setup(t, dialect, nil)
			rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte("ok\x00\xff\xfe" + strings.Repeat("é", 3000)))
			}))
			t.Cleanup(rec.Close)
			d := f.destination(t, "POST", rec.URL, nil)
			sub, err := f.events.SubmitWithToken(ctx, "token", "", []byte(`{"a":1}`), "")
			require.NoError(t, err)

			log := f.waitFinal(t, sub.EventID)[d.ID]
			require.Equal(t, datapusher.StatusSuccess, log.Status)
			attempts, err := f.store.Attempts(ctx, log.ID)
			require.NoError(t, err)
			require.Len(t, attempts, 1)
			require.True(t, strings.HasPrefix(attempts[0].ResponseBody, "ok\uFFFD"), attempts[0].ResponseBody[:20])
			require.True(t, utf8.ValidString(attempts[0].ResponseBody))
			require.NotContains(t, attempts[0].ResponseBody, "\x00")
		})
	}
}

func TestDeliveryConnectionFaults(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()

			t.Run("ClosedConnectionIsRetried", func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect, []time.Duration{10 * time.Millisecond})
				var mu sync.Mutex
				calls := 0
				rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					calls++
					first := calls == 1
					mu.Unlock()
					if first {
						conn, _, err := w.(http.Hijacker).Hijack()
						require.NoError(t, err)
						conn.Close()
					}
				}))
				t.Cleanup(rec.Close)
				d := f.destination(t, "POST", rec.URL, nil)
				sub, err := f.events.SubmitWithToken(ctx, "token", "", []byte(`{"a":1}`), "")
				require.NoError(t, err)

				log := f.waitFinal(t, sub.EventID)[d.ID]
				require.Equal(t, datapusher.StatusSuccess, log.Status)
				attempts, err := f.store.Attempts(ctx, log.ID)
				require.NoError(t, err)
				require.Len(t, attempts, 2)
				require.Equal(t, "connect", attempts[0].ErrorClass)
				require.Nil(t, attempts[0].ResponseStatus)
			})

			t.Run("RedirectIsNotFollowed", func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect, []time.Duration{10 * time.Millisecond})
				target := newReceiver(t)
				redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, target.URL, http.StatusFound)
				}))
				t.Cleanup(redirect.Close)
				d := f.destination(t, "POST", redirect.URL, nil)
				sub, err := f.events.SubmitWithToken(ctx, "token", "", []byte(`{"a":1}`), "")
				require.NoError(t, err)

				log := f.waitFinal(t, sub.EventID)[d.ID]
				require.Equal(t, datapusher.StatusFailed, log.Status, "a redirect is a permanent failure")
				require.Equal(t, 1, log.Attempts)
				require.Equal(t, http.StatusFound, *log.ResponseStatusCode)
				require.Empty(t, target.received(), "the redirect target gets nothing")
				attempts, err := f.store.Attempts(ctx, log.ID)
				require.NoError(t, err)
				require.Equal(t, "redirect", attempts[0].ErrorClass)
			})
		})
	}
}

func TestBatch(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()

			t.Run("RunAgainSkipsFinishedLogs", func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect, nil)
				done, open := newReceiver(t), newReceiver(t)
				doneDestination := f.destination(t, "POST", done.URL, nil)
				openDestination := f.destination(t, "POST", open.URL, nil)
				destinations, err := f.store.AccountDestinations(ctx, f.account.AccountID)
				require.NoError(t, err)

				// Store the event without jobs, finish one log as a first
				// run of its batch would have, then queue the batch.
				item := &sqlstore.NewEvent{
					Event:        &datapusher.Event{AccountID: f.account.AccountID, EventID: "again", Body: []byte(`{"a":1}`)},
					Destinations: destinations,
				}
				require.NoError(t, f.store.InsertEvents(ctx, []*sqlstore.NewEvent{item}, nil))
				require.Len(t, item.Logs, 2)
				for _, log := range item.Logs {
					if log.DestinationID == doneDestination.ID {
						require.NoError(t, f.store.RecordAttempt(ctx, log.ID, sqlstore.AttemptOutcome{
							Attempt: &datapusher.Attempt{StartedAt: time.Now(), ErrorClass: "none"},
							Status:  datapusher.StatusSuccess, Final: true,
						}))
					}
				}
				require.NoError(t, f.store.WithTx(ctx, func(tx *sql.Tx) error {
					return f.queue.Enqueue(ctx, tx, item.Logs)
				}))

				logs := f.waitFinal(t, "again")
				require.Equal(t, datapusher.StatusSuccess, logs[openDestination.ID].Status)
				require.Len(t, open.received(), 1)
				require.Never(t, func() bool { return len(done.received()) > 0 }, 300*time.Millisecond, 20*time.Millisecond,
					"the finished log is not delivered again")
			})

			t.Run("BusyDestinationMovesDeliveriesToTheirOwnJobs", func(t *testing.T) {
				t.Parallel()
				f := setupWithConfig(t, dialect, delivery.Config{
					MaxPerDestination: 1, BusyWait: 20 * time.Millisecond,
					BusyDelay: 20 * time.Millisecond, MaxBusyDelay: 200 * time.Millisecond,
				})
				// The first request holds the destination's one slot until
				// another delivery has found it busy and moved to a job of
				// its own.
				slow := newHeldReceiver(t)
				d := f.destination(t, "POST", slow.URL, nil)

				// Each event is a batch job of its own, and the jobs compete
				// for the destination's one slot.
				for i := range 5 {
					_, err := f.events.SubmitWithToken(ctx, "token", fmt.Sprint("busy-", i), []byte(`{"a":1}`), "")
					require.NoError(t, err)
				}
				require.Eventually(t, func() bool {
					page, err := f.store.Logs(ctx, datapusher.LogFilter{DestinationID: &d.ID})
					require.NoError(t, err)
					return slices.ContainsFunc(page.Logs, func(l *datapusher.DeliveryLog) bool { return l.Generation > 0 })
				}, 20*time.Second, 10*time.Millisecond, "no delivery moved to a job of its own while the destination was busy")
				slow.release()

				moved := 0
				for i := range 5 {
					log := f.waitFinal(t, fmt.Sprint("busy-", i))[d.ID]
					require.Equal(t, datapusher.StatusSuccess, log.Status)
					require.Equal(t, 1, log.Attempts)
					if log.Generation > 0 {
						moved++
					}
				}
				require.Positive(t, moved, "deliveries that found the destination busy moved to jobs of their own")
				require.Equal(t, int32(1), slow.maxInFlight.Load(), "never more requests at once than the destination's limit")
			})
		})
	}
}
