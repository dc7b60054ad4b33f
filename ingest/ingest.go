// Package ingest accepts incoming events: it checks the sender's token and
// the event, then stores the event, one delivery log per destination and the
// delivery jobs in one transaction, before the sender gets an answer.
package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/sqlstore"
)

// MaxEventIDLength is the longest event id a sender may choose.
const MaxEventIDLength = 255

// ErrInvalidData is the error for a body or event id that breaks the rules.
// Its message is the one the original clients expect.
var ErrInvalidData = datapusher.Errorf(datapusher.EINVALID, "Invalid Data")

// ErrUnauthenticated is the error for a missing or unknown token.
var ErrUnauthenticated = datapusher.Errorf(datapusher.EUNAUTHORIZED, "Unauthenticated")

// Service implements datapusher.EventSubmitter on the store.
type Service struct {
	store   *sqlstore.Store
	enqueue sqlstore.EnqueueFunc
}

// NewService returns a Service that stores events in store and queues their
// deliveries with enqueue, in the same transaction.
func NewService(store *sqlstore.Store, enqueue sqlstore.EnqueueFunc) *Service {
	return &Service{store: store, enqueue: enqueue}
}

// HashToken returns the hex SHA-256 of an app secret token, which is all the
// store keeps of it.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// SubmitWithToken accepts an event from a sender that authenticates with an
// app secret token.
func (s *Service) SubmitWithToken(ctx context.Context, token, eventID string, body []byte, requestID string) (*datapusher.Submission, error) {
	if token == "" {
		return nil, ErrUnauthenticated
	}

	// Check the event before looking the token up, so that a malformed
	// request costs no database query.
	eventID, err := checkEvent(eventID, body)
	if err != nil {
		return nil, err
	}

	// The lookup is by hash: an attacker cannot learn anything from how long
	// the comparison of a guessed token takes.
	account, err := s.store.AccountByTokenHash(ctx, HashToken(token))
	if err != nil {
		return nil, err
	}
	return s.submit(ctx, account.AccountID, eventID, body, requestID)
}

// SubmitForAccount accepts an event for an account that the caller was
// already authorized for.
func (s *Service) SubmitForAccount(ctx context.Context, accountID, eventID string, body []byte, requestID string) (*datapusher.Submission, error) {
	eventID, err := checkEvent(eventID, body)
	if err != nil {
		return nil, err
	}
	return s.submit(ctx, accountID, eventID, body, requestID)
}

func (s *Service) submit(ctx context.Context, accountID, eventID string, body []byte, requestID string) (*datapusher.Submission, error) {
	destinations, err := s.store.AccountDestinations(ctx, accountID)
	if err != nil {
		return nil, err
	}
	item := &sqlstore.NewEvent{
		Event: &datapusher.Event{
			AccountID: accountID, EventID: eventID, Body: bytes.Clone(body), RequestID: requestID,
		},
		Destinations: destinations,
	}
	if err := s.store.InsertEvents(ctx, []*sqlstore.NewEvent{item}, s.enqueue); err != nil {
		return nil, err
	}
	return &datapusher.Submission{AccountID: accountID, EventID: eventID, Duplicate: item.Duplicate}, nil
}

// checkEvent validates the event id and body, and returns the event id to
// use: the sender's, or a new one when the sender gave none.
func checkEvent(eventID string, body []byte) (string, error) {
	if !ValidBody(body) {
		return "", ErrInvalidData
	}
	if eventID == "" {
		return uuid.Must(uuid.NewV7()).String(), nil
	}
	if !ValidEventID(eventID) {
		return "", ErrInvalidData
	}
	return eventID, nil
}

// ValidEventID reports whether id has 1 to 255 printable ASCII characters.
func ValidEventID(id string) bool {
	if len(id) == 0 || len(id) > MaxEventIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// ValidBody reports whether body is UTF-8 text holding one JSON object.
func ValidBody(body []byte) bool {
	if !utf8.Valid(body) {
		return false
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return false
	}
	return json.Valid(trimmed)
}
