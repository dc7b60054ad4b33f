// Package testdb opens migrated stores on real databases for tests: a SQLite
// file in the test's temporary folder, or a fresh schema on the PostgreSQL
// server named by DATAPUSHER_TEST_DATABASE_URL.
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher/sqlstore"
)

// DefaultPostgresURL is the server the tests use when
// DATAPUSHER_TEST_DATABASE_URL is not set.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Dialects lists the databases every store test runs on.
var Dialects = []string{sqlstore.DialectSQLite, sqlstore.DialectPostgres}

// testPoolSize is how many PostgreSQL connections a store of a test opens
// at most. Tests run in parallel, in two packages at once on two cores.
const testPoolSize = 5

// PostgresURL returns the URL of the PostgreSQL server for tests.
func PostgresURL() string {
	if u := os.Getenv("DATAPUSHER_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// DSN returns a database address for a new, empty database of the dialect:
// a SQLite file path, or a PostgreSQL URL whose search_path is a schema
// created for this test and dropped when it ends. The URL limits each store
// to testPoolSize connections, so that the tests and the processes they
// start stay within the server's max_connections.
func DSN(t testing.TB, dialect string) string {
	t.Helper()
	if dialect == sqlstore.DialectSQLite {
		return filepath.Join(t.TempDir(), "datapusher.db")
	}

	random := make([]byte, 6)
	_, _ = rand.Read(random)
	schema := "test_" + hex.EncodeToString(random)
	admin, err := sql.Open("pgx", PostgresURL())
	require.NoError(t, err)
	t.Cleanup(func() { admin.Close() })
	_, err = admin.Exec(`CREATE SCHEMA ` + schema)
	require.NoError(t, err, "create test schema on %s; is PostgreSQL running?", PostgresURL())
	t.Cleanup(func() { _, _ = admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`) })

	u, err := url.Parse(PostgresURL())
	require.NoError(t, err)
	query := u.Query()
	query.Set("search_path", schema)
	query.Set("pool_max_conns", strconv.Itoa(testPoolSize))
	u.RawQuery = query.Encode()
	return u.String()
}

// Open returns a migrated store on a new, empty database of the dialect.
func Open(t testing.TB, dialect string) *sqlstore.Store {
	t.Helper()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, DSN(t, dialect))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	_, err = store.Migrate(ctx)
	require.NoError(t, err)
	return store
}
