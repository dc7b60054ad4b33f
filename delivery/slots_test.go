package delivery

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher/delivery/sender"
)

func TestDestinationSlots(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// fullSlots returns slots with a limit of 1 whose one slot is in use.
	fullSlots := func(t *testing.T) *destinationSlots {
		d := newDestinationSlots(1, 1)
		ok, _ := d.acquire(ctx, 0, false)
		require.True(t, ok)
		return d
	}

	t.Run("BusyTimeResetsOnFreeSlot", func(t *testing.T) {
		t.Parallel()
		d := fullSlots(t)

		firstRefusal := time.Now()
		ok, busyFor := d.acquire(ctx, 0, false)
		require.False(t, ok)
		require.LessOrEqual(t, busyFor, time.Since(firstRefusal), "the busy time starts at this refusal")
		time.Sleep(50 * time.Millisecond)
		ok, busyFor = d.acquire(ctx, 0, false)
		require.False(t, ok)
		require.GreaterOrEqual(t, busyFor, 50*time.Millisecond, "the wait counts from the first refusal")

		d.release(sender.Result{}, true)
		ok, _ = d.acquire(ctx, 0, false)
		require.True(t, ok)
		d.release(sender.Result{}, true)
		ok, _ = d.acquire(ctx, 0, false)
		require.True(t, ok)
		afterReset := time.Now()
		ok, busyFor = d.acquire(ctx, 0, false)
		require.False(t, ok)
		require.LessOrEqual(t, busyFor, time.Since(afterReset), "a free slot ended the busy time")
	})

	// finishing simulates other requests of the destination finishing, and
	// their slots going to other waiters, for a while; then it frees one.
	finishing := func(d *destinationSlots, duration time.Duration) {
		go func() {
			deadline := time.Now().Add(duration)
			for time.Now().Before(deadline) {
				d.finished.Add(1)
				time.Sleep(5 * time.Millisecond)
			}
			d.release(sender.Result{}, true)
		}()
	}

	t.Run("BatchWaitsWhileRequestsFinish", func(t *testing.T) {
		t.Parallel()
		d := fullSlots(t)
		finishing(d, 600*time.Millisecond)
		ok, _ := d.acquire(ctx, 200*time.Millisecond, true)
		require.True(t, ok, "requests kept finishing, so the wait went on past 200 ms")
	})

	t.Run("SingleWaitEndsOnTime", func(t *testing.T) {
		t.Parallel()
		d := fullSlots(t)
		finishing(d, 2*time.Second)
		ok, busyFor := d.acquire(ctx, 100*time.Millisecond, false)
		require.False(t, ok)
		require.GreaterOrEqual(t, busyFor, 100*time.Millisecond)
	})

	t.Run("BatchLeavesStuckDestination", func(t *testing.T) {
		t.Parallel()
		d := fullSlots(t)
		ok, _ := d.acquire(ctx, 100*time.Millisecond, true)
		require.False(t, ok, "nothing finished within the wait")
	})

	t.Run("ContextEndsTheWait", func(t *testing.T) {
		t.Parallel()
		d := fullSlots(t)
		finishing(d, 5*time.Second)
		waitCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		ok, _ := d.acquire(waitCtx, 100*time.Millisecond, true)
		require.False(t, ok)
	})
}

func TestDestinationSlotsLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	success := sender.Result{StatusCode: 200}
	timeout := sender.Result{Class: sender.ClassTimeout}
	unavailable := sender.Result{StatusCode: 503, Class: sender.ClassHTTPStatus}
	notFound := sender.Result{StatusCode: 404, Class: sender.ClassHTTPStatus}

	// take acquires n slots without waiting and reports whether it got all.
	take := func(d *destinationSlots, n int) bool {
		for range n {
			if ok, _ := d.acquire(ctx, 0, false); !ok {
				return false
			}
		}
		return true
	}
	// releaseAll frees n slots with res.
	releaseAll := func(d *destinationSlots, n int, res sender.Result) {
		for range n {
			d.release(res, true)
		}
	}

	// queue starts a request that waits for a slot and returns when it is
	// queued. The channel reports whether it got one.
	queue := func(d *destinationSlots) <-chan bool {
		got := make(chan bool, 1)
		go func() {
			ok, _ := d.acquire(ctx, time.Minute, false)
			got <- ok
		}()
		require.Eventually(t, func() bool {
			d.mu.Lock()
			defer d.mu.Unlock()
			return d.waiters.Len() > 0
		}, 5*time.Second, time.Millisecond)
		return got
	}

	t.Run("GrowsWhileRequestsWait", func(t *testing.T) {
		t.Parallel()
		d := newDestinationSlots(2, 4)
		require.True(t, take(d, 2))
		require.False(t, take(d, 1), "two slots at first")
		waiting := queue(d)
		d.release(success, true)
		require.Equal(t, 2, d.Limit(), "one success is not a limit's worth")
		require.True(t, <-waiting, "the freed slot went to the waiting request")
		waiting = queue(d)
		d.release(success, true)
		require.Equal(t, 3, d.Limit(), "two successes while a request waited add one slot")
		require.True(t, <-waiting)
		require.True(t, take(d, 1), "the added slot is free")
		require.False(t, take(d, 1))

		for range 3 {
			waiting = queue(d)
			d.release(success, true)
			require.True(t, <-waiting)
		}
		require.Equal(t, 4, d.Limit())
		require.True(t, take(d, 1))
		for range 8 {
			waiting = queue(d)
			d.release(success, true)
			require.True(t, <-waiting)
		}
		require.Equal(t, 4, d.Limit(), "the limit stops at the maximum")
	})

	t.Run("StaysWhenGrowthNotAllowed", func(t *testing.T) {
		t.Parallel()
		d := newDestinationSlots(2, 4)
		require.True(t, take(d, 2))
		for range 6 {
			waiting := queue(d)
			d.release(success, false)
			require.True(t, <-waiting)
		}
		require.Equal(t, 2, d.Limit(), "the requests waited for something other than the destination")
	})

	t.Run("StaysWithoutDemand", func(t *testing.T) {
		t.Parallel()
		d := newDestinationSlots(2, 10)
		for range 50 {
			require.True(t, take(d, 1))
			d.release(success, true)
		}
		require.Equal(t, 2, d.Limit(), "requests never waited, so no slot was added")
	})

	t.Run("HalvesOnOverload", func(t *testing.T) {
		t.Parallel()
		d := newDestinationSlots(8, 8)
		require.True(t, take(d, 8))
		releaseAll(d, 7, success)
		d.release(timeout, true)
		require.Equal(t, 4, d.Limit())
		require.True(t, take(d, 4))
		require.False(t, take(d, 1), "four slots after a timeout")

		releaseAll(d, 3, unavailable)
		require.Equal(t, 4, d.Limit(), "one halving per limit's worth of answers")
		d.release(unavailable, true)
		require.Equal(t, 2, d.Limit())
		require.True(t, take(d, 2))
		releaseAll(d, 2, unavailable)
		require.Equal(t, 1, d.Limit())
		require.True(t, take(d, 1))
		d.release(timeout, true)
		require.Equal(t, 1, d.Limit(), "never below one slot")
	})

	t.Run("ClientErrorsKeepTheLimit", func(t *testing.T) {
		t.Parallel()
		d := newDestinationSlots(4, 4)
		for range 20 {
			require.True(t, take(d, 1))
			d.release(notFound, true)
		}
		require.Equal(t, 4, d.Limit())
	})

	t.Run("CanceledRequestsDoNotCount", func(t *testing.T) {
		t.Parallel()
		d := newDestinationSlots(4, 4)
		require.True(t, take(d, 4))
		releaseAll(d, 3, sender.Result{Class: sender.ClassCanceled})
		d.release(timeout, true)
		require.Equal(t, 4, d.Limit(), "one response since the start, fewer than the limit")
	})

	t.Run("ShrinksBelowRequestsInFlight", func(t *testing.T) {
		t.Parallel()
		d := newDestinationSlots(4, 4)
		for range 4 {
			require.True(t, take(d, 1))
			d.release(success, true)
		}
		require.True(t, take(d, 4))
		d.release(timeout, true)
		require.Equal(t, 2, d.Limit())
		require.False(t, take(d, 1), "three requests are still in flight")
		d.release(notFound, true)
		require.False(t, take(d, 1), "two are, as many as the limit")
		d.release(notFound, true)
		require.True(t, take(d, 1))
		require.False(t, take(d, 1))
		require.Equal(t, 2, d.Limit())
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		const maxLimit = 6
		d := newDestinationSlots(3, maxLimit)
		results := []sender.Result{success, success, success, success, timeout, unavailable, notFound, {}}
		var inFlight, peak atomic.Int64
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				for i := range 300 {
					ok, _ := d.acquire(ctx, 50*time.Millisecond, false)
					if !ok {
						continue
					}
					n := inFlight.Add(1)
					for {
						p := peak.Load()
						if n <= p || peak.CompareAndSwap(p, n) {
							break
						}
					}
					inFlight.Add(-1)
					d.release(results[(g+i)%len(results)], i%2 == 0)
				}
			})
		}
		wg.Wait()
		require.LessOrEqual(t, peak.Load(), int64(maxLimit))

		d.mu.Lock()
		limit, stillInFlight, waiters := d.limit, d.inFlight, d.waiters.Len()
		d.mu.Unlock()
		require.Zero(t, stillInFlight)
		require.Zero(t, waiters)
		require.True(t, take(d, limit), "every slot below the limit is free")
		require.False(t, take(d, 1))
	})

	t.Run("GrantAtTimeoutKeepsCount", func(t *testing.T) {
		t.Parallel()
		d := newDestinationSlots(8, 8)
		for range 8 {
			require.True(t, take(d, 1))
			d.release(success, true)
		}
		require.True(t, take(d, 8))
		waitCtx, cancel := context.WithCancel(ctx)
		got := make(chan bool, 6)
		for range 6 {
			go func() {
				ok, _ := d.acquire(waitCtx, time.Hour, false)
				got <- ok
			}()
		}
		require.Eventually(t, func() bool {
			d.mu.Lock()
			defer d.mu.Unlock()
			return d.waiters.Len() == 6
		}, 5*time.Second, time.Millisecond)
		// The waits end while the releases hand their slots on, so some
		// are granted just as they end.
		cancel()
		releaseAll(d, 6, success)
		d.release(unavailable, true)
		for range 6 {
			if <-got {
				d.release(sender.Result{}, true)
			}
		}
		d.release(success, true)

		d.mu.Lock()
		limit, inFlight := d.limit, d.inFlight
		d.mu.Unlock()
		require.Equal(t, 4, limit)
		require.Zero(t, inFlight, "every granted slot was released")
		require.True(t, take(d, limit))
		require.False(t, take(d, 1), "no more requests than the limit")
	})
}
