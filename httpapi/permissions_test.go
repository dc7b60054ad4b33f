package httpapi

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/sqlstore"
)

// world is a fresh account for one request of the permission matrix: the
// fixture's Admin and Normal user are its members, and it has a destination,
// a delivery log and a pending invitation.
type world struct {
	account       *datapusher.Account
	destination   *datapusher.Destination
	log           *datapusher.DeliveryLog
	normalMember  *datapusher.Member
	inviteToken   string
	personaTokens map[string]string
}

func (fx *fixture) newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{account: fx.createAccount(fx.admin, "World")}
	w.normalMember = fx.addMember(w.account, fx.normal, datapusher.RoleIDNormalUser)
	w.destination = fx.createDestination(w.account)
	w.log = fx.createEvent(w.account, "evt-world", w.destination)[0]

	invited := &datapusher.Member{AccountID: w.account.AccountID, Email: uuid.NewString() + "@invited.test",
		RoleID: datapusher.RoleIDNormalUser}
	w.inviteToken = randomToken()
	_, err := fx.store.CreateMember(ctx, invited, fx.admin.user.ID, &sqlstore.Invitation{
		TokenHash: hashToken(w.inviteToken), ExpiresAt: fx.server.now().Add(DefaultInvitationTTL),
	})
	require.NoError(t, err)

	w.personaTokens = map[string]string{}
	for _, p := range []*persona{fx.admin, fx.normal, fx.outsider, fx.super} {
		w.personaTokens[p.name] = fx.refreshToken(t, p.user.ID)
	}
	return w
}

// refreshToken issues and records a refresh token for userID.
func (fx *fixture) refreshToken(t *testing.T, userID string) string {
	t.Helper()
	signed, claims, err := fx.server.issueToken(userID, tokenTypeRefresh)
	require.NoError(t, err)
	require.NoError(t, fx.store.CreateRefreshToken(context.Background(), claims.ID, userID, refreshExpiry(claims)))
	return signed
}

// path fills the wildcards of a route path with the world's ids.
func (w *world) path(routePath string) string {
	id := w.destination.ID
	switch {
	case strings.HasPrefix(routePath, "/api/account-members/"):
		id = w.normalMember.ID
	case strings.HasPrefix(routePath, "/api/logs/"):
		id = w.log.ID
	}
	routePath = strings.ReplaceAll(routePath, "{account_id}", w.account.AccountID)
	if strings.HasPrefix(routePath, "/riverui/") {
		routePath = strings.ReplaceAll(routePath, "{path...}", "api/states")
	}
	routePath = strings.ReplaceAll(routePath, "{path...}", "swagger-ui.css")
	return strings.ReplaceAll(routePath, "{id}", id)
}

// expect lists the status for each persona: Admin, Normal user, outsider,
// superuser and anonymous.
type expect [5]int

var personaOrder = []string{"admin", "normal", "outsider", "superuser", "anonymous"}

// matrixRow is the body of a request and the status each persona gets.
type matrixRow struct {
	body func(fx *fixture, w *world, p *persona) any
	want expect
}

// Statuses of the permission matrix, by persona.
var (
	everyone     = func(status int) expect { return expect{status, status, status, status, status} }
	signedIn     = func(status int) expect { return expect{status, status, status, status, 401} }
	members      = func(status int) expect { return expect{status, status, 404, status, 401} }
	admins       = func(status int) expect { return expect{status, 403, 404, status, 401} }
	noBody       = func(*fixture, *world, *persona) any { return nil }
	newEmailBody = func(fields map[string]any) func(*fixture, *world, *persona) any { return bodyWithEmail(fields) }
	accountBody  = func(fields map[string]any) func(*fixture, *world, *persona) any { return bodyWithAccount(fields) }
	staticBody   = func(body map[string]any) func(*fixture, *world, *persona) any {
		return func(*fixture, *world, *persona) any { return body }
	}
	incomingBody  = func(*fixture, *world, *persona) any { return `{"a": 1}` }
	destinationIn = func(_ *fixture, w *world, _ *persona) any { return validDestination(w.account.AccountID) }
)

func bodyWithEmail(fields map[string]any) func(*fixture, *world, *persona) any {
	return func(_ *fixture, w *world, _ *persona) any {
		body := map[string]any{"email": uuid.NewString() + "@example.test", "account_id": w.account.AccountID}
		for k, v := range fields {
			body[k] = v
		}
		return body
	}
}

func bodyWithAccount(fields map[string]any) func(*fixture, *world, *persona) any {
	return func(_ *fixture, w *world, _ *persona) any {
		body := map[string]any{"account_id": w.account.AccountID}
		for k, v := range fields {
			body[k] = v
		}
		return body
	}
}

// permissionMatrix is the expected status of every route for every persona.
// Every route the server registers must have a row.
var permissionMatrix = map[Route]matrixRow{
	{"POST", "/api/users/register/"}: {newEmailBody(map[string]any{"password": "a long password"}), everyone(201)},
	{"POST", "/api/token/"}:          {staticBody(map[string]any{"email": "admin@example.com", "password": testPassword}), everyone(200)},
	{"POST", "/api/token/refresh/"}:  {func(_ *fixture, w *world, _ *persona) any { return map[string]any{"refresh": w.personaTokens["admin"]} }, everyone(200)},
	{"POST", "/api/users/logout/"}:   {func(_ *fixture, w *world, p *persona) any { return map[string]any{"refresh": w.personaTokens[p.name]} }, signedIn(205)},
	{"GET", "/api/users/me/"}:        {noBody, signedIn(200)},
	{"POST", "/api/users/accept-invite/"}: {func(_ *fixture, w *world, _ *persona) any {
		return map[string]any{"token": w.inviteToken, "password": "a long password"}
	}, everyone(200)},
	{"GET", "/api/roles/"}: {noBody, signedIn(200)},

	{"POST", "/api/accounts/"}:                           {staticBody(map[string]any{"account_name": "New"}), signedIn(201)},
	{"GET", "/api/accounts/"}:                            {noBody, signedIn(200)},
	{"GET", "/api/accounts/{account_id}/"}:               {noBody, members(200)},
	{"PUT", "/api/accounts/{account_id}/"}:               {staticBody(map[string]any{"account_name": "Renamed"}), members(200)},
	{"PATCH", "/api/accounts/{account_id}/"}:             {staticBody(map[string]any{"website": "https://w.test"}), members(200)},
	{"DELETE", "/api/accounts/{account_id}/"}:            {noBody, admins(204)},
	{"POST", "/api/accounts/{account_id}/rotate-token/"}: {staticBody(map[string]any{"grace_period_seconds": 60}), admins(200)},
	{"GET", "/api/accounts/{account_id}/destinations/"}:  {noBody, members(200)},
	{"GET", "/api/accounts/{account_id}/stats/"}:         {noBody, members(200)},

	{"POST", "/api/destinations/"}:                    {destinationIn, admins(201)},
	{"GET", "/api/destinations/"}:                     {noBody, signedIn(200)},
	{"GET", "/api/destinations/{id}/"}:                {noBody, members(200)},
	{"PUT", "/api/destinations/{id}/"}:                {destinationIn, members(200)},
	{"PATCH", "/api/destinations/{id}/"}:              {staticBody(map[string]any{"enabled": false}), members(200)},
	{"DELETE", "/api/destinations/{id}/"}:             {noBody, admins(204)},
	{"POST", "/api/destinations/{id}/rotate-secret/"}: {noBody, admins(200)},
	{"POST", "/api/destinations/{id}/recover/"}:       {staticBody(map[string]any{"since": "2026-01-01T00:00:00Z"}), admins(202)},

	{"POST", "/api/account-members/"}:        {newEmailBody(map[string]any{"role_id": 2}), admins(201)},
	{"GET", "/api/account-members/"}:         {noBody, signedIn(200)},
	{"GET", "/api/account-members/{id}/"}:    {noBody, members(200)},
	{"PUT", "/api/account-members/{id}/"}:    {staticBody(map[string]any{"role_id": 1}), admins(200)},
	{"PATCH", "/api/account-members/{id}/"}:  {staticBody(map[string]any{"role_id": 1}), admins(200)},
	{"DELETE", "/api/account-members/{id}/"}: {noBody, admins(204)},

	{"POST", "/api/logs/"}:              {accountBody(map[string]any{"data": map[string]any{"a": 1}}), admins(202)},
	{"GET", "/api/logs/"}:               {noBody, signedIn(200)},
	{"GET", "/api/logs/{id}/"}:          {noBody, members(200)},
	{"GET", "/api/logs/{id}/attempts/"}: {noBody, members(200)},
	{"POST", "/api/logs/{id}/retry/"}:   {noBody, admins(202)},

	// Operational routes are public. The fixture's stub handlers respond with 200.
	{"GET", "/healthz"}:           {noBody, everyone(200)},
	{"GET", "/readyz"}:            {noBody, everyone(200)},
	{"GET", "/metrics"}:           {noBody, everyone(200)},
	{"GET", "/api/schema/"}:       {noBody, everyone(200)},
	{"GET", "/swagger/"}:          {noBody, everyone(200)},
	{"GET", "/swagger/{path...}"}: {noBody, everyone(200)},

	// The queue dashboard is for superusers, who may also sign in with
	// Basic credentials (tested in riverui_test.go).
	{"", "/riverui/{path...}"}: {noBody, expect{403, 403, 403, 200, 401}},

	// Senders authenticate with an app secret token, never a JWT, so every
	// persona is rejected. The "" rows (every other method) are sent as GET.
	{"POST", "/server/incoming_data"}:  {incomingBody, everyone(401)},
	{"POST", "/server/incoming_data/"}: {incomingBody, everyone(401)},
	{"", "/server/incoming_data"}:      {noBody, everyone(405)},
	{"", "/server/incoming_data/"}:     {noBody, everyone(405)},
}

func TestPermissionMatrix(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		personas := []*persona{fx.admin, fx.normal, fx.outsider, fx.super, fx.anonymous}
		routes := fx.server.Routes()
		registered := map[Route]bool{}
		for _, rt := range routes {
			registered[rt] = true
		}
		for rt := range permissionMatrix {
			require.True(t, registered[rt], "matrix row for a route that is not registered: %v", rt)
		}

		for _, rt := range routes {
			row, ok := permissionMatrix[rt]
			if !ok {
				t.Errorf("route %s %s has no row in the permission matrix", rt.Method, rt.Path)
				continue
			}
			method := rt.Method
			if method == "" {
				method = http.MethodGet
			}
			for i, p := range personas {
				w := fx.newWorld(t)
				resp := fx.do(method, w.path(rt.Path), p, row.body(fx, w, p))
				require.Equal(t, row.want[i], resp.status, "%s %s as %s: %s", method, rt.Path, personaOrder[i], resp.body)
			}
		}
	})
}
