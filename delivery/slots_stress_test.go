package delivery

import (
	"context"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher/delivery/sender"
)

// checkSlots asserts the invariants of d under its mutex: the count is in
// range, and no request waits while a slot is free.
func checkSlots(t *testing.T, d *destinationSlots) {
	t.Helper()
	d.mu.Lock()
	limit, inFlight, waiters := d.limit, d.inFlight, d.waiters.Len()
	d.mu.Unlock()
	if inFlight < 0 || limit < 1 || limit > d.max {
		t.Errorf("limit %d, in flight %d", limit, inFlight)
	}
	if waiters > 0 && inFlight < limit {
		t.Errorf("%d waiters while %d of %d slots are taken", waiters, inFlight, limit)
	}
}

// TestDestinationSlotsStress runs many requests with random results, waits
// and cancellations, and checks the slots' counts after each call and at
// the end.
func TestDestinationSlotsStress(t *testing.T) {
	t.Parallel()
	success := sender.Result{StatusCode: 200}
	results := []sender.Result{success, success, success, success, success,
		{Class: sender.ClassTimeout}, {Class: sender.ClassConnect},
		{StatusCode: 429, Class: sender.ClassHTTPStatus}, {StatusCode: 503, Class: sender.ClassHTTPStatus},
		{StatusCode: 404, Class: sender.ClassHTTPStatus}, {}, {Class: sender.ClassCanceled}}
	const maxLimit = 12
	for round := range 10 {
		d := newDestinationSlots(10, maxLimit)
		var running atomic.Int64
		var overLimit atomic.Int64
		var wg sync.WaitGroup
		for g := range 64 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(round), uint64(g)))
				for range 200 {
					ctx, cancel := context.Background(), context.CancelFunc(func() {})
					switch rng.IntN(4) {
					case 0:
						ctx, cancel = context.WithTimeout(ctx, time.Duration(rng.IntN(3000))*time.Microsecond)
					case 1:
						ctx, cancel = context.WithCancel(ctx)
						time.AfterFunc(time.Duration(rng.IntN(2000))*time.Microsecond, cancel)
					}
					wait := time.Duration(rng.IntN(3)) * time.Millisecond
					untilStuck := rng.IntN(2) == 0
					ok, _ := d.acquire(ctx, wait, untilStuck)
					cancel()
					checkSlots(t, d)
					if !ok {
						continue
					}
					if n := running.Add(1); n > maxLimit {
						overLimit.Add(1)
					}
					if rng.IntN(3) == 0 {
						time.Sleep(time.Duration(rng.IntN(500)) * time.Microsecond)
					} else {
						runtime.Gosched()
					}
					running.Add(-1)
					d.release(results[rng.IntN(len(results))], rng.IntN(2) == 0)
					checkSlots(t, d)
				}
			})
		}
		wg.Wait()

		require.Zero(t, overLimit.Load(), "more requests than the max at once")
		d.mu.Lock()
		limit, inFlight, waiters := d.limit, d.inFlight, d.waiters.Len()
		d.mu.Unlock()
		require.Zero(t, inFlight, "round %d: slots leaked", round)
		require.Zero(t, waiters, "round %d: waiters left", round)
		for i := range limit {
			ok, _ := d.acquire(context.Background(), 0, false)
			require.True(t, ok, "round %d: slot %d of %d", round, i+1, limit)
		}
		ok, _ := d.acquire(context.Background(), 0, false)
		require.False(t, ok, "round %d: a slot beyond the limit %d", round, limit)
	}
}
