package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/sqlstore"
)

// roleIDs lists the ids of the roles, which a migration creates.
var roleIDs = []int{datapusher.RoleIDAdmin, datapusher.RoleIDNormalUser}

// memberResponse is a membership, with the invitation token right after the
// membership created the user.
type memberResponse struct {
	*datapusher.Member
	InvitationToken string `json:"invitation_token,omitempty"`
}

// handleCreateMember adds a user to an account, by user_id or by email. An
// email of no user creates a user without a password and an invitation,
// whose token is returned once, in this response.
func (s *Server) handleCreateMember(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	f, err := s.readForm(w, r)
	if err != nil {
		return err
	}
	accountID, err := s.bodyAccountID(r, f, user, actionMemberWrite)
	if err != nil {
		return err
	}
	m := &datapusher.Member{AccountID: accountID}
	m.RoleID, _ = f.int("role_id", true)
	if f.has("role_id") {
		validateRoleID(f, m.RoleID)
	}
	readMemberUser(f, m)
	if err := f.err(); err != nil {
		return err
	}

	token := randomToken()
	invite := &sqlstore.Invitation{TokenHash: hashToken(token), ExpiresAt: s.now().Add(s.cfg.InvitationTTL)}
	created, err := s.store.CreateMember(r.Context(), m, user.ID, invite)
	if err != nil {
		return err
	}
	if !created {
		token = ""
	}
	writeJSON(w, http.StatusCreated, memberResponse{Member: m, InvitationToken: token})
	return nil
}

// readMemberUser reads user_id or, when it is missing, email.
func readMemberUser(f *form, m *datapusher.Member) {
	if f.has("user_id") {
		if id, ok := f.string("user_id", true); ok {
			if !isUUID(id) {
				f.errors.Add("user_id", fmt.Sprintf("%q is not a valid UUID.", id))
			}
			m.UserID = id
		}
		return
	}
	if !f.has("email") {
		f.errors.Add("non_field_errors", "Either user_id or email is required.")
		return
	}
	email, ok := f.string("email", true)
	if !ok {
		return
	}
	m.Email = strings.TrimSpace(email)
	if msg := validateEmail(m.Email); msg != "" {
		f.errors.Add("email", msg)
	}
}

// handleListMembers returns one page of the memberships of the accounts the
// user is a member of.
func (s *Server) handleListMembers(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	q := newQuery(r)
	filter := datapusher.MemberFilter{
		AccountID: q.uuid("account_id"),
		UserID:    q.uuid("user_id"),
		VisibleTo: visibleTo(user),
	}
	if roleID := q.choice("role_id", roleIDChoices()); roleID != nil {
		id, _ := strconv.Atoi(*roleID)
		filter.RoleID = &id
	}
	p := q.page()
	if err := q.err(); err != nil {
		return err
	}
	filter.Offset, filter.Limit = p.offset(), p.size

	members, count, err := s.store.Members(r.Context(), filter)
	if err != nil {
		return err
	}
	body, err := newPage(s, r, p, count, members)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// handleGetMember returns one membership.
func (s *Server) handleGetMember(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	m, err := s.memberFor(r, user, actionMemberRead)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

// handleUpdateMember changes a member's role, the only field that can
// change. Demoting the account's last Admin is rejected.
func (s *Server) handleUpdateMember(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	m, err := s.memberFor(r, user, actionMemberWrite)
	if err != nil {
		return err
	}
	f, err := s.readForm(w, r)
	if err != nil {
		return err
	}
	roleID, ok := f.int("role_id", r.Method == http.MethodPut)
	if ok {
		validateRoleID(f, roleID)
	} else {
		roleID = m.RoleID
	}
	if id, ok := f.string("account_id", false); ok && id != m.AccountID {
		f.errors.Add("account_id", "The account of a membership cannot be changed.")
	}
	if id, ok := f.string("user_id", false); ok && id != m.UserID {
		f.errors.Add("user_id", "The user of a membership cannot be changed.")
	}
	if err := f.err(); err != nil {
		return err
	}

	updated, err := s.store.UpdateMemberRole(r.Context(), m.ID, roleID, user.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, updated)
	return nil
}

// handleDeleteMember removes a membership. Removing the account's last
// Admin is rejected.
func (s *Server) handleDeleteMember(w http.ResponseWriter, r *http.Request, user *datapusher.User) error {
	m, err := s.memberFor(r, user, actionMemberWrite)
	if err != nil {
		return err
	}
	if err := s.store.DeleteMember(r.Context(), m.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// memberFor loads the membership named by the id path value and checks
// that user may do act in its account.
func (s *Server) memberFor(r *http.Request, user *datapusher.User, act action) (*datapusher.Member, error) {
	m, err := s.store.Member(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if err := s.authorize(r.Context(), user, m.AccountID, act); err != nil {
		return nil, err
	}
	return m, nil
}

func validateRoleID(f *form, roleID int) {
	for _, id := range roleIDs {
		if roleID == id {
			return
		}
	}
	f.errors.Add("role_id", fmt.Sprintf("Invalid role %d. Choose one of: %s.", roleID, strings.Join(roleIDChoices(), ", ")))
}

func roleIDChoices() []string {
	choices := make([]string, len(roleIDs))
	for i, id := range roleIDs {
		choices[i] = strconv.Itoa(id)
	}
	return choices
}
