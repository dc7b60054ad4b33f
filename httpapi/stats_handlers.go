package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/datapusher/datapusher"
)

// Time windows of account statistics.
const (
	defaultStatsWindow = 24 * time.Hour
	maxStatsWindow     = 90 * 24 * time.Hour
)

// handleAccountStats returns the counts of an account's events and
// deliveries and its delivery latency percentiles, for the events received
// from the "from" query parameter (inclusive) to "to" (exclusive). "to"
// defaults to now and "from" to 24 hours before "to". The window may span
// at most 90 days.
func (s *Server) handleAccountStats(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	a, err := s.accountFor(r, user, actionAccountReadStats)
	if err != nil {
		return err
	}
	q := newQuery(r)
	from, to := q.time("from"), q.time("to")
	if err := q.err(); err != nil {
		return err
	}

	end := s.now()
	if to != nil {
		end = *to
	}
	start := end.Add(-defaultStatsWindow)
	if from != nil {
		start = *from
	}
	if !end.After(start) {
		return datapusher.FieldError("to", "Ensure this time is after from.")
	}
	if end.Sub(start) > maxStatsWindow {
		return datapusher.FieldError("to", fmt.Sprintf("Ensure this time is at most %d days after from.",
			int(maxStatsWindow/(24*time.Hour))))
	}

	stats, err := s.store.AccountStats(r.Context(), a.AccountID, start, end)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, stats)
	return nil
}
