package delivery

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDestinationSlots(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("BusyTimeResetsOnFreeSlot", func(t *testing.T) {
		t.Parallel()
		d := &destinationSlots{tokens: make(chan struct{}, 1)}
		ok, _ := d.acquire(ctx, 0, false)
		require.True(t, ok)

		firstRefusal := time.Now()
		ok, busyFor := d.acquire(ctx, 0, false)
		require.False(t, ok)
		require.LessOrEqual(t, busyFor, time.Since(firstRefusal), "the busy time starts at this refusal")
		time.Sleep(50 * time.Millisecond)
		ok, busyFor = d.acquire(ctx, 0, false)
		require.False(t, ok)
		require.GreaterOrEqual(t, busyFor, 50*time.Millisecond, "the wait counts from the first refusal")

		d.release()
		ok, _ = d.acquire(ctx, 0, false)
		require.True(t, ok)
		d.release()
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
			d.release()
		}()
	}

	t.Run("BatchWaitsWhileRequestsFinish", func(t *testing.T) {
		t.Parallel()
		d := &destinationSlots{tokens: make(chan struct{}, 1)}
		d.tokens <- struct{}{}
		finishing(d, 600*time.Millisecond)
		ok, _ := d.acquire(ctx, 200*time.Millisecond, true)
		require.True(t, ok, "requests kept finishing, so the wait went on past 200 ms")
	})

	t.Run("SingleWaitEndsOnTime", func(t *testing.T) {
		t.Parallel()
		d := &destinationSlots{tokens: make(chan struct{}, 1)}
		d.tokens <- struct{}{}
		finishing(d, 2*time.Second)
		ok, busyFor := d.acquire(ctx, 100*time.Millisecond, false)
		require.False(t, ok)
		require.GreaterOrEqual(t, busyFor, 100*time.Millisecond)
	})

	t.Run("BatchLeavesStuckDestination", func(t *testing.T) {
		t.Parallel()
		d := &destinationSlots{tokens: make(chan struct{}, 1)}
		d.tokens <- struct{}{}
		ok, _ := d.acquire(ctx, 100*time.Millisecond, true)
		require.False(t, ok, "nothing finished within the wait")
	})

	t.Run("ContextEndsTheWait", func(t *testing.T) {
		t.Parallel()
		d := &destinationSlots{tokens: make(chan struct{}, 1)}
		d.tokens <- struct{}{}
		finishing(d, 5*time.Second)
		waitCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		ok, _ := d.acquire(waitCtx, 100*time.Millisecond, true)
		require.False(t, ok)
	})
}
