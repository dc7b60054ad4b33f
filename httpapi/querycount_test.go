package httpapi

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/internal/testdb"
	"github.com/datapusher/datapusher/sqlstore"
)

// countingConnector opens connections of a database/sql driver and counts
// the statements that they run or prepare.
type countingConnector struct {
	driver     driver.Driver
	dsn        string
	statements atomic.Int64
}

func (c *countingConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.driver.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, statements: &c.statements}, nil
}

func (c *countingConnector) Driver() driver.Driver { return c.driver }

// countingConn passes every call to the driver's connection and counts
// statements. It implements the optional interfaces of the SQLite driver's
// connection, so database/sql takes the same paths as without it.
type countingConn struct {
	driver.Conn
	statements *atomic.Int64
}

func (c *countingConn) Prepare(query string) (driver.Stmt, error) {
	c.statements.Add(1)
	return c.Conn.Prepare(query)
}

func (c *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	c.statements.Add(1)
	if p, ok := c.Conn.(driver.ConnPrepareContext); ok {
		return p.PrepareContext(ctx, query)
	}
	return c.Conn.Prepare(query)
}

func (c *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	c.statements.Add(1)
	return e.ExecContext(ctx, query, args)
}

func (c *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	c.statements.Add(1)
	return q.QueryContext(ctx, query, args)
}

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if b, ok := c.Conn.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	return c.Conn.Begin() //nolint:staticcheck // fallback for drivers without BeginTx
}

func (c *countingConn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *countingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *countingConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// openCountingSQLite returns a migrated SQLite store whose statements the
// returned connector counts.
func openCountingSQLite(t *testing.T) (*sqlstore.Store, *countingConnector) {
	t.Helper()
	probe, err := sql.Open("sqlite", "")
	require.NoError(t, err)
	base := probe.Driver()
	require.NoError(t, probe.Close())

	query := url.Values{"_pragma": {"journal_mode(WAL)", "foreign_keys(1)", "busy_timeout(10000)"}}
	query.Set("_txlock", "immediate")
	connector := &countingConnector{driver: base, dsn: "file:" + testdb.DSN(t, sqlstore.DialectSQLite) + "?" + query.Encode()}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(1)
	store := sqlstore.OpenDB(db, sqlstore.DialectSQLite)
	t.Cleanup(func() { store.Close() })
	_, err = store.Migrate(context.Background())
	require.NoError(t, err)
	return store, connector
}

// TestListQueryCount checks that each list endpoint runs the same number of
// SQL statements for a page of 1 row as for a page of 50, so that no list
// loads something per row.
func TestListQueryCount(t *testing.T) {
	t.Parallel()
	store, connector := openCountingSQLite(t)
	fx := newFixture(t, store, Config{})

	// The Normal user is a member of 60 more accounts: the Admin of half of
	// them and a Normal user of the others, so that the destination list
	// shows signing secrets for some rows only. Each account has a
	// destination and a delivery log.
	for i := range 60 {
		var a *datapusher.Account
		if i%2 == 0 {
			a = fx.createAccount(fx.normal, fmt.Sprintf("Owned %d", i))
		} else {
			a = fx.createAccount(fx.admin, fmt.Sprintf("Joined %d", i))
			fx.addMember(a, fx.normal, datapusher.RoleIDNormalUser)
		}
		fx.createEvent(a, "evt", fx.createDestination(a))
	}

	for _, tc := range []struct {
		path       string
		paginated  bool
		countQuery func(resp *response) int
	}{
		{"/api/accounts/", true, func(r *response) int { return len(r.results(t)) }},
		{"/api/destinations/", true, func(r *response) int { return len(r.results(t)) }},
		{"/api/account-members/", true, func(r *response) int { return len(r.results(t)) }},
		{"/api/logs/", true, func(r *response) int { return len(r.results(t)) }},
		{"/api/roles/", false, func(r *response) int { return len(r.list(t)) }},
	} {
		t.Run(tc.path, func(t *testing.T) {
			statements := map[int]int64{}
			for _, size := range []int{1, 50} {
				connector.statements.Store(0)
				resp := fx.do("GET", fmt.Sprintf("%s?page_size=%d", tc.path, size), fx.normal, nil)
				statements[size] = connector.statements.Load()
				require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
				if tc.paginated {
					require.Equal(t, size, tc.countQuery(resp), "rows on the page")
				}
			}
			require.Positive(t, statements[1], "the counting driver sees the statements")
			require.Equal(t, statements[1], statements[50], "statements for page sizes 1 and 50")
		})
	}
}
