package bench

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Bucket layout of Histogram: values below linearBuckets nanoseconds get a
// bucket each, and every power of two above is split into halfBuckets
// buckets, so a bucket is at most 1/64 of its lower bound wide.
const (
	subBucketBits = 7
	linearBuckets = 1 << subBucketBits // 128
	halfBuckets   = linearBuckets / 2  // 64
	numBuckets    = linearBuckets + (63-subBucketBits+1)*halfBuckets
)

// Histogram counts durations in log-linear buckets, in the manner of
// HdrHistogram. Its quantiles are within 1% of the exact ones, and its
// memory stays fixed however many values it records. It is safe for
// concurrent use, and the zero value is ready to use.
type Histogram struct {
	buckets [numBuckets]atomic.Uint64
	count   atomic.Uint64
	max     atomic.Int64
}

// Record adds one duration. A negative duration counts as zero.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.buckets[bucketIndex(uint64(v))].Add(1)
	h.count.Add(1)
	for {
		current := h.max.Load()
		if v <= current || h.max.CompareAndSwap(current, v) {
			return
		}
	}
}

// Count returns the number of recorded durations.
func (h *Histogram) Count() uint64 { return h.count.Load() }

// Max returns the largest recorded duration, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Quantile returns the duration below which a fraction q of the recorded
// durations fall, for q in [0, 1]: the midpoint of the bucket that holds the
// value of rank ceil(q*count), but never more than Max. It returns 0 when
// nothing was recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	count := h.count.Load()
	if count == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := max(uint64(math.Ceil(q*float64(count))), 1)
	var seen uint64
	for i := range h.buckets {
		seen += h.buckets[i].Load()
		if seen >= rank {
			lower, width := bucketBounds(i)
			return min(time.Duration(lower+(width-1)/2), h.Max())
		}
	}
	// Records that raced with this walk can leave seen below rank.
	return h.Max()
}

// Summary returns the count, the usual quantiles and the max.
func (h *Histogram) Summary() LatencySummary {
	return LatencySummary{
		Count: h.Count(),
		P50Ms: milliseconds(h.Quantile(0.50)),
		P95Ms: milliseconds(h.Quantile(0.95)),
		P99Ms: milliseconds(h.Quantile(0.99)),
		MaxMs: milliseconds(h.Max()),
	}
}

// LatencySummary is the distribution of one latency, in milliseconds.
type LatencySummary struct {
	Count uint64  `json:"count"`
	P50Ms float64 `json:"p50_ms"`
	P95Ms float64 `json:"p95_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

func milliseconds(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}

// bucketIndex returns the bucket of a value in nanoseconds.
func bucketIndex(v uint64) int {
	if v < linearBuckets {
		return int(v)
	}
	// v>>shift keeps the subBucketBits top bits of v, which lie in
	// [halfBuckets, linearBuckets).
	shift := bits.Len64(v) - subBucketBits
	top := v >> shift
	return linearBuckets + (shift-1)*halfBuckets + int(top-halfBuckets)
}

// bucketBounds returns the lowest value of bucket i and its width.
func bucketBounds(i int) (lower, width uint64) {
	if i < linearBuckets {
		return uint64(i), 1
	}
	j := i - linearBuckets
	shift := j/halfBuckets + 1
	top := uint64(j%halfBuckets + halfBuckets)
	return top << shift, 1 << shift
}
