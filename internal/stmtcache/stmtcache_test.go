package stmtcache_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"modernc.org/sqlite"

	"github.com/datapusher/datapusher/internal/stmtcache"
)

// countingDriver counts the statements that SQLite compiles for prepared
// statements.
type countingDriver struct {
	sqlite.Driver
	prepares atomic.Int64
}

func (d *countingDriver) Open(name string) (driver.Conn, error) {
	c, err := d.Driver.Open(name)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, driver: d}, nil
}

type countingConn struct {
	driver.Conn
	driver *countingDriver
}

func (c *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	c.driver.prepares.Add(1)
	return c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func open(t *testing.T, size int) (*sql.DB, *countingDriver) {
	t.Helper()
	d := &countingDriver{}
	name := "file:" + filepath.Join(t.TempDir(), "cache.db") + "?_pragma=journal_mode(WAL)"
	db := sql.OpenDB(stmtcache.NewConnector(d, name, size))
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	_, err := db.Exec(`CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`)
	require.NoError(t, err)
	return db, d
}

func TestRepeatedStatementsCompileOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, d := open(t, 16)
	before := d.prepares.Load()

	for i := range 100 {
		_, err := db.ExecContext(ctx, `INSERT INTO items (id, name) VALUES ($1, $2)`, i, "item")
		require.NoError(t, err)
		var name string
		require.NoError(t, db.QueryRowContext(ctx, `SELECT name FROM items WHERE id = $1`, i).Scan(&name))
		require.Equal(t, "item", name)
	}
	require.Equal(t, int64(2), d.prepares.Load()-before, "one compile per distinct statement")

	// In a transaction too.
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, `INSERT INTO items (id, name) VALUES ($1, $2)`, 1000, "in tx")
	require.NoError(t, err)
	require.NoError(t, tx.Rollback())
	require.Equal(t, int64(2), d.prepares.Load()-before)
	var count int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM items`).Scan(&count))
	require.Equal(t, 100, count, "the rolled back row is gone")
}

func TestSameStatementWhileItsRowsAreOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := open(t, 16)
	for i := range 3 {
		_, err := db.ExecContext(ctx, `INSERT INTO items (id, name) VALUES ($1, $2)`, i, "outer")
		require.NoError(t, err)
	}

	// The outer rows hold the cached statement; the inner query of the same
	// text runs uncached on the same connection.
	query := `SELECT id FROM items WHERE id >= $1 ORDER BY id`
	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, query, 0)
	require.NoError(t, err)
	var outer []int
	for rows.Next() {
		var id int
		require.NoError(t, rows.Scan(&id))
		outer = append(outer, id)
		inner, err := conn.QueryContext(ctx, query, id)
		require.NoError(t, err)
		var got []int
		for inner.Next() {
			var innerID int
			require.NoError(t, inner.Scan(&innerID))
			got = append(got, innerID)
		}
		require.NoError(t, inner.Close())
		require.Len(t, got, 3-id)
	}
	require.NoError(t, rows.Err())
	require.NoError(t, rows.Close())
	require.Equal(t, []int{0, 1, 2}, outer)
}

func TestEvictionKeepsStatementsInUse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, d := open(t, 2)
	_, err := db.ExecContext(ctx, `INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b')`)
	require.NoError(t, err)

	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	reading, err := conn.QueryContext(ctx, `SELECT name FROM items ORDER BY id`)
	require.NoError(t, err)
	require.True(t, reading.Next())

	// More distinct statements than the cache holds, while the first is
	// being read: the others are evicted, the one in use is not.
	for i := range 5 {
		var n int
		require.NoError(t, conn.QueryRowContext(ctx, `SELECT count(*) + `+string(rune('0'+i))+` FROM items`).Scan(&n))
		require.Equal(t, 2+i, n)
	}
	var name string
	require.NoError(t, reading.Scan(&name))
	require.Equal(t, "a", name)
	require.True(t, reading.Next())
	require.NoError(t, reading.Scan(&name))
	require.Equal(t, "b", name)
	require.NoError(t, reading.Close())

	// The evicted statements compile again; the cached one does not.
	before := d.prepares.Load()
	var n int
	require.NoError(t, conn.QueryRowContext(ctx, `SELECT count(*) + 0 FROM items`).Scan(&n))
	require.Equal(t, before+1, d.prepares.Load())
	before = d.prepares.Load()
	require.NoError(t, conn.QueryRowContext(ctx, `SELECT count(*) + 0 FROM items`).Scan(&n))
	require.Equal(t, before, d.prepares.Load())
}

func TestErrorsAndScripts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, d := open(t, 16)

	_, err := db.ExecContext(ctx, `INSERT INTO nowhere VALUES (1)`)
	require.ErrorContains(t, err, "no such table")

	// A constraint error leaves the cached statement usable.
	insert := `INSERT INTO items (id, name) VALUES ($1, $2)`
	_, err = db.ExecContext(ctx, insert, 1, "first")
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, insert, 1, "again")
	require.ErrorContains(t, err, "UNIQUE")
	_, err = db.ExecContext(ctx, insert, 2, "second")
	require.NoError(t, err)

	// A script of several statements runs every statement.
	_, err = db.ExecContext(ctx, `INSERT INTO items (id, name) VALUES (3, 'c'); INSERT INTO items (id, name) VALUES (4, 'd');`)
	require.NoError(t, err)
	var count int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM items`).Scan(&count))
	require.Equal(t, 4, count)

	// A table created after a statement was cached is seen by it.
	lookup := `SELECT count(*) FROM sqlite_master WHERE name = $1`
	require.NoError(t, db.QueryRowContext(ctx, lookup, "later").Scan(&count))
	require.Zero(t, count)
	_, err = db.ExecContext(ctx, `CREATE TABLE later (id INTEGER)`)
	require.NoError(t, err)
	before := d.prepares.Load()
	require.NoError(t, db.QueryRowContext(ctx, lookup, "later").Scan(&count))
	require.Equal(t, 1, count)
	require.Equal(t, before, d.prepares.Load())
}
