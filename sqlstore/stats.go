package sqlstore

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/datapusher/datapusher"
)

// QueueStats returns how many delivery logs wait for delivery (pending or
// retrying) and how long ago the event of the oldest of them was received,
// or 0 when none waits. A log whose destination is disabled waits until the
// destination is enabled again, so it keeps the age growing.
//
// The count reads the (status, received_at, id) index, so its cost grows
// with the number of waiting logs; each minimum is one index lookup.
func (s *Store) QueueStats(ctx context.Context) (depth int64, oldestAge time.Duration, err error) {
	var oldestPending, oldestRetrying dbTime
	err = s.db.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM delivery_logs WHERE status IN ($1, $2)),
		(SELECT min(received_at) FROM delivery_logs WHERE status = $1),
		(SELECT min(received_at) FROM delivery_logs WHERE status = $2)`,
		datapusher.StatusPending, datapusher.StatusRetrying).Scan(&depth, &oldestPending, &oldestRetrying)
	if err != nil {
		return 0, 0, mapError(fmt.Errorf("select queue stats: %w", err))
	}

	var oldest time.Time
	for _, t := range []dbTime{oldestPending, oldestRetrying} {
		if t.Valid && (oldest.IsZero() || t.Time.Before(oldest)) {
			oldest = t.Time
		}
	}
	if oldest.IsZero() {
		return depth, 0, nil
	}
	return depth, max(s.Now().Sub(oldest), 0), nil
}

// MaxLatencySamples bounds how many delivery logs AccountStats reads to
// compute latency percentiles.
const MaxLatencySamples = 100_000

// AccountStats is a summary of an account's events and deliveries received
// in the window [From, To).
type AccountStats struct {
	AccountID string    `json:"account_id"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`

	// Events is the number of events received in the window.
	Events int64 `json:"events"`

	// Deliveries counts the delivery logs of those events by status. Every
	// status is present, with 0 when no log has it.
	Deliveries map[string]int64 `json:"deliveries"`

	// Destinations has the same counts per destination, ordered by id, for
	// the destinations that have at least one log in the window.
	Destinations []DestinationStats `json:"destinations"`

	LatencyMS LatencyStats `json:"latency_ms"`
}

// DestinationStats counts one destination's delivery logs by status.
type DestinationStats struct {
	DestinationID string           `json:"destination_id"`
	Deliveries    map[string]int64 `json:"deliveries"`
}

// LatencyStats are percentiles, in milliseconds, of the time from receiving
// an event to the final status (success or failed) of its delivery. P50 and
// P95 are nil when no delivery in the window is final. Samples is the
// number of deliveries they were computed from.
type LatencyStats struct {
	P50     *float64 `json:"p50"`
	P95     *float64 `json:"p95"`
	Samples int      `json:"samples"`
}

// AccountStats returns the account's statistics for events received from
// from (inclusive) to to (exclusive). An account with no events, or an id
// that matches no account, gets zero counts; a malformed id is not found.
func (s *Store) AccountStats(ctx context.Context, accountID string, from, to time.Time) (*AccountStats, error) {
	if !to.After(from) {
		return nil, datapusher.FieldError("to", "Ensure this time is after from.")
	}
	if !validID(accountID) {
		return nil, notFound("account")
	}
	stats := &AccountStats{
		AccountID: accountID, From: from.UTC(), To: to.UTC(),
		Deliveries: statusCounts(), Destinations: []DestinationStats{},
	}
	fromArg, toArg := s.timeArg(from), s.timeArg(to)

	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM events
		WHERE account_id = $1 AND received_at >= $2 AND received_at < $3`,
		accountID, fromArg, toArg).Scan(&stats.Events)
	if err != nil {
		return nil, mapError(fmt.Errorf("count events: %w", err))
	}
	if err := s.countDeliveries(ctx, stats, fromArg, toArg); err != nil {
		return nil, err
	}
	latencies, err := s.latencies(ctx, accountID, fromArg, toArg)
	if err != nil {
		return nil, err
	}
	stats.LatencyMS = LatencyStats{
		P50: percentile(latencies, 0.50), P95: percentile(latencies, 0.95), Samples: len(latencies),
	}
	return stats, nil
}

// countDeliveries fills the status counts of stats, in total and per
// destination.
func (s *Store) countDeliveries(ctx context.Context, stats *AccountStats, fromArg, toArg any) error {
	rows, err := s.db.QueryContext(ctx, `SELECT destination_id, status, count(*) FROM delivery_logs
		WHERE account_id = $1 AND received_at >= $2 AND received_at < $3
		GROUP BY destination_id, status ORDER BY destination_id`, stats.AccountID, fromArg, toArg)
	if err != nil {
		return mapError(fmt.Errorf("count deliveries: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		var destinationID, status string
		var count int64
		if err := rows.Scan(&destinationID, &status, &count); err != nil {
			return fmt.Errorf("scan delivery count: %w", err)
		}
		last := len(stats.Destinations) - 1
		if last < 0 || stats.Destinations[last].DestinationID != destinationID {
			stats.Destinations = append(stats.Destinations,
				DestinationStats{DestinationID: destinationID, Deliveries: statusCounts()})
			last++
		}
		stats.Destinations[last].Deliveries[status] += count
		stats.Deliveries[status] += count
	}
	if err := rows.Err(); err != nil {
		return mapError(fmt.Errorf("count deliveries: %w", err))
	}
	return nil
}

// latencies returns the latencies in milliseconds of the account's final
// deliveries in the window, sorted in ascending order.
//
// NOTE: only the newest MaxLatencySamples final deliveries of the window are
// read, so for a busier window the percentiles describe its most recent
// part.
func (s *Store) latencies(ctx context.Context, accountID string, fromArg, toArg any) ([]float64, error) {
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf(`SELECT received_at, processed_at FROM delivery_logs
		WHERE account_id = $1 AND received_at >= $2 AND received_at < $3
		AND status IN ($4, $5) AND processed_at IS NOT NULL
		ORDER BY received_at DESC LIMIT %d`, MaxLatencySamples),
		accountID, fromArg, toArg, datapusher.StatusSuccess, datapusher.StatusFailed)
	if err != nil {
		return nil, mapError(fmt.Errorf("select latencies: %w", err))
	}
	defer rows.Close()
	var latencies []float64
	for rows.Next() {
		var receivedAt, processedAt dbTime
		if err := rows.Scan(&receivedAt, &processedAt); err != nil {
			return nil, fmt.Errorf("scan latency: %w", err)
		}
		latency := processedAt.Time.Sub(receivedAt.Time)
		latencies = append(latencies, float64(latency)/float64(time.Millisecond))
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(fmt.Errorf("select latencies: %w", err))
	}
	slices.Sort(latencies)
	return latencies, nil
}

// percentile returns the q-th quantile of sorted values, interpolating
// linearly between the two nearest ranks as PostgreSQL's percentile_cont
// does, rounded to whole microseconds (the precision SQLite stores). It
// returns nil for no values.
func percentile(sorted []float64, q float64) *float64 {
	if len(sorted) == 0 {
		return nil
	}
	rank := q * float64(len(sorted)-1)
	lower := int(math.Floor(rank))
	value := sorted[lower]
	if lower+1 < len(sorted) {
		value += (rank - float64(lower)) * (sorted[lower+1] - sorted[lower])
	}
	value = math.Round(value*1000) / 1000
	return &value
}

// statusCounts returns a count of 0 for every delivery log status.
func statusCounts() map[string]int64 {
	counts := make(map[string]int64, len(datapusher.LogStatuses))
	for _, status := range datapusher.LogStatuses {
		counts[status] = 0
	}
	return counts
}
