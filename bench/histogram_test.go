package bench

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHistogramQuantile(t *testing.T) {
	t.Parallel()
	h := &Histogram{}
	// Record 1 µs to 10,000 µs in shuffled order.
	for _, i := range rand.Perm(10000) {
		h.Record(time.Duration(i+1) * time.Microsecond)
	}
	require.Equal(t, uint64(10000), h.Count())
	require.Equal(t, 10*time.Millisecond, h.Max())

	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0.50, 5000 * time.Microsecond},
		{0.95, 9500 * time.Microsecond},
		{0.99, 9900 * time.Microsecond},
		{1.00, 10000 * time.Microsecond},
		{0.0001, 1 * time.Microsecond},
	} {
		got := h.Quantile(tc.q)
		relative := math.Abs(float64(got-tc.want)) / float64(tc.want)
		require.LessOrEqual(t, relative, 0.01, "quantile %g: got %s, want %s within 1%%", tc.q, got, tc.want)
	}
}

func TestHistogramEmpty(t *testing.T) {
	t.Parallel()
	h := &Histogram{}
	require.Equal(t, time.Duration(0), h.Quantile(0.99))
	require.Equal(t, LatencySummary{}, h.Summary())
}

func TestHistogramSmallValuesExact(t *testing.T) {
	t.Parallel()
	h := &Histogram{}
	for v := range 100 {
		h.Record(time.Duration(v + 1))
	}
	require.Equal(t, time.Duration(50), h.Quantile(0.50))
	require.Equal(t, time.Duration(99), h.Quantile(0.99))
	require.Equal(t, time.Duration(100), h.Quantile(1))
}

func TestHistogramNegativeIsZero(t *testing.T) {
	t.Parallel()
	h := &Histogram{}
	h.Record(-time.Second)
	require.Equal(t, time.Duration(0), h.Quantile(0.5))
	require.Equal(t, time.Duration(0), h.Max())
}

func TestHistogramQuantileNeverAboveMax(t *testing.T) {
	t.Parallel()
	h := &Histogram{}
	// 1,000,001 ns falls in the bucket from 999,424 ns, 8,192 ns wide,
	// whose midpoint is above it.
	h.Record(1000001)
	require.Equal(t, time.Duration(1000001), h.Quantile(0.5))
}

func TestHistogramSummary(t *testing.T) {
	t.Parallel()
	h := &Histogram{}
	h.Record(2 * time.Millisecond)
	s := h.Summary()
	require.Equal(t, uint64(1), s.Count)
	require.InDelta(t, 2.0, s.P50Ms, 0.02)
	require.InDelta(t, 2.0, s.P99Ms, 0.02)
	require.Equal(t, 2.0, s.MaxMs)
}

func TestHistogramConcurrentRecords(t *testing.T) {
	t.Parallel()
	h := &Histogram{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				h.Record(time.Duration(g*1000+i) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	require.Equal(t, uint64(8000), h.Count())
	require.Equal(t, 7999*time.Microsecond, h.Max())
}

func TestBucketBoundsContainValue(t *testing.T) {
	t.Parallel()
	values := []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 123456789, math.MaxInt64, math.MaxUint64}
	for range 10000 {
		values = append(values, rand.Uint64()>>rand.IntN(64))
	}
	for _, v := range values {
		i := bucketIndex(v)
		require.Less(t, i, numBuckets, "value %d", v)
		lower, width := bucketBounds(i)
		require.LessOrEqual(t, lower, v, "value %d, bucket %d", v, i)
		require.Less(t, v-lower, width, "value %d, bucket %d", v, i)
		if v >= linearBuckets {
			require.LessOrEqual(t, float64(width)/float64(lower), 1.0/64, "value %d", v)
		}
	}
}

func TestBucketIndexMonotonic(t *testing.T) {
	t.Parallel()
	previous := 0
	for v := uint64(0); v < 1<<16; v++ {
		i := bucketIndex(v)
		require.GreaterOrEqual(t, i, previous, "value %d", v)
		require.LessOrEqual(t, i-previous, 1, "value %d skips a bucket", v)
		previous = i
	}
}
