package httpapi

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/sqlstore"
)

// maxTokenGracePeriod is the longest time an old app secret token keeps
// working after a rotation.
const maxTokenGracePeriod = 24 * time.Hour

// accountResource is an account as the API reads and writes it: the stored
// account and its log retention period, which the store keeps apart.
type accountResource struct {
	*datapusher.Account

	// LogRetentionDays is how many days the account's delivery logs are
	// kept, or nil for the global retention period.
	LogRetentionDays *int `json:"log_retention_days"`
}

// handleCreateAccount creates an account with a new app secret token and
// makes the signed-in user its Admin. The response is the only place the
// token is shown, beside the rotate-token response. log_retention_days is
// ignored here and set with PUT or PATCH, so that a failure to store it
// cannot lose the response that carries the token.
func (s *Server) handleCreateAccount(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	f, err := s.readForm(w, r)
	if err != nil {
		return err
	}
	a := &datapusher.Account{}
	s.applyAccountForm(f, a, true)
	if err := f.err(); err != nil {
		return err
	}

	token := randomToken()
	if err := s.store.CreateAccount(r.Context(), a, hashToken(token), user.ID); err != nil {
		return err
	}
	a.AppSecretToken = token
	writeJSON(w, http.StatusCreated, accountResource{Account: a})
	return nil
}

// handleListAccounts returns one page of the accounts the user is a member
// of, or of every account for a superuser.
func (s *Server) handleListAccounts(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	q := newQuery(r)
	filter := datapusher.AccountFilter{
		Search:       q.search(),
		CreatedAtGTE: q.time("created_at__gte"),
		CreatedAtLTE: q.time("created_at__lte"),
		Ordering:     q.ordering(sqlstore.AccountOrderings),
		VisibleTo:    visibleTo(user),
	}
	p := q.page()
	if err := q.err(); err != nil {
		return err
	}
	filter.Offset, filter.Limit = p.offset(), p.size

	accounts, count, err := s.store.Accounts(r.Context(), filter)
	if err != nil {
		return err
	}
	resources, err := s.withRetentions(r, accounts)
	if err != nil {
		return err
	}
	body, err := newPage(s, r, p, count, resources)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// handleGetAccount returns one account.
func (s *Server) handleGetAccount(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	a, err := s.accountFor(r, user, actionAccountRead)
	if err != nil {
		return err
	}
	resource, err := s.withRetention(r, a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resource)
	return nil
}

// handleUpdateAccount changes an account: PUT needs every required field,
// PATCH only the fields that change. Only Admins may change the rate limit
// and the log retention period.
//
// NOTE: the account fields and the retention period are written by two
// statements that commit separately, so when the second fails the first
// stays changed.
func (s *Server) handleUpdateAccount(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	a, err := s.accountFor(r, user, actionAccountUpdate)
	if err != nil {
		return err
	}
	resource, err := s.withRetention(r, a)
	if err != nil {
		return err
	}
	f, err := s.readForm(w, r)
	if err != nil {
		return err
	}
	oldLimit, oldRetention := a.RateLimitPerSecond, resource.LogRetentionDays
	s.applyAccountForm(f, a, r.Method == http.MethodPut)
	applyRetentionForm(f, resource)
	if err := f.err(); err != nil {
		return err
	}

	// Check the Admin-only fields that change.
	retentionChanged := !sameInt(oldRetention, resource.LogRetentionDays)
	if !sameInt(oldLimit, a.RateLimitPerSecond) {
		if err := s.authorize(r.Context(), user, a.AccountID, actionAccountSetRateLimit); err != nil {
			return err
		}
	}
	if retentionChanged {
		if err := s.authorize(r.Context(), user, a.AccountID, actionAccountSetRetention); err != nil {
			return err
		}
	}

	// Write the account, then the retention period, which incoming data
	// lookups do not read.
	if err := s.store.UpdateAccount(r.Context(), a, user.ID); err != nil {
		return err
	}
	s.accountChanged(r.Context(), a.AccountID)
	if retentionChanged {
		err := s.store.SetAccountRetention(r.Context(), a.AccountID, resource.LogRetentionDays)
		if err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, resource)
	return nil
}

// handleDeleteAccount deletes an account with everything in it.
func (s *Server) handleDeleteAccount(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	a, err := s.accountFor(r, user, actionAccountDelete)
	if err != nil {
		return err
	}
	if err := s.store.DeleteAccount(r.Context(), a.AccountID); err != nil {
		return err
	}
	s.accountChanged(r.Context(), a.AccountID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleRotateAccountToken gives the account a new app secret token and
// returns it. The old token keeps working for grace_period_seconds, which
// is 0 (none) unless given.
func (s *Server) handleRotateAccountToken(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	a, err := s.accountFor(r, user, actionAccountRotateToken)
	if err != nil {
		return err
	}
	f, err := s.readForm(w, r)
	if err != nil {
		return err
	}
	seconds, _ := f.int("grace_period_seconds", false)
	maxSeconds := int(maxTokenGracePeriod / time.Second)
	if seconds < 0 || seconds > maxSeconds {
		f.errors.Add("grace_period_seconds", fmt.Sprintf("Enter a whole number from 0 to %d.", maxSeconds))
	}
	if err := f.err(); err != nil {
		return err
	}

	token := randomToken()
	grace := time.Duration(seconds) * time.Second
	if err := s.store.RotateAccountToken(r.Context(), a.AccountID, hashToken(token), grace, user.ID); err != nil {
		return err
	}
	s.accountChanged(r.Context(), a.AccountID)
	a, err = s.store.Account(r.Context(), a.AccountID)
	if err != nil {
		return err
	}
	a.AppSecretToken = token
	resource, err := s.withRetention(r, a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resource)
	return nil
}

// handleAccountDestinations returns every destination of an account,
// unpaginated.
func (s *Server) handleAccountDestinations(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	a, err := s.accountFor(r, user, actionDestinationRead)
	if err != nil {
		return err
	}
	destinations, err := s.store.AccountDestinations(r.Context(), a.AccountID)
	if err != nil {
		return err
	}
	if err := s.hideSecrets(r, user, destinations...); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, destinations)
	return nil
}

// accountFor loads the account named by the account_id path value and
// checks that user may do act in it.
func (s *Server) accountFor(r *http.Request, user *datapusher.User, act action) (*datapusher.Account, error) {
	id := r.PathValue("account_id")
	if err := s.authorize(r.Context(), user, id, act); err != nil {
		return nil, err
	}
	return s.store.Account(r.Context(), id)
}

// withRetention returns a with its log retention period.
func (s *Server) withRetention(r *http.Request, a *datapusher.Account) (*accountResource, error) {
	days, err := s.store.AccountRetention(r.Context(), a.AccountID)
	if err != nil {
		return nil, err
	}
	return &accountResource{Account: a, LogRetentionDays: days}, nil
}

// withRetentions returns accounts with their log retention periods, read
// in one query.
func (s *Server) withRetentions(r *http.Request, accounts []*datapusher.Account) ([]*accountResource, error) {
	ids := make([]string, len(accounts))
	for i, a := range accounts {
		ids[i] = a.AccountID
	}
	days, err := s.store.AccountRetentions(r.Context(), ids)
	if err != nil {
		return nil, err
	}
	resources := make([]*accountResource, len(accounts))
	for i, a := range accounts {
		resources[i] = &accountResource{Account: a}
		if n, ok := days[a.AccountID]; ok {
			resources[i].LogRetentionDays = &n
		}
	}
	return resources, nil
}

// applyRetentionForm copies and validates the optional log_retention_days
// field, which null resets to the global retention period.
func applyRetentionForm(f *form, a *accountResource) {
	days, ok := f.nullableInt("log_retention_days")
	if !ok {
		return
	}
	a.LogRetentionDays = days
	if days != nil && (*days < 1 || *days > sqlstore.MaxLogRetentionDays) {
		f.errors.Add("log_retention_days",
			fmt.Sprintf("Enter a whole number from 1 to %d, or null for the default.", sqlstore.MaxLogRetentionDays))
	}
}

// applyAccountForm copies the account fields in f to a and validates them.
// full requires every required field, for POST and PUT.
func (s *Server) applyAccountForm(f *form, a *datapusher.Account, full bool) {
	if name, ok := f.string("account_name", full); ok {
		validateName(&f.errors, "account_name", name)
		a.AccountName = strings.TrimSpace(name)
	}
	if email, ok := f.nullableString("email"); ok {
		a.Email = emptyToNil(email)
		if a.Email != nil {
			*a.Email = strings.TrimSpace(*a.Email)
			if msg := validateEmail(*a.Email); msg != "" {
				f.errors.Add("email", msg)
			}
		}
	}
	if website, ok := f.nullableString("website"); ok {
		a.Website = emptyToNil(website)
		if a.Website != nil {
			if msg := validateHTTPURL(*a.Website, maxWebsiteLength); msg != "" {
				f.errors.Add("website", msg)
			}
		}
	}
	if limit, ok := f.nullableInt("rate_limit_per_second"); ok {
		a.RateLimitPerSecond = limit
		if limit != nil && (*limit < 1 || *limit > s.cfg.MaxRateLimitPerSecond) {
			f.errors.Add("rate_limit_per_second",
				fmt.Sprintf("Enter a whole number from 1 to %d.", s.cfg.MaxRateLimitPerSecond))
		}
	}
}

// randomToken returns 32 random bytes in unpadded base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error.
	return base64.RawURLEncoding.EncodeToString(b)
}

func emptyToNil(s *string) *string {
	if s == nil || strings.TrimSpace(*s) == "" {
		return nil
	}
	return s
}

func sameInt(a, b *int) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}
