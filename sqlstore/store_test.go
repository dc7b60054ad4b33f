package sqlstore_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/internal/testdb"
	"github.com/datapusher/datapusher/sqlstore"
)

// forEachDialect runs fn as a subtest on a fresh store of every dialect.
func forEachDialect(t *testing.T, fn func(t *testing.T, store *sqlstore.Store)) {
	t.Helper()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			fn(t, testdb.Open(t, dialect))
		})
	}
}

func createUser(t *testing.T, store *sqlstore.Store, email string) *datapusher.User {
	t.Helper()
	u := &datapusher.User{Email: email, PasswordHash: "hash"}
	require.NoError(t, store.CreateUser(context.Background(), u))
	return u
}

func createAccount(t *testing.T, store *sqlstore.Store, owner *datapusher.User, name string) *datapusher.Account {
	t.Helper()
	a := &datapusher.Account{AccountName: name}
	require.NoError(t, store.CreateAccount(context.Background(), a, "hash-"+name+"-"+owner.ID, owner.ID))
	return a
}

func createDestination(t *testing.T, store *sqlstore.Store, account *datapusher.Account, method string) *datapusher.Destination {
	t.Helper()
	d := &datapusher.Destination{
		AccountID: account.AccountID, URL: "https://example.test/hook", HTTPMethod: method,
		Headers: map[string]string{"X-Test": "1"}, SigningSecret: "whsec_x", Enabled: true,
	}
	require.NoError(t, store.CreateDestination(context.Background(), d, *account.CreatedBy))
	return d
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()

		applied, err := store.Migrate(ctx)
		require.NoError(t, err)
		require.Empty(t, applied, "a second run applies nothing")

		pending, err := store.PendingMigrations(ctx)
		require.NoError(t, err)
		require.Zero(t, pending)

		roles, err := store.Roles(ctx)
		require.NoError(t, err)
		require.Len(t, roles, 2)
		require.Equal(t, datapusher.RoleAdmin, roles[0].RoleName)
		require.Equal(t, datapusher.RoleNormalUser, roles[1].RoleName)
	})
}

func TestMigrateFromManyProcessesAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testdb.DSN(t, sqlstore.DialectPostgres)

	// Each store stands for a process of its own, with its own connections,
	// and all start migrating one empty database together. The first has a
	// pool of one connection, which the lock must not take from it.
	const processes = 4
	stores := make([]*sqlstore.Store, processes)
	for i := range stores {
		storeDSN := dsn
		if i == 0 {
			storeDSN = withParam(t, dsn, "pool_max_conns", "1")
		}
		store, err := sqlstore.Open(ctx, storeDSN)
		require.NoError(t, err)
		t.Cleanup(func() { store.Close() })
		stores[i] = store
	}
	applied := make([][]string, processes)
	errs := make([]error, processes)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, store := range stores {
		wg.Go(func() {
			<-start
			applied[i], errs[i] = store.Migrate(ctx)
		})
	}
	close(start)
	wg.Wait()

	var all []string
	for i := range stores {
		require.NoError(t, errs[i], "process %d", i)
		all = append(all, applied[i]...)
	}
	migrations, err := stores[0].Migrations()
	require.NoError(t, err)
	require.Len(t, all, len(migrations)+1, "each migration and the job queue's applied once: %v", all)
}

func TestUsers(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		u := createUser(t, store, "Alice@Example.com")
		require.Equal(t, "alice@example.com", u.Email)

		t.Run("RejectsDuplicateEmail", func(t *testing.T) {
			err := store.CreateUser(ctx, &datapusher.User{Email: "ALICE@example.com"})
			require.Equal(t, datapusher.EINVALID, datapusher.ErrorCode(err))
		})
		t.Run("FindsByEmailIgnoringCase", func(t *testing.T) {
			got, err := store.UserByEmail(ctx, "alice@EXAMPLE.com")
			require.NoError(t, err)
			require.Equal(t, u.ID, got.ID)
			require.Equal(t, "hash", got.PasswordHash)
		})
		t.Run("UnknownIDIsNotFound", func(t *testing.T) {
			_, err := store.UserByID(ctx, "not-a-uuid")
			require.Equal(t, datapusher.ENOTFOUND, datapusher.ErrorCode(err))
		})
		t.Run("RefreshTokenRevocation", func(t *testing.T) {
			require.NoError(t, store.CreateRefreshToken(ctx, "jti-1", u.ID, time.Now().Add(time.Hour)))
			active, err := store.RefreshTokenActive(ctx, "jti-1", u.ID)
			require.NoError(t, err)
			require.True(t, active)

			revoked, err := store.RevokeRefreshToken(ctx, "jti-1", u.ID)
			require.NoError(t, err)
			require.True(t, revoked)
			active, err = store.RefreshTokenActive(ctx, "jti-1", u.ID)
			require.NoError(t, err)
			require.False(t, active)

			revoked, err = store.RevokeRefreshToken(ctx, "jti-1", u.ID)
			require.NoError(t, err)
			require.False(t, revoked, "a token is revoked once")
		})
		t.Run("ExpiredRefreshTokenIsInactive", func(t *testing.T) {
			require.NoError(t, store.CreateRefreshToken(ctx, "jti-old", u.ID, time.Now().Add(-time.Second)))
			active, err := store.RefreshTokenActive(ctx, "jti-old", u.ID)
			require.NoError(t, err)
			require.False(t, active)
		})
	})
}

func TestAccounts(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		owner := createUser(t, store, "owner@example.com")
		other := createUser(t, store, "other@example.com")
		account := createAccount(t, store, owner, "Acme")

		t.Run("CreatorIsAdmin", func(t *testing.T) {
			role, err := store.MemberRole(ctx, account.AccountID, owner.ID)
			require.NoError(t, err)
			require.Equal(t, datapusher.RoleIDAdmin, role)
			role, err = store.MemberRole(ctx, account.AccountID, other.ID)
			require.NoError(t, err)
			require.Zero(t, role)
		})
		t.Run("ListIsLimitedToMembers", func(t *testing.T) {
			accounts, count, err := store.Accounts(ctx, datapusher.AccountFilter{VisibleTo: other.ID})
			require.NoError(t, err)
			require.Zero(t, count)
			require.Empty(t, accounts)

			accounts, count, err = store.Accounts(ctx, datapusher.AccountFilter{VisibleTo: owner.ID})
			require.NoError(t, err)
			require.Equal(t, 1, count)
			require.Equal(t, account.AccountID, accounts[0].AccountID)
		})
		t.Run("SearchIgnoresCaseAndWildcards", func(t *testing.T) {
			for term, want := range map[string]int{"acm": 1, "ACME": 1, "%": 0, "_cme": 0, "zzz": 0} {
				_, count, err := store.Accounts(ctx, datapusher.AccountFilter{Search: &term})
				require.NoError(t, err)
				require.Equal(t, want, count, "search %q", term)
			}
		})
		t.Run("EmailIsUnique", func(t *testing.T) {
			email := "billing@acme.test"
			a := &datapusher.Account{AccountName: "One", Email: &email}
			require.NoError(t, store.CreateAccount(ctx, a, "hash-one", owner.ID))
			b := &datapusher.Account{AccountName: "Two", Email: &email}
			err := store.CreateAccount(ctx, b, "hash-two", owner.ID)
			require.Equal(t, datapusher.EINVALID, datapusher.ErrorCode(err))
		})
		t.Run("TokenLookupAndRotation", func(t *testing.T) {
			a := createAccount(t, store, owner, "Rotating")
			current := "hash-Rotating-" + owner.ID
			got, _, err := store.AccountByTokenHash(ctx, current)
			require.NoError(t, err)
			require.Equal(t, a.AccountID, got.AccountID)

			require.NoError(t, store.RotateAccountToken(ctx, a.AccountID, "new-hash", time.Hour, owner.ID))
			_, _, err = store.AccountByTokenHash(ctx, current)
			require.NoError(t, err, "the old token works during the grace period")
			_, _, err = store.AccountByTokenHash(ctx, "new-hash")
			require.NoError(t, err)

			require.NoError(t, store.RotateAccountToken(ctx, a.AccountID, "newer-hash", 0, owner.ID))
			_, _, err = store.AccountByTokenHash(ctx, "new-hash")
			require.Equal(t, datapusher.EUNAUTHORIZED, datapusher.ErrorCode(err), "no grace period")
			_, _, err = store.AccountByTokenHash(ctx, current)
			require.Equal(t, datapusher.EUNAUTHORIZED, datapusher.ErrorCode(err))
		})
		t.Run("DeleteCascades", func(t *testing.T) {
			a := createAccount(t, store, owner, "Doomed")
			d := createDestination(t, store, a, "POST")
			event := &sqlstore.NewEvent{
				Event:        &datapusher.Event{AccountID: a.AccountID, EventID: "e1", Body: json.RawMessage(`{"a":1}`)},
				Destinations: []*datapusher.Destination{d},
			}
			require.NoError(t, store.InsertEvents(ctx, []*sqlstore.NewEvent{event}, nil))

			require.NoError(t, store.DeleteAccount(ctx, a.AccountID))
			_, err := store.Destination(ctx, d.ID)
			require.Equal(t, datapusher.ENOTFOUND, datapusher.ErrorCode(err))
			_, err = store.Log(ctx, event.Logs[0].ID)
			require.Equal(t, datapusher.ENOTFOUND, datapusher.ErrorCode(err))
			err = store.DeleteAccount(ctx, a.AccountID)
			require.Equal(t, datapusher.ENOTFOUND, datapusher.ErrorCode(err))
		})
	})
}

func TestMembers(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		owner := createUser(t, store, "owner@example.com")
		account := createAccount(t, store, owner, "Team")
		members, _, err := store.Members(ctx, datapusher.MemberFilter{AccountID: &account.AccountID})
		require.NoError(t, err)
		require.Len(t, members, 1)
		ownerMembership := members[0]

		t.Run("LastAdminCannotBeDemotedOrRemoved", func(t *testing.T) {
			_, err := store.UpdateMemberRole(ctx, ownerMembership.ID, datapusher.RoleIDNormalUser, owner.ID)
			require.ErrorIs(t, err, sqlstore.ErrLastAdmin)
			require.ErrorIs(t, store.DeleteMember(ctx, ownerMembership.ID), sqlstore.ErrLastAdmin)
		})
		t.Run("AddByEmailCreatesUser", func(t *testing.T) {
			m := &datapusher.Member{AccountID: account.AccountID, Email: "New@Example.com", RoleID: datapusher.RoleIDNormalUser}
			created, err := store.CreateMember(ctx, m, owner.ID,
				&sqlstore.Invitation{TokenHash: "new-member-hash", ExpiresAt: time.Now().Add(time.Hour)})
			require.NoError(t, err)
			require.True(t, created)
			require.Equal(t, "new@example.com", m.Email)
			u, err := store.UserByEmail(ctx, "new@example.com")
			require.NoError(t, err)
			require.False(t, u.HasPassword())

			_, err = store.CreateMember(ctx, &datapusher.Member{AccountID: account.AccountID, UserID: u.ID,
				RoleID: datapusher.RoleIDAdmin}, owner.ID, nil)
			require.Equal(t, datapusher.EINVALID, datapusher.ErrorCode(err), "already a member")
		})
		t.Run("SecondAdminAllowsDemotion", func(t *testing.T) {
			second := createUser(t, store, "second@example.com")
			m := &datapusher.Member{AccountID: account.AccountID, UserID: second.ID, RoleID: datapusher.RoleIDAdmin}
			_, err := store.CreateMember(ctx, m, owner.ID, nil)
			require.NoError(t, err)

			updated, err := store.UpdateMemberRole(ctx, ownerMembership.ID, datapusher.RoleIDNormalUser, owner.ID)
			require.NoError(t, err)
			require.Equal(t, datapusher.RoleIDNormalUser, updated.RoleID)
			require.ErrorIs(t, store.DeleteMember(ctx, m.ID), sqlstore.ErrLastAdmin)
		})
		t.Run("ConcurrentDemotionsKeepOneAdmin", func(t *testing.T) {
			a := createAccount(t, store, owner, "Race")
			second := createUser(t, store, "race2@example.com")
			_, err := store.CreateMember(ctx, &datapusher.Member{AccountID: a.AccountID, UserID: second.ID,
				RoleID: datapusher.RoleIDAdmin}, owner.ID, nil)
			require.NoError(t, err)
			admins, _, err := store.Members(ctx, datapusher.MemberFilter{AccountID: &a.AccountID})
			require.NoError(t, err)
			require.Len(t, admins, 2)

			var wg sync.WaitGroup
			errs := make([]error, len(admins))
			for i, m := range admins {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = store.UpdateMemberRole(ctx, m.ID, datapusher.RoleIDNormalUser, owner.ID)
				}()
			}
			wg.Wait()
			roleID := datapusher.RoleIDAdmin
			_, count, err := store.Members(ctx, datapusher.MemberFilter{AccountID: &a.AccountID, RoleID: &roleID})
			require.NoError(t, err)
			require.Equal(t, 1, count, "errors: %v", errs)
		})
		t.Run("InvitationWorksOnce", func(t *testing.T) {
			invited := &datapusher.User{Email: "invited@example.com"}
			require.NoError(t, store.CreateUser(ctx, invited))
			require.NoError(t, store.CreateInvitation(ctx, "invite-hash", invited.ID, account.AccountID, time.Now().Add(time.Hour)))
			require.NoError(t, store.CreateInvitation(ctx, "expired-hash", invited.ID, account.AccountID, time.Now().Add(-time.Hour)))

			u, err := store.AcceptInvitation(ctx, "invite-hash", "new-password-hash")
			require.NoError(t, err)
			require.Equal(t, "new-password-hash", u.PasswordHash)
			_, err = store.AcceptInvitation(ctx, "invite-hash", "again")
			require.Equal(t, datapusher.EINVALID, datapusher.ErrorCode(err))
			_, err = store.AcceptInvitation(ctx, "expired-hash", "again")
			require.Equal(t, datapusher.EINVALID, datapusher.ErrorCode(err))
		})
	})
}

func TestEventsAndLogs(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		owner := createUser(t, store, "owner@example.com")
		account := createAccount(t, store, owner, "Events")
		get := createDestination(t, store, account, "GET")
		post := createDestination(t, store, account, "POST")
		destinations := []*datapusher.Destination{get, post}

		body := json.RawMessage("{ \"b\": 2,\n \"a\": [1, 2] }")
		first := &sqlstore.NewEvent{
			Event:        &datapusher.Event{AccountID: account.AccountID, EventID: "evt-1", Body: body},
			Destinations: destinations,
		}
		var enqueued int
		enqueue := func(ctx context.Context, tx *sql.Tx, logs []*datapusher.DeliveryLog) error {
			enqueued += len(logs)
			return nil
		}
		require.NoError(t, store.InsertEvents(ctx, []*sqlstore.NewEvent{first}, enqueue))
		require.Len(t, first.Logs, 2)
		require.Equal(t, 2, enqueued)

		t.Run("BodyIsKeptByteForByte", func(t *testing.T) {
			l, err := store.Log(ctx, first.Logs[1].ID)
			require.NoError(t, err)
			require.Equal(t, string(body), string(l.ReceivedData))
			require.Equal(t, datapusher.StatusPending, l.Status)
			require.Nil(t, l.ProcessedTimestamp)
		})
		t.Run("DuplicateEventIDIsSkipped", func(t *testing.T) {
			again := &sqlstore.NewEvent{
				Event:        &datapusher.Event{AccountID: account.AccountID, EventID: "evt-1", Body: body},
				Destinations: destinations,
			}
			enqueued = 0
			require.NoError(t, store.InsertEvents(ctx, []*sqlstore.NewEvent{again}, enqueue))
			require.True(t, again.Duplicate)
			require.Empty(t, again.Logs)
			require.Zero(t, enqueued)
		})
		t.Run("ManyEventsInOneCall", func(t *testing.T) {
			// 300 events span several multi-row statements; one event id
			// appears twice in the call and one was stored before.
			other := createAccount(t, store, owner, "Many events")
			destinations := []*datapusher.Destination{createDestination(t, store, other, "POST"), createDestination(t, store, other, "PUT")}
			stored := &sqlstore.NewEvent{
				Event:        &datapusher.Event{AccountID: other.AccountID, EventID: "evt-1", Body: body},
				Destinations: destinations,
			}
			require.NoError(t, store.InsertEvents(ctx, []*sqlstore.NewEvent{stored}, nil))
			require.False(t, stored.Duplicate)
			var items []*sqlstore.NewEvent
			for i := range 300 {
				id := fmt.Sprintf("many-%03d", i)
				switch i {
				case 150:
					id = "many-007"
				case 299:
					id = "evt-1"
				}
				items = append(items, &sqlstore.NewEvent{
					Event:        &datapusher.Event{AccountID: other.AccountID, EventID: id, Body: body, RequestID: id},
					Destinations: destinations,
				})
			}
			enqueued = 0
			require.NoError(t, store.InsertEvents(ctx, items, enqueue))
			for i, item := range items {
				if i == 150 || i == 299 {
					require.True(t, item.Duplicate, "event %d", i)
					require.Empty(t, item.Logs)
					continue
				}
				require.False(t, item.Duplicate, "event %d", i)
				require.Len(t, item.Logs, 2)
			}
			require.Equal(t, 2*298, enqueued)

			eventID := "many-123"
			page, err := store.Logs(ctx, datapusher.LogFilter{EventID: &eventID, AccountID: &other.AccountID})
			require.NoError(t, err)
			require.Len(t, page.Logs, 2)
			for _, l := range page.Logs {
				require.Equal(t, "many-123", l.RequestID)
				require.Equal(t, string(body), string(l.ReceivedData))
			}
		})
		t.Run("EnqueueFailureRollsBack", func(t *testing.T) {
			item := &sqlstore.NewEvent{
				Event:        &datapusher.Event{AccountID: account.AccountID, EventID: "evt-rollback", Body: body},
				Destinations: destinations,
			}
			err := store.InsertEvents(ctx, []*sqlstore.NewEvent{item}, func(context.Context, *sql.Tx, []*datapusher.DeliveryLog) error {
				return fmt.Errorf("queue down")
			})
			require.Error(t, err)
			eventID := "evt-rollback"
			page, err := store.Logs(ctx, datapusher.LogFilter{EventID: &eventID})
			require.NoError(t, err)
			require.Empty(t, page.Logs)
		})
		t.Run("RecordAttemptFinal", func(t *testing.T) {
			code := 200
			err := store.RecordAttempt(ctx, first.Logs[0].ID, sqlstore.AttemptOutcome{
				Attempt: &datapusher.Attempt{StartedAt: time.Now(), DurationMS: 5, RequestURL: "https://example.test/hook?a=1",
					ResponseStatus: &code, ResponseBody: "ok"},
				Status: datapusher.StatusSuccess, Final: true,
			})
			require.NoError(t, err)
			l, err := store.Log(ctx, first.Logs[0].ID)
			require.NoError(t, err)
			require.Equal(t, datapusher.StatusSuccess, l.Status)
			require.NotNil(t, l.ProcessedTimestamp)
			require.Equal(t, 200, *l.ResponseStatusCode)
			require.Equal(t, 1, l.Attempts)

			attempts, err := store.Attempts(ctx, l.ID)
			require.NoError(t, err)
			require.Len(t, attempts, 1)
			require.Equal(t, 1, attempts[0].Number)
			require.Equal(t, "ok", attempts[0].ResponseBody)
		})
		t.Run("Filters", func(t *testing.T) {
			status := datapusher.StatusSuccess
			page, err := store.Logs(ctx, datapusher.LogFilter{Status: &status})
			require.NoError(t, err)
			require.Len(t, page.Logs, 1)
			page, err = store.Logs(ctx, datapusher.LogFilter{DestinationID: &post.ID})
			require.NoError(t, err)
			require.Len(t, page.Logs, 1)
			require.Equal(t, post.ID, page.Logs[0].DestinationID)
			outsider := createUser(t, store, "outsider@example.com")
			page, err = store.Logs(ctx, datapusher.LogFilter{VisibleTo: outsider.ID})
			require.NoError(t, err)
			require.Empty(t, page.Logs)
		})
	})
}

func TestLogCursorPagination(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		owner := createUser(t, store, "owner@example.com")
		account := createAccount(t, store, owner, "Pages")
		d := createDestination(t, store, account, "POST")

		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		var events []*sqlstore.NewEvent
		for i := range 7 {
			events = append(events, &sqlstore.NewEvent{
				Event: &datapusher.Event{AccountID: account.AccountID, EventID: fmt.Sprintf("e%d", i),
					Body: json.RawMessage(`{}`), ReceivedAt: base.Add(time.Duration(i%3) * time.Minute)},
				Destinations: []*datapusher.Destination{d},
			})
		}
		require.NoError(t, store.InsertEvents(ctx, events, nil))

		for _, ordering := range []string{"-received_timestamp", "received_timestamp", "processed_timestamp"} {
			t.Run(ordering, func(t *testing.T) {
				var all []string
				var cursor *datapusher.LogCursor
				var pages []*sqlstore.LogPage
				for {
					page, err := store.Logs(ctx, datapusher.LogFilter{Ordering: ordering, Limit: 3, Cursor: cursor})
					require.NoError(t, err)
					pages = append(pages, page)
					for _, l := range page.Logs {
						all = append(all, l.ID)
					}
					if page.Next == nil {
						break
					}
					encoded := sqlstore.EncodeCursor(page.Next)
					cursor, err = sqlstore.DecodeCursor(encoded)
					require.NoError(t, err)
				}
				require.Len(t, all, 7)
				require.Len(t, pages, 3)
				seen := map[string]bool{}
				for _, id := range all {
					require.False(t, seen[id], "log %s appears twice", id)
					seen[id] = true
				}

				// Going back from the last page returns the middle page.
				back, err := store.Logs(ctx, datapusher.LogFilter{Ordering: ordering, Limit: 3, Cursor: pages[2].Previous})
				require.NoError(t, err)
				require.Equal(t, ids(pages[1].Logs), ids(back.Logs))
				require.NotNil(t, back.Next)
				require.NotNil(t, back.Previous)
			})
		}
		t.Run("RejectsInvalidCursor", func(t *testing.T) {
			id := "0190f2b4-0000-7000-8000-000000000000"
			beyondYear9999 := base64.RawURLEncoding.EncodeToString(
				[]byte(`{"t":"9999-12-31T23:59:59-14:00","i":"` + id + `"}`))
			beforeYear1 := base64.RawURLEncoding.EncodeToString(
				[]byte(`{"t":"0001-01-01T00:00:00+01:00","i":"` + id + `"}`))
			for _, text := range []string{"", "!!", "e30", "eyJpIjoieCJ9", beyondYear9999, beforeYear1} {
				_, err := sqlstore.DecodeCursor(text)
				require.Error(t, err, "cursor %q", text)
			}
			inRange := base64.RawURLEncoding.EncodeToString([]byte(`{"t":"9999-12-31T23:59:59Z","i":"` + id + `"}`))
			_, err := sqlstore.DecodeCursor(inRange)
			require.NoError(t, err)
		})
	})
}

func ids(logs []*datapusher.DeliveryLog) []string {
	var out []string
	for _, l := range logs {
		out = append(out, l.ID)
	}
	return out
}

func TestReplay(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		owner := createUser(t, store, "owner@example.com")
		account := createAccount(t, store, owner, "Replay")
		d := createDestination(t, store, account, "POST")
		other := createDestination(t, store, account, "POST")

		base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		var events []*sqlstore.NewEvent
		for i := range 4 {
			events = append(events, &sqlstore.NewEvent{
				Event: &datapusher.Event{AccountID: account.AccountID, EventID: fmt.Sprintf("r%d", i),
					Body: json.RawMessage(`{}`), ReceivedAt: base.Add(time.Duration(i) * time.Hour)},
				Destinations: []*datapusher.Destination{d, other},
			})
		}
		require.NoError(t, store.InsertEvents(ctx, events, nil))
		fail := func(log *datapusher.DeliveryLog) {
			require.NoError(t, store.RecordAttempt(ctx, log.ID, sqlstore.AttemptOutcome{
				Attempt: &datapusher.Attempt{StartedAt: base}, Status: datapusher.StatusFailed, Final: true,
			}))
		}
		for _, e := range events {
			fail(e.Logs[0])
		}
		fail(events[0].Logs[1])

		t.Run("RequeueLogRaisesGeneration", func(t *testing.T) {
			var queued []*datapusher.DeliveryLog
			log, err := store.RequeueLog(ctx, events[0].Logs[1].ID, func(_ context.Context, _ *sql.Tx, logs []*datapusher.DeliveryLog) error {
				queued = logs
				return nil
			})
			require.NoError(t, err)
			require.Equal(t, datapusher.StatusPending, log.Status)
			require.Nil(t, log.ProcessedTimestamp)
			require.Equal(t, 1, log.Generation)
			require.Equal(t, 1, log.Attempts, "earlier attempts are liveDestination")
			require.Len(t, queued, 1)
			require.Equal(t, 1, queued[0].Generation)

			_, err = store.RequeueLog(ctx, "not-a-log", nil)
			require.Equal(t, datapusher.ENOTFOUND, datapusher.ErrorCode(err))
		})
		t.Run("RecoverQueuesFailedLogsInWindow", func(t *testing.T) {
			until := base.Add(3 * time.Hour)
			var queued []*datapusher.DeliveryLog
			count, err := store.RecoverDestination(ctx, d.ID, base.Add(time.Hour), &until,
				func(_ context.Context, _ *sql.Tx, logs []*datapusher.DeliveryLog) error {
					queued = logs
					return nil
				})
			require.NoError(t, err)
			require.Equal(t, 2, count, "r1 and r2 are in [since, until)")
			require.Len(t, queued, 2)
			require.Equal(t, "r1", queued[0].EventID)
			require.Equal(t, "r2", queued[1].EventID)

			count, err = store.RecoverDestination(ctx, d.ID, base, nil, nil)
			require.NoError(t, err)
			require.Equal(t, 2, count, "r0 and r3 are still failed")
			count, err = store.RecoverDestination(ctx, d.ID, base, nil, nil)
			require.NoError(t, err)
			require.Zero(t, count)
		})
		t.Run("EnqueueFailureRollsBack", func(t *testing.T) {
			log := events[1].Logs[1]
			fail(log)
			_, err := store.RecoverDestination(ctx, other.ID, base, nil, func(context.Context, *sql.Tx, []*datapusher.DeliveryLog) error {
				return fmt.Errorf("queue down")
			})
			require.Error(t, err)
			got, err := store.Log(ctx, log.ID)
			require.NoError(t, err)
			require.Equal(t, datapusher.StatusFailed, got.Status)
		})
	})
}

func TestConcurrentDeletes(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		owner := createUser(t, store, "owner@example.com")
		account := createAccount(t, store, owner, "Deleting")
		liveDestination := createDestination(t, store, account, "POST")
		deletedDestination := createDestination(t, store, account, "POST")
		require.NoError(t, store.DeleteDestination(ctx, deletedDestination.ID))

		t.Run("DeletedDestinationIsSkipped", func(t *testing.T) {
			item := &sqlstore.NewEvent{
				Event:        &datapusher.Event{AccountID: account.AccountID, EventID: "after-delete", Body: json.RawMessage(`{}`)},
				Destinations: []*datapusher.Destination{liveDestination, deletedDestination},
			}
			require.NoError(t, store.InsertEvents(ctx, []*sqlstore.NewEvent{item}, nil))
			require.Len(t, item.Logs, 1)
			require.Equal(t, liveDestination.ID, item.Logs[0].DestinationID)
		})
		t.Run("DeletedAccountIsUnauthenticated", func(t *testing.T) {
			doomed := createAccount(t, store, owner, "Doomed")
			require.NoError(t, store.DeleteAccount(ctx, doomed.AccountID))
			item := &sqlstore.NewEvent{
				Event: &datapusher.Event{AccountID: doomed.AccountID, EventID: "late", Body: json.RawMessage(`{}`)},
			}
			err := store.InsertEvents(ctx, []*sqlstore.NewEvent{item}, nil)
			require.Equal(t, datapusher.EUNAUTHORIZED, datapusher.ErrorCode(err))
		})
		t.Run("UpperCaseIDIsNotFound", func(t *testing.T) {
			_, err := store.Account(ctx, strings.ToUpper(account.AccountID))
			require.Equal(t, datapusher.ENOTFOUND, datapusher.ErrorCode(err))
			_, err = store.Destination(ctx, strings.ToUpper(liveDestination.ID))
			require.Equal(t, datapusher.ENOTFOUND, datapusher.ErrorCode(err))
		})
	})
}

func TestInvitationSetsOnlyFirstPassword(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		owner := createUser(t, store, "owner@example.com")
		account := createAccount(t, store, owner, "Invites")
		invited := &datapusher.User{Email: "invited@example.com"}
		require.NoError(t, store.CreateUser(ctx, invited))
		expires := time.Now().Add(time.Hour)
		require.NoError(t, store.CreateInvitation(ctx, "first", invited.ID, account.AccountID, expires))
		require.NoError(t, store.CreateInvitation(ctx, "second", invited.ID, account.AccountID, expires))

		_, err := store.AcceptInvitation(ctx, "first", "password-1")
		require.NoError(t, err)
		_, err = store.AcceptInvitation(ctx, "second", "password-2")
		require.Equal(t, datapusher.EINVALID, datapusher.ErrorCode(err), "other invitations are used up")

		require.NoError(t, store.CreateInvitation(ctx, "third", invited.ID, account.AccountID, expires))
		_, err = store.AcceptInvitation(ctx, "third", "password-3")
		require.Equal(t, datapusher.EINVALID, datapusher.ErrorCode(err), "a user with a password cannot be reset by invitation")
		u, err := store.UserByID(ctx, invited.ID)
		require.NoError(t, err)
		require.Equal(t, "password-1", u.PasswordHash)
	})
}

func TestRecordAttemptsTogether(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		owner := createUser(t, store, "owner@example.com")
		account := createAccount(t, store, owner, "Attempts")
		destinations := []*datapusher.Destination{createDestination(t, store, account, "POST")}
		var logs []*datapusher.DeliveryLog
		for i := range 4 {
			item := &sqlstore.NewEvent{
				Event:        &datapusher.Event{AccountID: account.AccountID, EventID: fmt.Sprint("together-", i), Body: []byte(`{}`)},
				Destinations: destinations,
			}
			require.NoError(t, store.InsertEvents(ctx, []*sqlstore.NewEvent{item}, nil))
			logs = append(logs, item.Logs[0])
		}
		code := 503
		outcome := func(status string, final, newGeneration bool) sqlstore.AttemptOutcome {
			return sqlstore.AttemptOutcome{
				Attempt: &datapusher.Attempt{StartedAt: time.Now(), ResponseStatus: &code, ErrorClass: "http_status"},
				Status:  status, Final: final, NewGeneration: newGeneration,
			}
		}
		attempts := []*sqlstore.LogAttempt{
			{LogID: logs[0].ID, Outcome: outcome(datapusher.StatusSuccess, true, false)},
			{LogID: logs[1].ID, Outcome: outcome(datapusher.StatusRetrying, false, true)},
			{LogID: logs[2].ID, Outcome: outcome(datapusher.StatusFailed, true, false), Generation: 3},
			{LogID: "0190f2b4-0000-7000-8000-000000000000", Outcome: outcome(datapusher.StatusFailed, true, false)},
		}
		attempts[2].Outcome.DisableReason = "destination answered 410 Gone"
		require.NoError(t, store.WithTx(ctx, func(tx *sql.Tx) error { return store.RecordAttemptsTx(ctx, tx, attempts) }))

		require.False(t, attempts[0].Superseded)
		require.False(t, attempts[1].Superseded)
		require.True(t, attempts[2].Superseded, "the attempt was made for a generation the log left")
		require.True(t, attempts[3].Superseded, "the log does not exist")
		require.True(t, attempts[0].Stored)
		require.True(t, attempts[1].Stored)
		require.True(t, attempts[2].Stored, "the superseded attempt's request was made")
		require.False(t, attempts[3].Stored)
		require.Equal(t, 1, attempts[1].Generation)

		first, err := store.Log(ctx, logs[0].ID)
		require.NoError(t, err)
		require.Equal(t, datapusher.StatusSuccess, first.Status)
		require.Equal(t, 1, first.Attempts)
		require.NotNil(t, first.ProcessedTimestamp)
		require.Equal(t, 503, *first.ResponseStatusCode)

		second, err := store.Log(ctx, logs[1].ID)
		require.NoError(t, err)
		require.Equal(t, datapusher.StatusRetrying, second.Status)
		require.Nil(t, second.ProcessedTimestamp)
		require.Equal(t, 1, second.Generation)

		// The superseded attempt's request was made: it is counted and
		// kept in the history, and the log's status stays as it was.
		third, err := store.Log(ctx, logs[2].ID)
		require.NoError(t, err)
		require.Equal(t, datapusher.StatusPending, third.Status)
		require.Nil(t, third.ProcessedTimestamp)
		require.Nil(t, third.ResponseStatusCode)
		require.Zero(t, third.Generation)
		require.Equal(t, 1, third.Attempts)
		thirdAttempts, err := store.Attempts(ctx, logs[2].ID)
		require.NoError(t, err)
		require.Len(t, thirdAttempts, 1)
		require.Equal(t, 1, thirdAttempts[0].Number)
		require.Equal(t, 503, *thirdAttempts[0].ResponseStatus)

		// The superseded attempt's response came from the destination, so its
		// 410 Gone disables the destination all the same.
		destination, err := store.Destination(ctx, destinations[0].ID)
		require.NoError(t, err)
		require.False(t, destination.Enabled)
		require.Equal(t, "destination answered 410 Gone", destination.DisabledReason)

		secondAttempts, err := store.Attempts(ctx, logs[1].ID)
		require.NoError(t, err)
		require.Len(t, secondAttempts, 1)
		require.Equal(t, 1, secondAttempts[0].Number)

		// The same log twice in one call gets two numbered attempts.
		again := []*sqlstore.LogAttempt{
			{LogID: logs[3].ID, Outcome: outcome(datapusher.StatusRetrying, false, false)},
			{LogID: logs[3].ID, Outcome: outcome(datapusher.StatusSuccess, true, false)},
		}
		require.NoError(t, store.WithTx(ctx, func(tx *sql.Tx) error { return store.RecordAttemptsTx(ctx, tx, again) }))
		fourth, err := store.Attempts(ctx, logs[3].ID)
		require.NoError(t, err)
		require.Len(t, fourth, 2)
		require.Equal(t, []int{1, 2}, []int{fourth[0].Number, fourth[1].Number})
	})
}

func TestInsertEventsWithManyDestinations(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		owner := createUser(t, store, "owner@example.com")
		account := createAccount(t, store, owner, "Many destinations")
		real := createDestination(t, store, account, "POST")

		// More destination ids than one statement takes parameters on
		// either database, all but one deleted since they were listed.
		destinations := []*datapusher.Destination{real}
		for i := range 70000 {
			destinations = append(destinations, &datapusher.Destination{
				ID: fmt.Sprintf("0190f2b4-0000-7000-8000-%012d", i), AccountID: account.AccountID,
			})
		}
		item := &sqlstore.NewEvent{
			Event:        &datapusher.Event{AccountID: account.AccountID, EventID: "wide", Body: []byte(`{}`)},
			Destinations: destinations,
		}
		require.NoError(t, store.InsertEvents(ctx, []*sqlstore.NewEvent{item}, nil))
		require.Len(t, item.Logs, 1)
		require.Equal(t, real.ID, item.Logs[0].DestinationID)
	})
}

func TestRecordAttemptsSkipsInvalidIDs(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		owner := createUser(t, store, "owner@example.com")
		account := createAccount(t, store, owner, "Invalid ids")
		item := &sqlstore.NewEvent{
			Event:        &datapusher.Event{AccountID: account.AccountID, EventID: "ids", Body: []byte(`{}`)},
			Destinations: []*datapusher.Destination{createDestination(t, store, account, "POST")},
		}
		require.NoError(t, store.InsertEvents(ctx, []*sqlstore.NewEvent{item}, nil))
		log := item.Logs[0]

		attempt := func(id string) *sqlstore.LogAttempt {
			return &sqlstore.LogAttempt{LogID: id, Generation: -1, Outcome: sqlstore.AttemptOutcome{
				Attempt: &datapusher.Attempt{StartedAt: time.Now()}, Status: datapusher.StatusRetrying,
			}}
		}
		attempts := []*sqlstore.LogAttempt{attempt(strings.ToUpper(log.ID)), attempt("not-a-uuid"), attempt(log.ID)}
		require.NoError(t, store.WithTx(ctx, func(tx *sql.Tx) error { return store.RecordAttemptsTx(ctx, tx, attempts) }))
		require.True(t, attempts[0].Superseded, "an upper-case id names no log")
		require.True(t, attempts[1].Superseded)
		require.False(t, attempts[2].Superseded)

		got, err := store.Log(ctx, log.ID)
		require.NoError(t, err)
		require.Equal(t, 1, got.Attempts, "only the canonical id changed the log")
		recorded, err := store.Attempts(ctx, log.ID)
		require.NoError(t, err)
		require.Len(t, recorded, 1)
	})
}

func TestWarmOpensPoolConnections(t *testing.T) {
	t.Parallel()
	store := testdb.Open(t, sqlstore.DialectPostgres)
	before := store.DB().Stats().OpenConnections
	require.NoError(t, store.Warm(context.Background()))
	stats := store.DB().Stats()
	require.Less(t, before, stats.OpenConnections)
	require.Equal(t, stats.MaxOpenConnections, stats.OpenConnections)
	require.Equal(t, stats.OpenConnections, stats.Idle)

	sqlite := testdb.Open(t, sqlstore.DialectSQLite)
	require.NoError(t, sqlite.Warm(context.Background()))
	require.Equal(t, 1, sqlite.DB().Stats().OpenConnections)
}
