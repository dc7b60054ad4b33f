package httpapi

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/sqlstore"
)

// signingSecretGrace is how long the previous signing secret keeps signing
// deliveries after a rotation.
const signingSecretGrace = 24 * time.Hour

// maxDisabledReasonLength is the longest disabled_reason.
const maxDisabledReasonLength = 255

// handleCreateDestination adds a destination to an account, with a new
// signing secret.
func (s *Server) handleCreateDestination(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	f, err := s.readForm(w, r)
	if err != nil {
		return err
	}
	accountID, err := s.bodyAccountID(r, f, user, actionDestinationCreate)
	if err != nil {
		return err
	}
	d := &datapusher.Destination{AccountID: accountID, Enabled: true, Headers: map[string]string{}}
	s.applyDestinationForm(f, d, true, true)
	if err := f.err(); err != nil {
		return err
	}

	d.SigningSecret = newSigningSecret()
	if err := s.store.CreateDestination(r.Context(), d, user.ID); err != nil {
		return err
	}
	s.accountChanged(r.Context(), d.AccountID)
	writeJSON(w, http.StatusCreated, d)
	return nil
}

// handleListDestinations returns one page of the destinations of the
// accounts the user is a member of.
func (s *Server) handleListDestinations(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	q := newQuery(r)
	filter := datapusher.DestinationFilter{
		AccountID: q.uuid("account_id"),
		Search:    q.search(),
		Ordering:  q.ordering(sqlstore.DestinationOrderings),
		VisibleTo: visibleTo(user),
	}
	if method := q.string("http_method"); method != nil {
		upper := strings.ToUpper(*method)
		if slices.Contains(datapusher.DestinationMethods, upper) {
			filter.HTTPMethod = &upper
		} else {
			q.errors.Add("http_method", fmt.Sprintf("Select a valid choice. %q is not one of: %s.",
				*method, strings.Join(datapusher.DestinationMethods, ", ")))
		}
	}
	p := q.page()
	if err := q.err(); err != nil {
		return err
	}
	filter.Offset, filter.Limit = p.offset(), p.size

	destinations, count, err := s.store.Destinations(r.Context(), filter)
	if err != nil {
		return err
	}
	if err := s.hidePageSecrets(r, user, destinations); err != nil {
		return err
	}
	body, err := newPage(s, r, p, count, destinations)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// handleGetDestination returns one destination.
func (s *Server) handleGetDestination(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	d, err := s.destinationFor(r, user, actionDestinationRead)
	if err != nil {
		return err
	}
	if err := s.hideSecrets(r, user, d); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// handleUpdateDestination changes a destination: PUT needs every required
// field, PATCH only the fields that change. A destination stays in its
// account.
func (s *Server) handleUpdateDestination(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	d, err := s.destinationFor(r, user, actionDestinationUpdate)
	if err != nil {
		return err
	}
	f, err := s.readForm(w, r)
	if err != nil {
		return err
	}
	s.applyDestinationForm(f, d, r.Method == http.MethodPut, false)
	if err := f.err(); err != nil {
		return err
	}

	if err := s.store.UpdateDestination(r.Context(), d, user.ID); err != nil {
		return err
	}
	s.accountChanged(r.Context(), d.AccountID)
	if err := s.hideSecrets(r, user, d); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// handleDeleteDestination deletes a destination and its delivery logs.
func (s *Server) handleDeleteDestination(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	d, err := s.destinationFor(r, user, actionDestinationDelete)
	if err != nil {
		return err
	}
	if err := s.store.DeleteDestination(r.Context(), d.ID); err != nil {
		return err
	}
	s.accountChanged(r.Context(), d.AccountID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleRotateSigningSecret gives a destination a new signing secret and
// returns the destination with it. The previous secret keeps signing for
// signingSecretGrace, so receivers can accept both while they switch.
func (s *Server) handleRotateSigningSecret(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	d, err := s.destinationFor(r, user, actionDestinationRotateSecret)
	if err != nil {
		return err
	}
	secret := newSigningSecret()
	if err := s.store.RotateSigningSecret(r.Context(), d.ID, secret, signingSecretGrace, user.ID); err != nil {
		return err
	}
	s.accountChanged(r.Context(), d.AccountID)
	d, err = s.store.Destination(r.Context(), d.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// handleRecoverDestination queues a new delivery of every failed log of a
// destination whose event was received from since (inclusive) to until
// (exclusive), or to now when until is missing, and returns how many it
// queued. The logs keep their earlier attempts.
func (s *Server) handleRecoverDestination(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	d, err := s.destinationFor(r, user, actionDestinationRecover)
	if err != nil {
		return err
	}
	f, err := s.readForm(w, r)
	if err != nil {
		return err
	}
	since := f.time("since", true)
	until := f.time("until", false)
	if since != nil && until != nil && !until.After(*since) {
		f.errors.Add("until", "Ensure this time is after since.")
	}
	if err := f.err(); err != nil {
		return err
	}
	if s.cfg.Enqueue == nil {
		return datapusher.Errorf(datapusher.EUNAVAILABLE, "no delivery queue configured")
	}

	queued, err := s.store.RecoverDestination(r.Context(), d.ID, *since, until, s.cfg.Enqueue)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]int{"queued": queued})
	return nil
}

// destinationFor loads the destination named by the id path value and
// checks that user may do act in its account.
func (s *Server) destinationFor(r *http.Request, user *datapusher.User, act action) (*datapusher.Destination, error) {
	d, err := s.store.Destination(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if err := s.authorize(r.Context(), user, d.AccountID, act); err != nil {
		return nil, err
	}
	return d, nil
}

// hideSecrets clears the signing secret of each destination whose account
// the user is not an Admin of.
func (s *Server) hideSecrets(r *http.Request, user *datapusher.User, destinations ...*datapusher.Destination) error {
	visible := map[string]bool{}
	for _, d := range destinations {
		ok, seen := visible[d.AccountID]
		if !seen {
			var err error
			ok, err = s.allowed(r.Context(), user, d.AccountID, actionDestinationReadSecret)
			if err != nil {
				return err
			}
			visible[d.AccountID] = ok
		}
		if !ok {
			d.SigningSecret = ""
		}
	}
	return nil
}

// hidePageSecrets clears the signing secret of each destination whose
// account the user may not read secrets of, as hideSecrets does, but reads
// every role of the user in one step. A page of any size, from any number
// of accounts, therefore costs the same queries.
func (s *Server) hidePageSecrets(r *http.Request, user *datapusher.User, destinations []*datapusher.Destination) error {
	if user.IsSuperuser || len(destinations) == 0 {
		return nil
	}
	roles, err := s.memberRoles(r.Context(), user)
	if err != nil {
		return err
	}
	for _, d := range destinations {
		if !slices.Contains(permissions[actionDestinationReadSecret], roles[d.AccountID]) {
			d.SigningSecret = ""
		}
	}
	return nil
}

// bodyAccountID reads the required account_id field of a create request and
// checks that user may do act in that account. An account the user cannot
// see is errNotFound, as for a path that names it.
func (s *Server) bodyAccountID(r *http.Request, f *form, user *datapusher.User, act action) (string, error) {
	id, ok := f.string("account_id", true)
	if !ok {
		return "", nil
	}
	if !isUUID(id) {
		f.errors.Add("account_id", fmt.Sprintf("%q is not a valid UUID.", id))
		return "", nil
	}
	if err := s.authorize(r.Context(), user, id, act); err != nil {
		return "", err
	}
	if user.IsSuperuser {
		if _, err := s.store.Account(r.Context(), id); err != nil {
			return "", err
		}
	}
	return id, nil
}

// applyDestinationForm copies the destination fields in f to d and
// validates them. full requires every required field, for POST and PUT.
func (s *Server) applyDestinationForm(f *form, d *datapusher.Destination, full, creating bool) {
	if !creating {
		if id, ok := f.string("account_id", full); ok && id != d.AccountID {
			f.errors.Add("account_id", "A destination cannot be moved to another account.")
		}
	}
	if u, ok := f.string("url", full); ok {
		d.URL = strings.TrimSpace(u)
		s.validateDestinationURL(f, d.URL)
	}
	if method, ok := f.string("http_method", full); ok {
		d.HTTPMethod = strings.ToUpper(strings.TrimSpace(method))
		if !slices.Contains(datapusher.DestinationMethods, d.HTTPMethod) {
			f.errors.Add("http_method", fmt.Sprintf("%q is not a valid choice. Choose one of: %s.",
				method, strings.Join(datapusher.DestinationMethods, ", ")))
		}
	}
	applyHeaders(f, d, full)
	wasEnabled := d.Enabled
	if enabled, ok := f.bool("enabled"); ok {
		d.Enabled = enabled
	}
	if reason, ok := f.string("disabled_reason", false); ok {
		d.DisabledReason = reason
		if utf8.RuneCountInString(reason) > maxDisabledReasonLength {
			f.errors.Add("disabled_reason", fmt.Sprintf("Ensure this field has no more than %d characters.", maxDisabledReasonLength))
		}
	} else if d.Enabled && !wasEnabled {
		// Turning a destination back on clears why it was turned off.
		d.DisabledReason = ""
	}
}

// applyHeaders copies and validates the headers field.
func applyHeaders(f *form, d *datapusher.Destination, full bool) {
	var headers map[string]string
	switch f.field("headers", &headers, "Expected a JSON object of string header values.") {
	case set:
		for _, msg := range validateHeaders(headers) {
			f.errors.Add("headers", msg)
		}
		d.Headers = headers
	case null:
		f.errors.Add("headers", msgNotNull)
	case absent:
		if full && !f.has("headers") {
			f.errors.Add("headers", msgRequired)
		}
	}
}

// validateDestinationURL records why a destination URL is rejected.
func (s *Server) validateDestinationURL(f *form, u string) {
	if msg := validateHTTPURL(u, maxURLLength); msg != "" {
		f.errors.Add("url", msg)
		return
	}
	if s.cfg.CheckDestinationURL == nil {
		return
	}
	if err := s.cfg.CheckDestinationURL(u); err != nil {
		f.errors.Add("url", err.Error())
	}
}

// newSigningSecret returns a Standard Webhooks secret: "whsec_" and 32
// random bytes in standard base64.
func newSigningSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error.
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}
