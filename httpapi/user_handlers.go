package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/datapusher/datapusher"
)

// handleRegister creates a user with a password. The new user is a member
// of no account until they create one or are added to one.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) error {
	f, err := s.readForm(w, r)
	if err != nil {
		return err
	}
	email, _ := f.string("email", true)
	password, _ := f.string("password", true)
	username, _ := f.string("username", false)
	email = strings.TrimSpace(email)
	if f.has("email") && email != "" {
		if msg := validateEmail(email); msg != "" {
			f.errors.Add("email", msg)
		}
	} else if f.has("email") {
		f.errors.Add("email", msgBlank)
	}
	if f.has("password") {
		validatePassword(&f.errors, password, email)
	}
	if utf8.RuneCountInString(username) > maxUsernameLength {
		f.errors.Add("username", fmt.Sprintf("Ensure this field has no more than %d characters.", maxUsernameLength))
	}
	if err := f.err(); err != nil {
		return err
	}

	hash, err := s.hashPassword(password)
	if err != nil {
		return err
	}
	user := &datapusher.User{Email: email, Username: strings.TrimSpace(username), PasswordHash: hash}
	if err := s.store.CreateUser(r.Context(), user); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, user)
	return nil
}

// handleMe returns the signed-in user.
func (s *Server) handleMe(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	writeJSON(w, http.StatusOK, user)
	return nil
}

// handleAcceptInvite sets the password of an invited user. The invitation
// token works once and only until it expires.
func (s *Server) handleAcceptInvite(w http.ResponseWriter, r *http.Request) error {
	f, err := s.readForm(w, r)
	if err != nil {
		return err
	}
	token, _ := f.string("token", true)
	password, _ := f.string("password", true)
	if f.has("token") && token == "" {
		f.errors.Add("token", msgBlank)
	}
	if f.has("password") {
		validatePassword(&f.errors, password, "")
	}
	if err := f.err(); err != nil {
		return err
	}

	hash, err := s.hashPassword(password)
	if err != nil {
		return err
	}
	user, err := s.store.AcceptInvitation(r.Context(), hashToken(token), hash)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, user)
	return nil
}
