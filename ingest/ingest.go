// Package ingest accepts incoming events: it checks the sender's token and
// the event, then stores the event, one delivery log per destination and the
// delivery jobs in one transaction, before the sender gets a response.
package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/ratelimit"
	"github.com/datapusher/datapusher/sqlstore"
)

// MaxEventIDLength is the longest event id a sender may choose.
const MaxEventIDLength = 255

// ErrInvalidData is the error for a body or event id that breaks the rules.
// Its message is the one the original clients expect.
var ErrInvalidData = datapusher.Errorf(datapusher.EINVALID, "Invalid Data")

// ErrUnauthenticated is the error for a missing or unknown token.
var ErrUnauthenticated = datapusher.Errorf(datapusher.EUNAUTHORIZED, "Unauthenticated")

// DefaultRatePerSecond is how many events per second an account may send
// when neither the account nor the server sets a limit.
const DefaultRatePerSecond = 5

// Options tunes a Service. Zero values turn caching and rate limiting off.
type Options struct {
	// Cache, when set, keeps token and destination lookups in process.
	Cache *Cache

	// Limiter, when set, limits each account to its rate_limit_per_second,
	// or DefaultRate when the account has none, capped at MaxRate.
	Limiter     ratelimit.Limiter
	DefaultRate int
	MaxRate     int

	// Batcher, when set, commits events from concurrent requests together.
	// Without it each event commits in its own transaction.
	Batcher *Batcher
}

// Service implements datapusher.EventSubmitter on the store.
type Service struct {
	store   *sqlstore.Store
	enqueue sqlstore.EnqueueFunc
	opts    Options
}

// NewService returns a Service that stores events in store and queues their
// deliveries with enqueue, in the same transaction.
func NewService(store *sqlstore.Store, enqueue sqlstore.EnqueueFunc, opts Options) *Service {
	if opts.DefaultRate <= 0 {
		opts.DefaultRate = DefaultRatePerSecond
	}
	if opts.MaxRate <= 0 {
		opts.MaxRate = max(opts.DefaultRate, 1000)
	}
	return &Service{store: store, enqueue: enqueue, opts: opts}
}

// RateLimitedError rejects an event because its account is over its rate
// limit. Result carries the values of the rate limit headers.
type RateLimitedError struct {
	Result ratelimit.Result
}

func (e *RateLimitedError) Error() string { return "rate limit exceeded" }

// RatePerSecond returns the incoming event limit of the account.
func (s *Service) RatePerSecond(account *datapusher.Account) int {
	rate := s.opts.DefaultRate
	if account.RateLimitPerSecond != nil && *account.RateLimitPerSecond > 0 {
		rate = *account.RateLimitPerSecond
	}
	return min(rate, s.opts.MaxRate)
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

	account, err := s.accountByToken(ctx, token)
	if err != nil {
		return nil, err
	}
	if err := s.checkRate(ctx, account); err != nil {
		return nil, err
	}
	return s.submit(ctx, account.AccountID, eventID, body, requestID)
}

// accountByToken finds the account of an app secret token. The lookup is by
// hash, so the time it takes reveals nothing to an attacker about how much
// of a guessed token matched.
func (s *Service) accountByToken(ctx context.Context, token string) (*datapusher.Account, error) {
	hash := HashToken(token)
	if s.opts.Cache == nil {
		account, _, err := s.store.AccountByTokenHash(ctx, hash)
		return account, err
	}
	if account, ok := s.opts.Cache.account(hash); ok {
		return account, nil
	}
	gen := s.opts.Cache.tokenGeneration()
	account, until, err := s.store.AccountByTokenHash(ctx, hash)
	if err != nil {
		return nil, err
	}
	s.opts.Cache.storeAccount(hash, account, gen, until)
	return account, nil
}

func (s *Service) checkRate(ctx context.Context, account *datapusher.Account) error {
	if s.opts.Limiter == nil {
		return nil
	}
	result, err := s.opts.Limiter.Allow(ctx, "incoming:"+account.AccountID, ratelimit.PerSecond(s.RatePerSecond(account)))
	if err != nil {
		return fmt.Errorf("check rate limit of account %s: %w", account.AccountID, err)
	}
	if !result.Allowed {
		return &RateLimitedError{Result: result}
	}
	return nil
}

func (s *Service) destinations(ctx context.Context, accountID string) ([]*datapusher.Destination, error) {
	if s.opts.Cache == nil {
		return s.store.AccountDestinations(ctx, accountID)
	}
	if destinations, ok := s.opts.Cache.accountDestinations(accountID); ok {
		return destinations, nil
	}
	gen := s.opts.Cache.generation(accountID)
	destinations, err := s.store.AccountDestinations(ctx, accountID)
	if err != nil {
		return nil, err
	}
	s.opts.Cache.storeDestinations(accountID, destinations, gen)
	return destinations, nil
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
	destinations, err := s.destinations(ctx, accountID)
	if err != nil {
		return nil, err
	}
	item := &sqlstore.NewEvent{
		Event: &datapusher.Event{
			AccountID: accountID, EventID: eventID, Body: bytes.Clone(body), RequestID: requestID,
		},
		Destinations: destinations,
	}
	if s.opts.Batcher != nil {
		err = s.opts.Batcher.Insert(ctx, item)
	} else {
		err = s.store.InsertEvents(ctx, []*sqlstore.NewEvent{item}, s.enqueue)
	}
	if err != nil {
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
