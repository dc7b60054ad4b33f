package delivery

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBreakers(t *testing.T) {
	t.Parallel()

	t.Run("OpensAtFailureRatio", func(t *testing.T) {
		t.Parallel()
		b := newBreakers(BreakerConfig{Window: time.Minute, MinAttempts: 10, FailureRatio: 0.7, Cooldown: time.Hour}, nil)
		outcomes := []error{nil, nil, nil, errAttemptFailed, errAttemptFailed, errAttemptFailed,
			errAttemptFailed, errAttemptFailed, errAttemptFailed}
		for _, outcome := range outcomes {
			report, ok := b.allow("d1")
			require.True(t, ok)
			report(outcome)
		}
		require.Equal(t, "closed", b.state("d1"), "9 attempts are below the minimum")

		report, ok := b.allow("d1")
		require.True(t, ok)
		report(errAttemptFailed)
		require.Equal(t, "open", b.state("d1"), "7 of 10 failed")
		_, ok = b.allow("d1")
		require.False(t, ok)

		_, ok = b.allow("d2")
		require.True(t, ok, "other destinations are not affected")
	})

	t.Run("StaysClosedBelowRatio", func(t *testing.T) {
		t.Parallel()
		b := newBreakers(BreakerConfig{Window: time.Minute, MinAttempts: 10, FailureRatio: 0.7, Cooldown: time.Hour}, nil)
		for i := range 20 {
			report, ok := b.allow("d1")
			require.True(t, ok)
			if i%2 == 0 {
				report(errAttemptFailed)
			} else {
				report(nil)
			}
		}
		require.Equal(t, "closed", b.state("d1"))
	})

	t.Run("ProbeClosesAfterCooldown", func(t *testing.T) {
		t.Parallel()
		b := newBreakers(BreakerConfig{Window: time.Minute, MinAttempts: 2, FailureRatio: 1, Cooldown: 20 * time.Millisecond}, nil)
		for range 2 {
			report, ok := b.allow("d1")
			require.True(t, ok)
			report(errAttemptFailed)
		}
		require.Equal(t, "open", b.state("d1"))

		require.Eventually(t, func() bool { return b.state("d1") == "half-open" }, 5*time.Second, 5*time.Millisecond)
		probe, ok := b.allow("d1")
		require.True(t, ok)
		_, ok = b.allow("d1")
		require.False(t, ok, "one probe at a time")
		probe(nil)
		require.Equal(t, "closed", b.state("d1"))
	})

	t.Run("InterruptionsAreNotCounted", func(t *testing.T) {
		t.Parallel()
		b := newBreakers(BreakerConfig{Window: time.Minute, MinAttempts: 2, FailureRatio: 1, Cooldown: time.Hour}, nil)
		for range 5 {
			report, ok := b.allow("d1")
			require.True(t, ok)
			report(errAttemptInterrupted)
		}
		require.Equal(t, "closed", b.state("d1"))
	})
}
