package sqlstore_test

import (
	"context"
	"database/sql"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher/internal/testdb"
	"github.com/datapusher/datapusher/sqlstore"
)

// showRandomPageCost returns the random_page_cost of a session of db.
func showRandomPageCost(t *testing.T, db *sql.DB) string {
	t.Helper()
	var value string
	require.NoError(t, db.QueryRowContext(context.Background(), `SHOW random_page_cost`).Scan(&value))
	return value
}

func TestSessionsLowerRandomPageCostUnlessConfigured(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testdb.DSN(t, sqlstore.DialectPostgres)

	// A session that the store did not open shows what the server, database
	// and role set, or "default" when none of them does.
	raw, err := sql.Open("pgx", withParam(t, dsn, "pool_max_conns", ""))
	require.NoError(t, err)
	t.Cleanup(func() { raw.Close() })
	var source string
	require.NoError(t, raw.QueryRowContext(ctx,
		`SELECT source FROM pg_settings WHERE name = 'random_page_cost'`).Scan(&source))
	want := "1.1"
	if source != "default" {
		want = showRandomPageCost(t, raw)
	}

	store, err := sqlstore.Open(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	require.Equal(t, want, showRandomPageCost(t, store.DB()), "random_page_cost set by %s", source)

	// A value in the URL wins.
	configured, err := sqlstore.Open(ctx, withParam(t, dsn, "random_page_cost", "2.5"))
	require.NoError(t, err)
	t.Cleanup(func() { configured.Close() })
	require.Equal(t, "2.5", showRandomPageCost(t, configured.DB()))
}

// withParam returns the PostgreSQL URL dsn with the parameter name set to
// value, or without it when value is empty.
func withParam(t *testing.T, dsn, name, value string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	params := u.Query()
	params.Del(name)
	if value != "" {
		params.Set(name, value)
	}
	u.RawQuery = params.Encode()
	return u.String()
}
