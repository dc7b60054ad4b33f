package httpapi

import (
	"net/http"

	"github.com/datapusher/datapusher"
)

// handleToken signs a user in with email and password and returns an
// access token and a refresh token. Failed sign-ins are limited per email
// address and per client IP (Config.LoginFailuresPerMinute).
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) error {
	f, err := s.readForm(w, r)
	if err != nil {
		return err
	}
	email, _ := f.string("email", true)
	password, _ := f.string("password", true)
	if err := f.err(); err != nil {
		return err
	}
	limitKeys := loginLimitKeys(r, email)
	if err := s.checkLoginLimit(w, r, limitKeys); err != nil {
		return err
	}

	// Run bcrypt whether or not the email exists, so that the response time
	// does not tell which emails have users.
	user, err := s.store.UserByEmail(r.Context(), email)
	if err != nil && !isNotFound(err) {
		return err
	}
	if !s.checkPassword(user, password) {
		s.recordLoginFailure(r, limitKeys)
		return errBadCredentials
	}

	access, _, err := s.issueToken(user.ID, tokenTypeAccess)
	if err != nil {
		return err
	}
	refresh, claims, err := s.issueToken(user.ID, tokenTypeRefresh)
	if err != nil {
		return err
	}
	if err := s.store.CreateRefreshToken(r.Context(), claims.ID, user.ID, refreshExpiry(claims)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"access": access, "refresh": refresh})
	return nil
}

// handleRefreshToken returns a new access token for an active refresh
// token. The refresh token itself is not rotated.
func (s *Server) handleRefreshToken(w http.ResponseWriter, r *http.Request) error {
	claims, err := s.activeRefreshToken(w, r, "")
	if err != nil {
		return err
	}
	if _, err := s.store.UserByID(r.Context(), claims.Subject); isNotFound(err) {
		return errRefreshNotValid
	} else if err != nil {
		return err
	}
	access, _, err := s.issueToken(claims.Subject, tokenTypeAccess)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"access": access})
	return nil
}

// handleLogout revokes the signed-in user's refresh token given in the
// body and returns 205 Reset Content with no body, as the Django service
// did. A refresh token that is revoked, expired or another user's gets 401.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	claims, err := s.activeRefreshToken(w, r, user.ID)
	if err != nil {
		return err
	}
	revoked, err := s.store.RevokeRefreshToken(r.Context(), claims.ID, user.ID)
	if err != nil {
		return err
	}
	if !revoked {
		return errRefreshRevoked
	}
	w.WriteHeader(http.StatusResetContent)
	return nil
}

// activeRefreshToken reads {"refresh": token} from the body and returns the
// token's claims when it is valid, not revoked and, unless userID is "",
// issued to userID.
func (s *Server) activeRefreshToken(w http.ResponseWriter, r *http.Request, userID string) (*tokenClaims, error) {
	f, err := s.readForm(w, r)
	if err != nil {
		return nil, err
	}
	token, _ := f.string("refresh", true)
	if err := f.err(); err != nil {
		return nil, err
	}
	claims, err := s.parseToken(token, tokenTypeRefresh)
	if err != nil {
		return nil, errRefreshNotValid
	}
	if userID != "" && claims.Subject != userID {
		return nil, errRefreshNotValid
	}
	active, err := s.store.RefreshTokenActive(r.Context(), claims.ID, claims.Subject)
	if err != nil {
		return nil, err
	}
	if !active {
		return nil, errRefreshRevoked
	}
	return claims, nil
}
