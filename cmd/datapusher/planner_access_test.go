package main

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher/sqlstore"
)

// TestStoreOpensWithoutAccessToSettings connects as a role that may not read
// pg_settings: the store opens, and its sessions keep the server's planner
// cost instead of failing to connect.
func TestStoreOpensWithoutAccessToSettings(t *testing.T) {
	t.Parallel()
	pg := startPrivatePostgres(t)
	admin, err := sql.Open("pgx", pg.url())
	require.NoError(t, err)
	t.Cleanup(func() { admin.Close() })
	_, err = admin.Exec(`CREATE ROLE limited LOGIN;
		REVOKE SELECT ON pg_catalog.pg_settings FROM PUBLIC`)
	require.NoError(t, err)

	ctx := context.Background()
	store, err := sqlstore.Open(ctx, strings.Replace(pg.url(), "postgres@", "limited@", 1))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	var cost string
	require.NoError(t, store.DB().QueryRowContext(ctx, `SHOW random_page_cost`).Scan(&cost))
	require.Equal(t, "4", cost)
}
