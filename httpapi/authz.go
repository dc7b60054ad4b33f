package httpapi

import (
	"context"
	"math"

	"github.com/datapusher/datapusher"
)

// action is something a user does to an account or to an object inside it.
type action string

// Actions checked by authorize.
const (
	actionAccountRead             action = "account.read"
	actionAccountUpdate           action = "account.update"
	actionAccountSetRateLimit     action = "account.set_rate_limit"
	actionAccountSetRetention     action = "account.set_retention"
	actionAccountReadStats        action = "account.read_stats"
	actionAccountDelete           action = "account.delete"
	actionAccountRotateToken      action = "account.rotate_token"
	actionDestinationRead         action = "destination.read"
	actionDestinationReadSecret   action = "destination.read_secret"
	actionDestinationUpdate       action = "destination.update"
	actionDestinationCreate       action = "destination.create"
	actionDestinationDelete       action = "destination.delete"
	actionDestinationRotateSecret action = "destination.rotate_secret"
	actionDestinationRecover      action = "destination.recover"
	actionLogRead                 action = "log.read"
	actionLogSend                 action = "log.send"
	actionLogRetry                action = "log.retry"
	actionMemberRead              action = "member.read"
	actionMemberWrite             action = "member.write"
)

var (
	adminOnly   = []int{datapusher.RoleIDAdmin}
	everyMember = []int{datapusher.RoleIDAdmin, datapusher.RoleIDNormalUser}
)

// permissions lists the roles allowed each action in an account. Superusers
// may do everything in every account. A user who is not a member of the
// account gets 404, as if it did not exist. A member whose role is not listed
// gets 403.
var permissions = map[action][]int{
	actionAccountRead:             everyMember,
	actionAccountUpdate:           everyMember,
	actionAccountSetRateLimit:     adminOnly,
	actionAccountSetRetention:     adminOnly,
	actionAccountReadStats:        everyMember,
	actionAccountDelete:           adminOnly,
	actionAccountRotateToken:      adminOnly,
	actionDestinationRead:         everyMember,
	actionDestinationReadSecret:   adminOnly,
	actionDestinationUpdate:       everyMember,
	actionDestinationCreate:       adminOnly,
	actionDestinationDelete:       adminOnly,
	actionDestinationRotateSecret: adminOnly,
	actionDestinationRecover:      adminOnly,
	actionLogRead:                 everyMember,
	actionLogSend:                 adminOnly,
	actionLogRetry:                adminOnly,
	actionMemberRead:              everyMember,
	actionMemberWrite:             adminOnly,
}

// authorize returns nil when user may do act in the account, errNotFound
// when the user is not a member of it, and errForbidden when their role does
// not allow act.
func (s *Server) authorize(ctx context.Context, user *datapusher.User, accountID string, act action) error {
	setLogAccount(ctx, accountID)
	if user.IsSuperuser {
		return nil
	}
	role, err := s.store.MemberRole(ctx, accountID, user.ID)
	if err != nil {
		return err
	}
	if role == 0 {
		return errNotFound
	}
	for _, allowed := range permissions[act] {
		if role == allowed {
			return nil
		}
	}
	return errForbidden
}

// memberRoles returns the user's role in each account they are a member of,
// keyed by account id. Its cost grows with the user's memberships, not with
// the number of objects they are checked for.
func (s *Server) memberRoles(ctx context.Context, user *datapusher.User) (map[string]int, error) {
	members, _, err := s.store.Members(ctx, datapusher.MemberFilter{
		UserID: &user.ID, Limit: math.MaxInt32,
	})
	if err != nil {
		return nil, err
	}
	roles := make(map[string]int, len(members))
	for _, m := range members {
		roles[m.AccountID] = m.RoleID
	}
	return roles, nil
}

// allowed reports whether user may do act in the account, for decisions
// that hide fields instead of rejecting the request.
func (s *Server) allowed(ctx context.Context, user *datapusher.User, accountID string, act action) (bool, error) {
	err := s.authorize(ctx, user, accountID, act)
	switch datapusher.ErrorCode(err) {
	case "":
		return true, nil
	case datapusher.ENOTFOUND, datapusher.EFORBIDDEN:
		return false, nil
	}
	return false, err
}

// visibleTo returns the VisibleTo value of store filters: the user's id, or
// "" for a superuser, so that lists include every account.
func visibleTo(user *datapusher.User) string {
	if user.IsSuperuser {
		return ""
	}
	return user.ID
}
