package delivery

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/delivery/sender"
	"github.com/datapusher/datapusher/internal/testdb"
	"github.com/datapusher/datapusher/sqlstore"
)

// TestSendReleasesEverySlot drives each return path of send and checks that
// the destination's slots are all free afterwards.
func TestSendReleasesEverySlot(t *testing.T) {
	store := testdb.Open(t, sqlstore.DialectSQLite)
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		}
		if r.URL.Path == "/fail" {
			w.WriteHeader(500)
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hang) })
	s := sender.New(sender.Options{Timeout: time.Second,
		AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	w := NewWorker(store, s, Config{Concurrency: 1, MaxPerDestination: 2, BusyWait: 50 * time.Millisecond,
		RequestTimeout: time.Second,
		Breaker:        BreakerConfig{Window: time.Minute, MinAttempts: 2, FailureRatio: 1, Cooldown: time.Hour}},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(w.Close)

	task := func(dest, path string) *sqlstore.DeliveryTask {
		return &sqlstore.DeliveryTask{
			Log: &datapusher.DeliveryLog{ID: "missing-" + dest, EventID: "e"},
			Destination: &datapusher.Destination{ID: dest, URL: srv.URL + path, HTTPMethod: "POST", Enabled: true,
				SigningSecret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		}
	}
	idle := func(t *testing.T, dest string) {
		t.Helper()
		d := w.holdSlots(dest)
		defer w.dropSlots(d)
		d.mu.Lock()
		inFlight, waiters := d.inFlight, d.waiters.Len()
		d.mu.Unlock()
		require.Zero(t, inFlight, "slots in flight")
		require.Zero(t, waiters, "waiters")
		w.mu.Lock()
		holders := d.holders
		w.mu.Unlock()
		require.Equal(t, 1, holders, "holds besides this check")
	}
	bg := context.Background()

	t.Run("Success", func(t *testing.T) {
		_, res, wait, err := w.send(bg, task("a", "/"), nil)
		require.NoError(t, err)
		require.Zero(t, wait)
		require.True(t, res.Success())
		idle(t, "a")
	})
	t.Run("DestinationBusy", func(t *testing.T) {
		d := w.holdSlots("b")
		first, _ := d.acquire(bg, 0, false)
		require.True(t, first)
		second, _ := d.acquire(bg, 0, false)
		require.True(t, second)
		_, _, wait, err := w.send(bg, task("b", "/"), nil)
		require.NoError(t, err)
		require.Positive(t, wait)
		d.release(sender.Result{}, true)
		d.release(sender.Result{}, true)
		w.dropSlots(d)
		idle(t, "b")
	})
	t.Run("ProcessSlotTaken", func(t *testing.T) {
		w.sending <- struct{}{}
		ctx, cancel := context.WithTimeout(bg, 1100*time.Millisecond)
		defer cancel()
		_, _, wait, err := w.send(ctx, task("c", "/"), nil)
		<-w.sending
		require.NoError(t, err)
		require.Positive(t, wait)
		idle(t, "c")
	})
	t.Run("BatchWaitEnded", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(bg, 500*time.Millisecond) // less than RequestTimeout
		defer cancel()
		_, _, wait, err := w.send(ctx, task("d", "/"), &batchDestination{loadedAt: time.Now()})
		require.NoError(t, err)
		require.Positive(t, wait)
		idle(t, "d")
	})
	t.Run("RefreshSkips", func(t *testing.T) {
		got, _, _, err := w.send(bg, task("e", "/"), &batchDestination{loadedAt: time.Now().Add(-time.Hour)})
		require.NoError(t, err)
		require.Nil(t, got, "the log does not exist")
		idle(t, "e")
	})
	t.Run("ContextEndedBeforeRequest", func(t *testing.T) {
		ctx, cancel := context.WithCancel(bg)
		cancel()
		_, _, _, err := w.send(ctx, task("f", "/"), nil)
		require.ErrorIs(t, err, context.Canceled)
		idle(t, "f")
	})
	t.Run("BreakerOpen", func(t *testing.T) {
		for range 2 {
			_, res, _, err := w.send(bg, task("g", "/fail"), nil)
			require.NoError(t, err)
			require.Equal(t, 500, res.StatusCode)
		}
		_, res, wait, err := w.send(bg, task("g", "/fail"), nil)
		require.NoError(t, err)
		require.Zero(t, res.StatusCode, "no request while the breaker is open")
		require.Greater(t, wait, time.Minute)
		idle(t, "g")
	})
	t.Run("Shutdown", func(t *testing.T) {
		ctx, cancel := context.WithCancel(bg)
		time.AfterFunc(100*time.Millisecond, cancel)
		_, res, _, err := w.send(ctx, task("h", "/hang"), nil)
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, sender.ClassCanceled, res.Class)
		idle(t, "h")
	})
}

func TestSweepForgetsIdleSlots(t *testing.T) {
	w := &Worker{cfg: Config{MaxPerDestination: 50}, slots: map[string]*destinationSlots{}}
	idle := w.holdSlots("idle")
	idle.mu.Lock()
	idle.limit = 30
	idle.mu.Unlock()
	w.dropSlots(idle)
	inUse := w.holdSlots("in-use")
	defer w.dropSlots(inUse)
	recent := w.holdSlots("recent")
	w.dropSlots(recent)

	// Age the first two past the idle time, and let the next hold sweep.
	w.mu.Lock()
	idle.lastUsed = idle.lastUsed.Add(-slotsIdleTime)
	inUse.lastUsed = inUse.lastUsed.Add(-slotsIdleTime)
	w.lastSlotsSweep = w.lastSlotsSweep.Add(-slotsSweepInterval)
	w.mu.Unlock()
	other := w.holdSlots("other")
	w.dropSlots(other)

	w.mu.Lock()
	_, idleKept := w.slots["idle"]
	inUseKept, recentKept := w.slots["in-use"], w.slots["recent"]
	w.mu.Unlock()
	require.False(t, idleKept, "idle slots kept")
	require.Same(t, inUse, inUseKept, "slots in use")
	require.Same(t, recent, recentKept, "recently used slots")

	again := w.holdSlots("idle")
	defer w.dropSlots(again)
	require.NotSame(t, idle, again)
	require.Equal(t, initialPerDestination, again.Limit())
}
