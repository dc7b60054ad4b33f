package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/datapusher/datapusher"
)

// NewEvent is one event to store, with the destinations it goes to. After
// InsertEvents, Logs holds the pending delivery logs that were created, or
// Duplicate is true when the account already had an event with that id.
type NewEvent struct {
	Event        *datapusher.Event
	Destinations []*datapusher.Destination

	Logs      []*datapusher.DeliveryLog
	Duplicate bool
}

// EnqueueFunc queues delivery jobs for logs inside the transaction that
// stores them, so that an event is never stored without its jobs or the
// other way round.
type EnqueueFunc func(ctx context.Context, tx *sql.Tx, logs []*datapusher.DeliveryLog) error

// InsertEvents stores events and a pending delivery log per (event,
// destination), and calls enqueue with all new logs, in one transaction.
// An event whose (account, event id) is already stored is skipped and marked
// Duplicate. A destination deleted since the caller listed it is skipped.
func (s *Store) InsertEvents(ctx context.Context, events []*NewEvent, enqueue EnqueueFunc) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.insertEventRows(ctx, tx, events); err != nil {
			return err
		}
		logs, err := s.insertLogRows(ctx, tx, events)
		if err != nil {
			return err
		}
		return enqueueInTx(ctx, tx, enqueue, logs)
	})
}

// insertEventRows inserts the events with multi-row statements and marks
// those already stored as Duplicate.
func (s *Store) insertEventRows(ctx context.Context, tx *sql.Tx, events []*NewEvent) error {
	inserted := make(map[string]bool, len(events))
	for chunk := range chunked(events) {
		size := len(chunk)
		args := make([]any, 0, 6*size)
		for _, item := range chunk {
			ev := item.Event
			ev.ID = newID()
			if ev.ReceivedAt.IsZero() {
				ev.ReceivedAt = s.Now()
			}
			item.Logs, item.Duplicate = nil, false
			args = append(args, ev.ID, ev.AccountID, ev.EventID, string(ev.Body), ev.RequestID, s.timeArg(ev.ReceivedAt))
		}
		rows, err := tx.QueryContext(ctx, `INSERT INTO events (id, account_id, event_id, body, request_id, received_at)
			VALUES `+s.valuesRows(size, 6)+` ON CONFLICT (account_id, event_id) DO NOTHING RETURNING id`, args...)
		if err == nil {
			err = scanIDs(rows, inserted)
		}
		if isForeignKeyViolation(err) {
			// The account was deleted after the sender's token was checked.
			return datapusher.Errorf(datapusher.EUNAUTHORIZED, "Unauthenticated")
		} else if err != nil {
			return mapError(fmt.Errorf("insert events: %w", err))
		}
	}
	for _, item := range events {
		item.Duplicate = !inserted[item.Event.ID]
	}
	return nil
}

// insertLogRows inserts a pending log per new event and destination that
// still exists, and returns the logs.
func (s *Store) insertLogRows(ctx context.Context, tx *sql.Tx, events []*NewEvent) ([]*datapusher.DeliveryLog, error) {
	var ids []string
	seen := map[string]bool{}
	for _, item := range events {
		for _, d := range item.Destinations {
			if !item.Duplicate && !seen[d.ID] {
				seen[d.ID] = true
				ids = append(ids, d.ID)
			}
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	// The ids are read in chunks, because a batch of many accounts' events
	// can name more destinations than a statement takes parameters.
	existing := make(map[string]bool, len(ids))
	for chunk := range slices.Chunk(ids, 1024) {
		var w where
		rows, err := tx.QueryContext(ctx, `SELECT id FROM destinations WHERE id IN `+w.inList(chunk), w.args...)
		if err == nil {
			err = scanIDs(rows, existing)
		}
		if err != nil {
			return nil, mapError(fmt.Errorf("select destinations: %w", err))
		}
	}

	var all []*datapusher.DeliveryLog
	for _, item := range events {
		if item.Duplicate {
			continue
		}
		ev := item.Event
		item.Logs = make([]*datapusher.DeliveryLog, 0, len(item.Destinations))
		for _, d := range item.Destinations {
			if !existing[d.ID] {
				continue
			}
			log := &datapusher.DeliveryLog{
				ID: newID(), EventPK: ev.ID, EventID: ev.EventID, AccountID: ev.AccountID,
				DestinationID: d.ID, ReceivedTimestamp: ev.ReceivedAt, ReceivedData: ev.Body,
				Status: datapusher.StatusPending, RequestID: ev.RequestID,
			}
			item.Logs = append(item.Logs, log)
			all = append(all, log)
		}
	}

	for chunk := range chunked(all) {
		size := len(chunk)
		args := make([]any, 0, 8*size)
		for _, log := range chunk {
			args = append(args, log.ID, log.EventPK, log.AccountID, log.DestinationID, log.EventID, log.Status,
				log.RequestID, s.timeArg(log.ReceivedTimestamp))
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO delivery_logs (id, event_pk, account_id, destination_id,
			event_id, status, request_id, received_at) VALUES `+s.valuesRows(size, 8), args...)
		if isForeignKeyViolation(err) {
			// On PostgreSQL, a destination deleted after the read above
			// fails the insert. Running the transaction again leaves it out.
			return nil, &retryTxError{fmt.Errorf("insert delivery logs: %w", err)}
		} else if err != nil {
			return nil, mapError(fmt.Errorf("insert delivery logs: %w", err))
		}
	}
	return all, nil
}

// scanIDs adds the ids that rows return to ids and closes rows.
func scanIDs(rows *sql.Rows, ids map[string]bool) error {
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		ids[id] = true
	}
	return rows.Err()
}

const logColumns = `l.id, l.event_pk, l.event_id, l.account_id, l.destination_id, l.received_at,
	l.processed_at, e.body, l.status, l.attempts, l.response_status_code, l.error, l.request_id, l.generation`

const logFrom = ` FROM delivery_logs l JOIN events e ON e.id = l.event_pk`

func scanLog(row interface{ Scan(...any) error }) (*datapusher.DeliveryLog, error) {
	var t logScan
	if err := row.Scan(t.targets()...); err != nil {
		return nil, err
	}
	return t.result(), nil
}

// logScan holds the columns of logColumns while a row is scanned.
type logScan struct {
	log                     datapusher.DeliveryLog
	receivedAt, processedAt dbTime
	body                    string
	responseCode            sql.NullInt64
}

func (t *logScan) targets() []any {
	l := &t.log
	return []any{&l.ID, &l.EventPK, &l.EventID, &l.AccountID, &l.DestinationID, &t.receivedAt,
		&t.processedAt, &t.body, &l.Status, &l.Attempts, &t.responseCode, &l.Error, &l.RequestID, &l.Generation}
}

func (t *logScan) result() *datapusher.DeliveryLog {
	l := t.log
	l.ReceivedTimestamp = t.receivedAt.Time
	l.ProcessedTimestamp = t.processedAt.ptr()
	l.ReceivedData = json.RawMessage(t.body)
	if t.responseCode.Valid {
		code := int(t.responseCode.Int64)
		l.ResponseStatusCode = &code
	}
	return &l
}

// Log returns the delivery log with that id.
func (s *Store) Log(ctx context.Context, id string) (*datapusher.DeliveryLog, error) {
	if !validID(id) {
		return nil, notFound("log")
	}
	row := s.db.QueryRowContext(ctx, `SELECT `+logColumns+logFrom+` WHERE l.id = $1`, id)
	l, err := scanLog(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("log")
	} else if err != nil {
		return nil, mapError(fmt.Errorf("select log: %w", err))
	}
	return l, nil
}

// LogOrderings maps the accepted ordering names of log lists to the column
// the cursor is built on. Logs not processed yet sort after every processed
// one when ordering by processed_timestamp.
var LogOrderings = map[string]string{
	"received_timestamp":  "l.received_at",
	"processed_timestamp": "coalesce(l.processed_at, %s)",
}

// LogPage is one page of delivery logs with the cursors of the pages beside it.
type LogPage struct {
	Logs     []*datapusher.DeliveryLog
	Next     *datapusher.LogCursor
	Previous *datapusher.LogCursor
}

// logsQuery is the SQL of one page of logs, and how to read its rows.
type logsQuery struct {
	sql     string
	args    []any
	limit   int
	reverse bool // the rows come in reverse order and are flipped back
	empty   bool // the filter names an id that cannot exist
}

// LogsQuery returns the SQL and arguments that Logs runs for f, for tests
// that check the query plan.
func (s *Store) LogsQuery(f datapusher.LogFilter) (string, []any, error) {
	q, err := s.buildLogsQuery(f)
	if err != nil {
		return "", nil, err
	}
	return q.sql, q.args, nil
}

func (s *Store) buildLogsQuery(f datapusher.LogFilter) (*logsQuery, error) {
	var w where
	w.visibleTo("l.account_id", f.VisibleTo)
	for _, idFilter := range []struct {
		column string
		value  *string
	}{{"l.account_id", f.AccountID}, {"l.destination_id", f.DestinationID}} {
		if idFilter.value == nil {
			continue
		}
		if !validID(*idFilter.value) {
			return &logsQuery{empty: true}, nil
		}
		w.add(idFilter.column+" = ?", *idFilter.value)
	}
	if f.Status != nil {
		w.add("l.status = ?", *f.Status)
	}
	if f.EventID != nil {
		w.add("l.event_id = ?", *f.EventID)
	}
	if f.ReceivedTimestampGTE != nil {
		w.add("l.received_at >= ?", s.timeArg(*f.ReceivedTimestampGTE))
	}
	if f.ReceivedTimestampLTE != nil {
		w.add("l.received_at <= ?", s.timeArg(*f.ReceivedTimestampLTE))
	}
	if f.ProcessedTimestampGTE != nil {
		w.add("l.processed_at >= ?", s.timeArg(*f.ProcessedTimestampGTE))
	}
	if f.ProcessedTimestampLTE != nil {
		w.add("l.processed_at <= ?", s.timeArg(*f.ProcessedTimestampLTE))
	}

	// Resolve the sort key and direction. A cursor that reads backwards
	// flips the direction, and the rows are flipped back after the query.
	ordering := f.Ordering
	if ordering == "" {
		ordering = "-received_timestamp"
	}
	descending := ordering[0] == '-'
	name := ordering
	if descending {
		name = ordering[1:]
	}
	key, ok := LogOrderings[name]
	if !ok {
		return nil, datapusher.FieldError("ordering", fmt.Sprintf("unknown ordering %q", ordering))
	}
	if name == "processed_timestamp" {
		key = fmt.Sprintf(key, w.arg(s.timeArg(time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC))))
	}
	reverse := f.Cursor != nil && f.Cursor.Reverse
	scanDescending := descending != reverse
	if f.Cursor != nil {
		op := ">"
		if scanDescending {
			op = "<"
		}
		w.add(fmt.Sprintf("(%s, l.id) %s (?, ?)", key, op), s.timeArg(f.Cursor.Time), f.Cursor.ID)
	}
	direction := "ASC"
	if scanDescending {
		direction = "DESC"
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}

	query := `SELECT ` + logColumns + `, ` + key + logFrom + w.String() +
		fmt.Sprintf(" ORDER BY %s %s, l.id %s LIMIT %d", key, direction, direction, limit+1)
	return &logsQuery{sql: query, args: w.args, limit: limit, reverse: reverse}, nil
}

// Logs returns one page of the delivery logs that match f, in f.Ordering
// (default newest first), after f.Cursor.
func (s *Store) Logs(ctx context.Context, f datapusher.LogFilter) (*LogPage, error) {
	q, err := s.buildLogsQuery(f)
	if err != nil {
		return nil, err
	}
	if q.empty {
		return &LogPage{Logs: []*datapusher.DeliveryLog{}}, nil
	}
	limit, reverse := q.limit, q.reverse
	rows, err := s.db.QueryContext(ctx, q.sql, q.args...)
	if err != nil {
		return nil, mapError(fmt.Errorf("select logs: %w", err))
	}
	defer rows.Close()
	var logs []*datapusher.DeliveryLog
	var keys []time.Time
	for rows.Next() {
		var sortKey dbTime
		l, err := scanLog(scanWithExtra{rows, &sortKey})
		if err != nil {
			return nil, fmt.Errorf("scan log: %w", err)
		}
		logs = append(logs, l)
		keys = append(keys, sortKey.Time)
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(err)
	}

	more := len(logs) > limit
	if more {
		logs, keys = logs[:limit], keys[:limit]
	}
	if reverse {
		for i, j := 0, len(logs)-1; i < j; i, j = i+1, j-1 {
			logs[i], logs[j] = logs[j], logs[i]
			keys[i], keys[j] = keys[j], keys[i]
		}
	}
	page := &LogPage{Logs: logs}
	if page.Logs == nil {
		page.Logs = []*datapusher.DeliveryLog{}
		return page, nil
	}
	first := &datapusher.LogCursor{Time: keys[0], ID: logs[0].ID, Reverse: true}
	last := &datapusher.LogCursor{Time: keys[len(keys)-1], ID: logs[len(logs)-1].ID}
	if reverse {
		page.Next = last
		if more {
			page.Previous = first
		}
	} else {
		if more {
			page.Next = last
		}
		if f.Cursor != nil {
			page.Previous = first
		}
	}
	return page, nil
}

// scanWithExtra scans the log columns and then one more column.
type scanWithExtra struct {
	rows  *sql.Rows
	extra any
}

func (s scanWithExtra) Scan(dest ...any) error {
	return s.rows.Scan(append(dest, s.extra)...)
}

// EncodeCursor returns the opaque text form of c.
func EncodeCursor(c *datapusher.LogCursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor parses the text that EncodeCursor returned.
func DecodeCursor(text string) (*datapusher.LogCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil {
		return nil, errors.New("invalid cursor")
	}
	var c datapusher.LogCursor
	if err := json.Unmarshal(b, &c); err != nil || c.ID == "" || !validID(c.ID) {
		return nil, errors.New("invalid cursor")
	}
	// EncodeCursor never writes a time out of range.
	if !TimeInRange(c.Time) {
		return nil, errors.New("invalid cursor")
	}
	return &c, nil
}

// TimeInRange reports whether t falls within years 1 to 9999 in UTC. Only
// such times are accepted as filters, because SQLite compares times as text,
// which orders them only within those years, and encoding/json cannot write
// a time past year 9999.
func TimeInRange(t time.Time) bool {
	year := t.UTC().Year()
	return year >= 1 && year <= 9999
}

// DeliveryTask is the log and the destination of one delivery attempt.
type DeliveryTask struct {
	Log         *datapusher.DeliveryLog
	Destination *datapusher.Destination
}

// DeliveryTask returns the log with its event body and its destination, in
// one query, because every delivery attempt starts with it.
func (s *Store) DeliveryTask(ctx context.Context, logID string) (*DeliveryTask, error) {
	tasks, err := s.DeliveryTasks(ctx, []string{logID})
	if err != nil {
		return nil, err
	}
	if len(tasks) == 0 {
		return nil, notFound("log")
	}
	return tasks[0], nil
}

// DeliveryTasks returns the tasks of many logs in one query, in the order
// of logIDs, so that a batch starts its deliveries in the order the events
// came. Logs that no longer exist, such as those of a deleted destination,
// are left out.
func (s *Store) DeliveryTasks(ctx context.Context, logIDs []string) ([]*DeliveryTask, error) {
	valid := make([]string, 0, len(logIDs))
	for _, id := range logIDs {
		if validID(id) {
			valid = append(valid, id)
		}
	}
	if len(valid) == 0 {
		return nil, nil
	}
	query, args := deliveryTasksQuery(valid)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, mapError(fmt.Errorf("select delivery tasks: %w", err))
	}
	defer rows.Close()
	tasks := make([]*DeliveryTask, 0, len(valid))
	bodies := map[string]json.RawMessage{} // by event: logs of one event share its body
	for rows.Next() {
		var logRow logScan
		var destinationRow destinationScan
		if err := rows.Scan(append(logRow.targets(), destinationRow.targets()...)...); err != nil {
			return nil, mapError(fmt.Errorf("scan delivery task: %w", err))
		}
		destination, err := destinationRow.result()
		if err != nil {
			return nil, err
		}
		log := logRow.result()
		if body, ok := bodies[log.EventPK]; ok {
			log.ReceivedData = body
		} else {
			bodies[log.EventPK] = log.ReceivedData
		}
		tasks = append(tasks, &DeliveryTask{Log: log, Destination: destination})
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(fmt.Errorf("select delivery tasks: %w", err))
	}

	// The database returns the rows in the order of its query plan.
	position := make(map[string]int, len(valid))
	for i, id := range slices.Backward(valid) {
		position[id] = i
	}
	slices.SortFunc(tasks, func(a, b *DeliveryTask) int {
		return cmp.Compare(position[a.Log.ID], position[b.Log.ID])
	})
	return tasks, nil
}

// deliveryTasksQuery returns the SQL and arguments that read the delivery
// tasks of logIDs, which are all valid ids.
func deliveryTasksQuery(logIDs []string) (string, []any) {
	var w where
	return `SELECT ` + logColumns + `, ` + destinationColumnsOf("d") + logFrom + `
		JOIN destinations d ON d.id = l.destination_id WHERE l.id IN ` + w.inList(logIDs), w.args
}

// AttemptOutcome is the result of one delivery attempt and the log status
// it leads to.
type AttemptOutcome struct {
	Attempt *datapusher.Attempt
	Status  string
	Final   bool

	// DisableReason, when set, disables the log's destination in the same
	// transaction, for example after it answered 410 Gone.
	DisableReason string

	// NewGeneration moves the log to a new generation in the same
	// statement, for a caller that queues the next attempt as a new job.
	NewGeneration bool
}

// RecordAttempt stores an attempt and moves its log to the outcome's status,
// in one transaction. A final outcome sets the processed timestamp.
func (s *Store) RecordAttempt(ctx context.Context, logID string, outcome AttemptOutcome) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := s.RecordAttemptTx(ctx, tx, logID, outcome)
		return err
	})
}

// RecordAttemptTx is RecordAttempt inside the caller's transaction, for a
// log of any generation. It returns the log's generation after the change.
func (s *Store) RecordAttemptTx(ctx context.Context, tx *sql.Tx, logID string, outcome AttemptOutcome) (int, error) {
	attempt := &LogAttempt{LogID: logID, Outcome: outcome, Generation: anyGeneration}
	if err := s.RecordAttemptsTx(ctx, tx, []*LogAttempt{attempt}); err != nil {
		return 0, err
	}
	if attempt.Superseded {
		return 0, notFound("log")
	}
	return attempt.Generation, nil
}

// anyGeneration is the Generation of a LogAttempt that applies to the log
// whatever its generation.
const anyGeneration = -1

// LogAttempt is the outcome of an attempt at one log.
type LogAttempt struct {
	LogID   string
	Outcome AttemptOutcome

	// Generation is the log's generation that the attempt was made for,
	// and after RecordAttemptsTx the generation after the change.
	Generation int

	// Superseded is set by RecordAttemptsTx when the log was deleted or
	// moved on to a newer generation, such as by a replay, while the
	// attempt ran. Such an attempt leaves the log's status alone. Its
	// request was made, so it is still stored in the history of a log that
	// exists, and its DisableReason still disables the destination.
	Superseded bool

	// Stored is set by RecordAttemptsTx when the attempt was added to its
	// log's history, which only a deleted or invalid log prevents.
	Stored bool
}

// RecordAttemptsTx records many attempts in the caller's transaction: each
// log moves to its outcome's status, and the attempts are inserted
// together.
func (s *Store) RecordAttemptsTx(ctx context.Context, tx *sql.Tx, attempts []*LogAttempt) error {
	now := s.timeArg(s.Now())
	recorded, err := s.updateAttemptedLogs(ctx, tx, attempts, now)
	if err != nil {
		return err
	}
	superseded, err := s.countSupersededAttempts(ctx, tx, attempts)
	if err != nil {
		return err
	}
	recorded = append(recorded, superseded...)
	for _, la := range attempts {
		la.Stored = false
	}
	for _, la := range recorded {
		la.Stored = true
	}
	for _, la := range recorded {
		a := la.Outcome.Attempt
		a.ID = newID()
		a.LogID = la.LogID
	}

	for chunk := range chunked(recorded) {
		size := len(chunk)
		args := make([]any, 0, 10*size)
		for _, la := range chunk {
			a := la.Outcome.Attempt
			args = append(args, a.ID, a.LogID, a.Number, s.timeArg(a.StartedAt), a.DurationMS, a.RequestURL,
				a.ResponseStatus, a.ResponseBody, a.ErrorClass, a.ErrorMessage)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO delivery_attempts (id, log_id, number, started_at, duration_ms,
			request_url, response_status, response_body, error_class, error_message) VALUES `+s.valuesRows(size, 10), args...)
		if err != nil {
			return mapError(fmt.Errorf("insert attempts: %w", err))
		}
	}

	for _, la := range recorded {
		if la.Outcome.DisableReason == "" {
			continue
		}
		_, err := tx.ExecContext(ctx, `UPDATE destinations SET enabled = $1, disabled_reason = $2, updated_at = $3
			WHERE id = (SELECT destination_id FROM delivery_logs WHERE id = $4)`,
			false, la.Outcome.DisableReason, now, la.LogID)
		if err != nil {
			return mapError(fmt.Errorf("disable destination: %w", err))
		}
	}
	return nil
}

// countSupersededAttempts numbers each superseded attempt of an existing log
// and adds it to the log's count, and returns those attempts. They are rare,
// so each takes a statement of its own.
func (s *Store) countSupersededAttempts(ctx context.Context, tx *sql.Tx, attempts []*LogAttempt) ([]*LogAttempt, error) {
	var counted []*LogAttempt
	for _, la := range attempts {
		if !la.Superseded || !validID(la.LogID) {
			continue
		}
		err := tx.QueryRowContext(ctx, `UPDATE delivery_logs SET attempts = attempts + 1 WHERE id = $1
			RETURNING attempts`, la.LogID).Scan(&la.Outcome.Attempt.Number)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		} else if err != nil {
			return nil, mapError(fmt.Errorf("count superseded attempt: %w", err))
		}
		counted = append(counted, la)
	}
	return counted, nil
}

// updateAttemptedLogs moves each log to its attempt's outcome, sets each
// attempt's number, and returns the attempts whose logs were updated; the
// others are marked Superseded. Logs are updated with one statement per
// chunk, unless a log appears twice.
func (s *Store) updateAttemptedLogs(ctx context.Context, tx *sql.Tx, attempts []*LogAttempt, now any) ([]*LogAttempt, error) {
	// An id that is not a canonical UUID names no log. Left in, it would
	// fail the whole statement on PostgreSQL, or, in upper case, update a
	// log that the returned lower-case id then does not match.
	attempts = slices.DeleteFunc(slices.Clone(attempts), func(la *LogAttempt) bool {
		la.Superseded = !validID(la.LogID)
		return la.Superseded
	})
	seen := make(map[string]bool, len(attempts))
	for _, la := range attempts {
		if seen[la.LogID] {
			return s.updateAttemptedLogsOneByOne(ctx, tx, attempts, now)
		}
		seen[la.LogID] = true
	}

	recorded := make([]*LogAttempt, 0, len(attempts))
	for chunk := range chunked(attempts) {
		size := len(chunk)
		byID := make(map[string]*LogAttempt, size)
		args := make([]any, 0, 7*size)
		rows := make([]string, 0, size)
		for _, la := range chunk {
			byID[la.LogID] = la
			a, outcome := la.Outcome.Attempt, la.Outcome
			n := len(args)
			rows = append(rows, fmt.Sprintf("(%s, %s, %s, %s, %s, %s, %s)",
				s.typed(n+1, "uuid"), s.typed(n+2, "text"), s.typed(n+3, "integer"), s.typed(n+4, "text"),
				s.typed(n+5, "timestamptz"), s.typed(n+6, "integer"), s.typed(n+7, "integer")))
			args = append(args, la.LogID, outcome.Status, a.ResponseStatus, a.ErrorMessage,
				processedAt(outcome, now), generationStep(outcome), la.Generation)
		}
		result, err := tx.QueryContext(ctx, `UPDATE delivery_logs AS l SET attempts = l.attempts + 1,
			status = v.column2, response_status_code = v.column3, error = v.column4, processed_at = v.column5,
			generation = l.generation + v.column6
			FROM (VALUES `+strings.Join(rows, ", ")+`) AS v
			WHERE l.id = v.column1 AND (v.column7 < 0 OR l.generation = v.column7)
			RETURNING id, attempts, generation`, args...)
		if err != nil {
			return nil, mapError(fmt.Errorf("update logs: %w", err))
		}
		for result.Next() {
			var id string
			var number, generation int
			if err := result.Scan(&id, &number, &generation); err != nil {
				result.Close()
				return nil, mapError(fmt.Errorf("scan updated log: %w", err))
			}
			if la, ok := byID[id]; ok {
				la.Outcome.Attempt.Number, la.Generation = number, generation
				recorded = append(recorded, la)
				delete(byID, id)
			}
		}
		result.Close()
		if err := result.Err(); err != nil {
			return nil, mapError(fmt.Errorf("update logs: %w", err))
		}
		for _, la := range byID {
			la.Superseded = true
		}
	}
	return recorded, nil
}

// updateAttemptedLogsOneByOne is updateAttemptedLogs with one statement per
// attempt, for attempts that include one log more than once.
func (s *Store) updateAttemptedLogsOneByOne(ctx context.Context, tx *sql.Tx, attempts []*LogAttempt, now any) ([]*LogAttempt, error) {
	recorded := make([]*LogAttempt, 0, len(attempts))
	for _, la := range attempts {
		a, outcome := la.Outcome.Attempt, la.Outcome
		err := tx.QueryRowContext(ctx, `UPDATE delivery_logs SET attempts = attempts + 1, status = $1,
			response_status_code = $2, error = $3, processed_at = $4, generation = generation + $5
			WHERE id = $6 AND ($7 < 0 OR generation = $7) RETURNING attempts, generation`,
			outcome.Status, a.ResponseStatus, a.ErrorMessage, processedAt(outcome, now), generationStep(outcome),
			la.LogID, la.Generation).Scan(&a.Number, &la.Generation)
		if errors.Is(err, sql.ErrNoRows) {
			la.Superseded = true
			continue
		} else if err != nil {
			return nil, mapError(fmt.Errorf("update log: %w", err))
		}
		recorded = append(recorded, la)
	}
	return recorded, nil
}

// processedAt is the processed timestamp that an outcome sets: now for a
// final one, none otherwise.
func processedAt(outcome AttemptOutcome, now any) any {
	if outcome.Final {
		return now
	}
	return nil
}

func generationStep(outcome AttemptOutcome) int {
	if outcome.NewGeneration {
		return 1
	}
	return 0
}

// NextGenerationTx moves a log from generation to the next one without an
// attempt, so that the caller can queue its delivery as a new job. It
// reports false when the log is gone or already moved on.
func (s *Store) NextGenerationTx(ctx context.Context, tx *sql.Tx, logID string, generation int) (int, bool, error) {
	err := tx.QueryRowContext(ctx, `UPDATE delivery_logs SET generation = generation + 1
		WHERE id = $1 AND generation = $2 RETURNING generation`, logID, generation).Scan(&generation)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	} else if err != nil {
		return 0, false, mapError(fmt.Errorf("move log to next generation: %w", err))
	}
	return generation, true, nil
}

// Attempts returns the attempts of a log in the order their requests started.
func (s *Store) Attempts(ctx context.Context, logID string) ([]*datapusher.Attempt, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, log_id, number, started_at, duration_ms, request_url,
		response_status, response_body, error_class, error_message FROM delivery_attempts
		WHERE log_id = $1 ORDER BY started_at, number`, logID)
	if err != nil {
		return nil, mapError(fmt.Errorf("select attempts: %w", err))
	}
	defer rows.Close()
	attempts := []*datapusher.Attempt{}
	for rows.Next() {
		var a datapusher.Attempt
		var startedAt dbTime
		var status sql.NullInt64
		if err := rows.Scan(&a.ID, &a.LogID, &a.Number, &startedAt, &a.DurationMS, &a.RequestURL,
			&status, &a.ResponseBody, &a.ErrorClass, &a.ErrorMessage); err != nil {
			return nil, fmt.Errorf("scan attempt: %w", err)
		}
		a.StartedAt = startedAt.Time
		if status.Valid {
			code := int(status.Int64)
			a.ResponseStatus = &code
		}
		attempts = append(attempts, &a)
	}
	return attempts, mapError(rows.Err())
}
