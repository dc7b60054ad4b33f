package datapusher

import (
	"encoding/json"
	"time"
)

// Event is one JSON object received for an account. Body is kept byte for
// byte as it arrived, because POST destinations receive exactly those bytes.
type Event struct {
	ID         string
	AccountID  string
	EventID    string
	Body       json.RawMessage
	RequestID  string
	ReceivedAt time.Time
}

// Delivery log statuses.
const (
	StatusPending  = "pending"
	StatusRetrying = "retrying"
	StatusSuccess  = "success"
	StatusFailed   = "failed"
)

// LogStatuses lists every delivery log status.
var LogStatuses = []string{StatusPending, StatusRetrying, StatusSuccess, StatusFailed}

// DeliveryLog is the state of one event's delivery to one destination.
type DeliveryLog struct {
	ID                 string          `json:"id"`
	EventID            string          `json:"event_id"`
	AccountID          string          `json:"account_id"`
	DestinationID      string          `json:"destination_id"`
	ReceivedTimestamp  time.Time       `json:"received_timestamp"`
	ProcessedTimestamp *time.Time      `json:"processed_timestamp"`
	ReceivedData       json.RawMessage `json:"received_data"`
	Status             string          `json:"status"`
	Attempts           int             `json:"attempts"`
	ResponseStatusCode *int            `json:"response_status_code"`
	Error              string          `json:"error"`
	RequestID          string          `json:"request_id,omitempty"`

	// EventPK is the internal id of the stored event.
	EventPK string `json:"-"`

	// Generation counts replays of the log. Each delivery job carries the
	// generation it was queued for, and a job of an older one does nothing.
	Generation int `json:"-"`
}

// LogFilter selects delivery logs. Nil fields do not filter.
type LogFilter struct {
	AccountID             *string
	DestinationID         *string
	Status                *string
	EventID               *string
	ReceivedTimestampGTE  *time.Time
	ReceivedTimestampLTE  *time.Time
	ProcessedTimestampGTE *time.Time
	ProcessedTimestampLTE *time.Time
	Ordering              string
	VisibleTo             string
	Cursor                *LogCursor
	Limit                 int
}

// LogCursor is a position in an ordered list of delivery logs: the sort key
// and id of the last row seen, and the direction to read in.
type LogCursor struct {
	Time    time.Time `json:"t"`
	ID      string    `json:"i"`
	Reverse bool      `json:"r,omitempty"`
}

// Attempt is one HTTP request made for a delivery log.
type Attempt struct {
	ID             string    `json:"id"`
	LogID          string    `json:"log_id"`
	Number         int       `json:"number"`
	StartedAt      time.Time `json:"started_at"`
	DurationMS     int64     `json:"duration_ms"`
	RequestURL     string    `json:"request_url"`
	ResponseStatus *int      `json:"response_status"`
	ResponseBody   string    `json:"response_body"`
	ErrorClass     string    `json:"error_class"`
	ErrorMessage   string    `json:"error_message"`
}
