package bench

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPacerSpacing(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := NewPacer(1000, start, 100*time.Millisecond)
	for i := range 5 {
		require.Equal(t, start.Add(time.Duration(i)*time.Millisecond), p.Next(start))
	}
	require.Equal(t, int64(0), p.Dropped())
}

func TestPacerSlotsAheadOfCaller(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := NewPacer(4, start, 100*time.Millisecond)
	require.Equal(t, start, p.Next(start))
	// The caller is early: the slot is still 250 ms after the last one.
	require.Equal(t, start.Add(250*time.Millisecond), p.Next(start.Add(time.Millisecond)))
}

func TestPacerLateWithinMaxLag(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := NewPacer(1000, start, 100*time.Millisecond)
	// 50 ms late: the missed slots are still handed out, so the senders
	// catch up.
	now := start.Add(50 * time.Millisecond)
	require.Equal(t, start, p.Next(now))
	require.Equal(t, start.Add(time.Millisecond), p.Next(now))
	require.Equal(t, int64(0), p.Dropped())
}

func TestPacerDropsMissedSlots(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := NewPacer(1000, start, 100*time.Millisecond)
	require.Equal(t, start, p.Next(start))

	// A second late: the schedule restarts at now instead of sending
	// 1,000 requests at once.
	now := start.Add(time.Second)
	require.Equal(t, now, p.Next(now))
	require.Equal(t, now.Add(time.Millisecond), p.Next(now))
	require.Equal(t, int64(999), p.Dropped())
}

func TestPacerFractionalRate(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := NewPacer(0.5, start, time.Second)
	p.Next(start)
	require.Equal(t, start.Add(2*time.Second), p.Next(start))
}

// TestRunLoadPacedNeverExceedsRate checks the upper bound of a paced run:
// slots are at least 1/rate apart and before the deadline, so no more than
// rate*duration+1 events are sent however many senders there are.
func TestRunLoadPacedNeverExceedsRate(t *testing.T) {
	t.Parallel()
	bare, err := startBareServer()
	require.NoError(t, err)
	t.Cleanup(bare.Close)

	client := newHTTPClient(8)
	t.Cleanup(client.CloseIdleConnections)
	stats := &loadStats{}
	spec := loadSpec{URL: bare.URL, Concurrency: 8, Rate: 100, Duration: 500 * time.Millisecond, PayloadSize: 200}
	result := runLoad(context.Background(), client, newClock(), spec, stats)

	require.LessOrEqual(t, stats.sent.Load(), int64(51))
	require.Positive(t, stats.accepted.Load())
	require.Empty(t, stats.Errors())
	require.GreaterOrEqual(t, result.Elapsed, 400*time.Millisecond)
}

func TestRunLoadStopsAtCount(t *testing.T) {
	t.Parallel()
	bare, err := startBareServer()
	require.NoError(t, err)
	t.Cleanup(bare.Close)

	client := newHTTPClient(4)
	t.Cleanup(client.CloseIdleConnections)
	stats := &loadStats{}
	spec := loadSpec{URL: bare.URL, Concurrency: 4, Duration: time.Minute, Count: 25}
	runLoad(context.Background(), client, newClock(), spec, stats)

	require.Equal(t, int64(25), stats.sent.Load())
	require.Equal(t, int64(25), stats.accepted.Load())
	require.Equal(t, uint64(25), stats.Latency.Count())
}
