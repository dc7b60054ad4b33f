package datapusher

import "context"

// Submission is the outcome of accepting one event.
type Submission struct {
	AccountID string
	EventID   string

	// Duplicate is true when the account already had an event with this id;
	// nothing was stored or delivered again.
	Duplicate bool
}

// EventSubmitter accepts incoming events: it validates them, stores each with
// its delivery logs and queues the deliveries, all before it returns.
type EventSubmitter interface {
	// SubmitWithToken authenticates the sender by the account's app secret
	// token. An unknown token is EUNAUTHORIZED; an invalid body or event id
	// is EINVALID.
	SubmitWithToken(ctx context.Context, token, eventID string, body []byte, requestID string) (*Submission, error)

	// SubmitForAccount accepts an event for an account the caller has
	// already been authorized for.
	SubmitForAccount(ctx context.Context, accountID, eventID string, body []byte, requestID string) (*Submission, error)
}
