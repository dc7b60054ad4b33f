package sqlstore_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher/internal/testdb"
	"github.com/datapusher/datapusher/sqlstore"
)

func TestAccountRetentions(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		owner := createUser(t, store, "owner@example.test")
		global := createAccount(t, store, owner, "Global")
		short := createAccount(t, store, owner, "Short")
		long := createAccount(t, store, owner, "Long")
		seven, year := 7, 365
		require.NoError(t, store.SetAccountRetention(ctx, short.AccountID, &seven))
		require.NoError(t, store.SetAccountRetention(ctx, long.AccountID, &year))

		days, err := store.AccountRetentions(ctx, []string{
			global.AccountID, short.AccountID, long.AccountID, "not-a-uuid", "00000000-0000-0000-0000-000000000000",
		})
		require.NoError(t, err)
		require.Equal(t, map[string]int{short.AccountID: 7, long.AccountID: 365}, days)

		days, err = store.AccountRetentions(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, days)
	})
}

func TestOpenDB(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("sqlite", testdb.DSN(t, sqlstore.DialectSQLite))
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	store := sqlstore.OpenDB(db, sqlstore.DialectSQLite)
	t.Cleanup(func() { store.Close() })

	require.Equal(t, sqlstore.DialectSQLite, store.Dialect())
	require.Same(t, db, store.DB())
	_, err = store.Migrate(context.Background())
	require.NoError(t, err)
	createAccount(t, store, createUser(t, store, "opendb@example.test"), "Opened")

	require.Panics(t, func() { sqlstore.OpenDB(db, "mysql") })
}
