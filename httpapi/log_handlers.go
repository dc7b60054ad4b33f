package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/ingest"
	"github.com/datapusher/datapusher/sqlstore"
)

// logList is the body of a cursor-paginated list of delivery logs.
type logList struct {
	Next     *string                   `json:"next"`
	Previous *string                   `json:"previous"`
	Results  []*datapusher.DeliveryLog `json:"results"`
}

// handleListLogs returns one page of the delivery logs of the accounts the
// user is a member of, with cursor links to the pages beside it.
func (s *Server) handleListLogs(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	filter, err := parseLogFilter(newQuery(r))
	if err != nil {
		return err
	}
	filter.VisibleTo = visibleTo(user)

	result, err := s.store.Logs(r.Context(), filter)
	if err != nil {
		return err
	}
	body := logList{Results: result.Logs}
	if result.Next != nil {
		next := s.pageURL(r, "cursor", sqlstore.EncodeCursor(result.Next))
		body.Next = &next
	}
	if result.Previous != nil {
		previous := s.pageURL(r, "cursor", sqlstore.EncodeCursor(result.Previous))
		body.Previous = &previous
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// parseLogFilter reads the filters, ordering, cursor and page size of a log
// list.
func parseLogFilter(q *query) (datapusher.LogFilter, error) {
	filter := datapusher.LogFilter{
		AccountID:             q.uuid("account_id"),
		DestinationID:         q.uuid("destination_id"),
		Status:                q.choice("status", datapusher.LogStatuses),
		EventID:               q.string("event_id"),
		ReceivedTimestampGTE:  q.time("received_timestamp__gte"),
		ReceivedTimestampLTE:  q.time("received_timestamp__lte"),
		ProcessedTimestampGTE: q.time("processed_timestamp__gte"),
		ProcessedTimestampLTE: q.time("processed_timestamp__lte"),
		Ordering:              q.ordering(sqlstore.LogOrderings),
		Limit:                 q.intRange("page_size", defaultPageSize, 1, maxPageSize),
	}
	if cursor := q.string("cursor"); cursor != nil {
		c, err := sqlstore.DecodeCursor(*cursor)
		if err != nil {
			q.errors.Add("cursor", "Invalid cursor.")
		}
		filter.Cursor = c
	}
	return filter, q.err()
}

// handleGetLog returns one delivery log.
func (s *Server) handleGetLog(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	l, err := s.logFor(r, user, actionLogRead)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, l)
	return nil
}

// handleListAttempts returns every attempt of a delivery log, oldest first.
func (s *Server) handleListAttempts(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	l, err := s.logFor(r, user, actionLogRead)
	if err != nil {
		return err
	}
	attempts, err := s.store.Attempts(r.Context(), l.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, attempts)
	return nil
}

// handleRetryLog queues a new delivery of one log and returns the log,
// pending again. The log keeps its earlier attempts, and the new ones are
// added to them.
func (s *Server) handleRetryLog(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	l, err := s.logFor(r, user, actionLogRetry)
	if err != nil {
		return err
	}
	if s.cfg.Enqueue == nil {
		return datapusher.Errorf(datapusher.EUNAVAILABLE, "no delivery queue configured")
	}
	l, err = s.store.RequeueLog(r.Context(), l.ID, s.cfg.Enqueue)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, l)
	return nil
}

// logFor loads the delivery log named by the id path value and checks that
// user may do act in its account.
func (s *Server) logFor(r *http.Request, user *datapusher.User, act action) (*datapusher.DeliveryLog, error) {
	l, err := s.store.Log(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if err := s.authorize(r.Context(), user, l.AccountID, act); err != nil {
		return nil, err
	}
	return l, nil
}

// handleSendTestEvent submits an event for an account from the management
// API, as the incoming data endpoint would for a sender. The bytes of
// "data" are passed on exactly as they arrived.
func (s *Server) handleSendTestEvent(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	f, err := s.readForm(w, r)
	if err != nil {
		return err
	}
	accountID, err := s.bodyAccountID(r, f, user, actionLogSend)
	if err != nil {
		return err
	}
	eventID, _ := f.string("event_id", false)
	if eventID != "" && !ingest.ValidEventID(eventID) {
		f.errors.Add("event_id", fmt.Sprintf("Use 1 to %d printable ASCII characters.", ingest.MaxEventIDLength))
	}
	data := readEventData(f)
	if err := f.err(); err != nil {
		return err
	}
	if s.events == nil {
		return datapusher.Errorf(datapusher.EUNAVAILABLE, "no event submitter configured")
	}

	sub, err := s.events.SubmitForAccount(r.Context(), accountID, eventID, data, RequestIDFromContext(r.Context()))
	if err != nil {
		return err
	}
	body := map[string]any{"success": true, "message": "Data Received", "event_id": sub.EventID}
	status := http.StatusAccepted
	if sub.Duplicate {
		body["duplicate"] = true
		status = http.StatusOK
	}
	writeJSON(w, status, body)
	return nil
}

// readEventData returns the raw bytes of the required "data" field, which
// must be a JSON object.
func readEventData(f *form) []byte {
	raw, ok := f.raw["data"]
	if !ok {
		f.errors.Add("data", msgRequired)
		return nil
	}
	var object map[string]json.RawMessage
	if err := json.Unmarshal(raw, &object); err != nil || object == nil {
		f.errors.Add("data", "Expected a JSON object.")
		return nil
	}
	return bytes.TrimSpace(raw)
}
