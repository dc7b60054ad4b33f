package httpapi

import (
	"net/http"

	"github.com/datapusher/datapusher"
)

// handleListRoles returns every role, unpaginated.
func (s *Server) handleListRoles(w http.ResponseWriter, r *http.Request, _ *datapusher.User) error {
	roles, err := s.store.Roles(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, roles)
	return nil
}
