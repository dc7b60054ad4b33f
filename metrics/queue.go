package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultQueueStatsTimeout bounds one call of the queue statistics function
// during a scrape.
const DefaultQueueStatsTimeout = 5 * time.Second

// QueueStatsFunc returns how many deliveries wait in the queue and how long
// the oldest of them has waited. (*sqlstore.Store).QueueStats is one.
type QueueStatsFunc func(ctx context.Context) (depth int64, oldestAge time.Duration, err error)

// QueueCollector is a prometheus.Collector that reads the delivery queue's
// depth and the age of its oldest delivery on every scrape, so the values
// are never older than the scrape.
type QueueCollector struct {
	stats   QueueStatsFunc
	timeout time.Duration

	depth     *prometheus.Desc
	oldestAge *prometheus.Desc
}

// NewQueueCollector returns a QueueCollector that calls stats with a context
// that ends after timeout.
func NewQueueCollector(stats QueueStatsFunc, timeout time.Duration) *QueueCollector {
	return &QueueCollector{
		stats:   stats,
		timeout: timeout,
		depth: prometheus.NewDesc("datapusher_queue_depth",
			"Delivery logs waiting for delivery (pending or retrying) in the shared database.", nil, nil),
		oldestAge: prometheus.NewDesc("datapusher_queue_oldest_pending_seconds",
			"Time since the oldest waiting delivery's event was received; 0 when none waits.", nil, nil),
	}
}

// Describe sends the descriptors of both metrics.
func (c *QueueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.oldestAge
}

// Collect reads the statistics and sends both metrics. When the read fails
// it sends an invalid metric instead, so the scrape reports the error and
// still serves every other metric.
func (c *QueueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	depth, oldestAge, err := c.stats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.depth, fmt.Errorf("read queue stats: %w", err))
		return
	}
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(depth))
	ch <- prometheus.MustNewConstMetric(c.oldestAge, prometheus.GaugeValue, oldestAge.Seconds())
}
