package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/internal/testdb"
	"github.com/datapusher/datapusher/sqlstore"
)

// invite adds email to account as a new user with an invitation that
// expires at expiresAt.
func invite(t *testing.T, store *sqlstore.Store, account *datapusher.Account, owner *datapusher.User,
	email, tokenHash string, expiresAt time.Time) *datapusher.Member {
	t.Helper()
	m := &datapusher.Member{AccountID: account.AccountID, Email: email, RoleID: datapusher.RoleIDAdmin}
	created, err := store.CreateMember(context.Background(), m, owner.ID,
		&sqlstore.Invitation{TokenHash: tokenHash, ExpiresAt: expiresAt})
	require.NoError(t, err)
	require.True(t, created)
	return m
}

// memberAccounts returns the ids of the accounts that the user with email
// is a member of.
func memberAccounts(t *testing.T, store *sqlstore.Store, email string) []string {
	t.Helper()
	return queryStrings(t, store, `SELECT m.account_id FROM account_members m JOIN users u ON u.id = m.user_id
		WHERE u.email = $1`, email)
}

func TestSuperuserJoinsNoInvitedAccount(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		owner := createUser(t, store, "owner@example.com")
		account := createAccount(t, store, owner, "Inviting")
		for name, expiresAt := range map[string]time.Time{
			"open": time.Now().Add(time.Hour), "expired": time.Now().Add(-time.Hour),
		} {
			email := name + "-ops@example.com"
			invite(t, store, account, owner, email, name+"-hash", expiresAt)
			user, err := store.SetSuperuser(ctx, email, "superuser-hash")
			require.NoError(t, err)
			require.True(t, user.IsSuperuser)
			require.Empty(t, memberAccounts(t, store, email), "superuser kept the %s invitation's membership", name)
		}
	})
}

// TestCreateMemberRetriesByEmail makes PostgreSQL abort an invitation by
// email as a deadlock victim, and checks that the retried transaction
// invites by email again rather than by the id of the rolled-back user.
func TestCreateMemberRetriesByEmail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// PostgreSQL checks a lock wait for a deadlock once, deadlock_timeout
	// after it began, and aborts the transaction whose check finds the
	// cycle. The invitation waits first and checks after 5 s, by when the
	// other transaction has closed the cycle. The other one checks only
	// after 60 s, so the invitation is the victim even on a busy machine.
	store, err := sqlstore.Open(ctx, testdb.DSN(t, sqlstore.DialectPostgres)+"&deadlock_timeout=5s")
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	_, err = store.Migrate(ctx)
	require.NoError(t, err)
	owner := createUser(t, store, "owner@example.com")
	account := createAccount(t, store, owner, "Deadlock")
	stale := invite(t, store, account, owner, "stale@example.com", "stale-hash", time.Now().Add(-time.Hour))

	// The other transaction locks the account, as a role change does. The
	// invitation then deletes the stale member and waits for the account,
	// and the other transaction's update of that member closes the cycle.
	other, err := store.DB().BeginTx(ctx, nil)
	require.NoError(t, err)
	defer other.Rollback()
	_, err = other.ExecContext(ctx, `SET LOCAL deadlock_timeout = '60s'`)
	require.NoError(t, err)
	_, err = other.ExecContext(ctx, `SELECT account_id FROM accounts WHERE account_id = $1 FOR UPDATE`, account.AccountID)
	require.NoError(t, err)

	m := &datapusher.Member{AccountID: account.AccountID, Email: "stale@example.com", RoleID: datapusher.RoleIDNormalUser}
	done := make(chan error, 1)
	go func() {
		_, err := store.CreateMember(ctx, m, owner.ID,
			&sqlstore.Invitation{TokenHash: "new-hash", ExpiresAt: time.Now().Add(time.Hour)})
		done <- err
	}()
	require.Eventually(t, func() bool {
		var waiting bool
		err := store.DB().QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO account_members%')`).Scan(&waiting)
		return err == nil && waiting
	}, 10*time.Second, 10*time.Millisecond, "the invitation never waited for the account")
	// Had the invitation's check run before the cycle closed, this update
	// would wait for the other transaction's own check: give up before it.
	updateCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = other.ExecContext(updateCtx, `UPDATE account_members SET role_id = 2 WHERE id = $1`, stale.ID)
	require.NoError(t, err, "the invitation, whose deadlock check runs first, is the deadlock's victim")
	require.NoError(t, other.Rollback())

	require.NoError(t, <-done)
	require.NotEqual(t, stale.UserID, m.UserID)
	var count int
	require.NoError(t, store.DB().QueryRowContext(ctx, `SELECT count(*) FROM invitations WHERE user_id = $1`,
		m.UserID).Scan(&count))
	require.Equal(t, 1, count, "the new user's invitation")
}
