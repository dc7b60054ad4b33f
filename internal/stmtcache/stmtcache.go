// Package stmtcache keeps the prepared statements of each database
// connection for reuse. database/sql prepares, runs and finalizes a
// statement for every query that does not use a *sql.Stmt, and for SQLite,
// which compiles each statement in the calling process, that compiling
// costs more than running small statements. A connection from this package
// prepares each query text once and runs it again from its cache, for the
// store's own queries and the job queue's alike.
package stmtcache

import (
	"container/list"
	"context"
	"database/sql/driver"
	"errors"
	"reflect"
)

// NewConnector returns a connector that opens connections to name with d,
// each keeping up to size prepared statements (least recently used first
// out).
func NewConnector(d driver.Driver, name string, size int) driver.Connector {
	return &connector{driver: d, name: name, size: max(size, 1)}
}

type connector struct {
	driver driver.Driver
	name   string
	size   int
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	var inner driver.Conn
	var err error
	if dc, ok := c.driver.(driver.DriverContext); ok {
		var innerConnector driver.Connector
		if innerConnector, err = dc.OpenConnector(c.name); err != nil {
			return nil, err
		}
		inner, err = innerConnector.Connect(ctx)
	} else {
		inner, err = c.driver.Open(c.name)
	}
	if err != nil {
		return nil, err
	}
	prepare, okPrepare := inner.(driver.ConnPrepareContext)
	begin, okBegin := inner.(driver.ConnBeginTx)
	if !okPrepare || !okBegin {
		inner.Close()
		return nil, errors.New("stmtcache: the driver's connections lack PrepareContext or BeginTx")
	}
	return &conn{
		Conn: inner, prepare: prepare, begin: begin,
		entries: make(map[string]*list.Element), size: c.size,
	}, nil
}

func (c *connector) Driver() driver.Driver { return c.driver }

// conn is one connection with its statement cache. database/sql never uses
// a connection from two goroutines at once, so the cache needs no lock.
type conn struct {
	driver.Conn
	prepare driver.ConnPrepareContext
	begin   driver.ConnBeginTx

	entries map[string]*list.Element // of *entry
	order   list.List                // most recently used first
	size    int
}

type entry struct {
	query string
	stmt  driver.Stmt
	// open counts the result sets still reading from stmt; a statement
	// that is being read is neither evicted nor run again until they close.
	open int
}

// statement returns the cached statement of query, preparing it when it is
// not cached. It returns nil when the cached one is still being read, and
// the caller then runs query without the cache.
func (c *conn) statement(ctx context.Context, query string) (*entry, error) {
	if element, ok := c.entries[query]; ok {
		e := element.Value.(*entry)
		if e.open > 0 {
			return nil, nil
		}
		c.order.MoveToFront(element)
		return e, nil
	}
	stmt, err := c.prepare.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	e := &entry{query: query, stmt: stmt}
	c.entries[query] = c.order.PushFront(e)
	c.evict()
	return e, nil
}

// evict closes the least recently used statements over size that nothing
// reads from.
func (c *conn) evict() {
	for element := c.order.Back(); element != nil && len(c.entries) > c.size; {
		previous := element.Prev()
		if e := element.Value.(*entry); e.open == 0 {
			c.order.Remove(element)
			delete(c.entries, e.query)
			_ = e.stmt.Close()
		}
		element = previous
	}
}

func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, err := c.statement(ctx, query)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return c.execUncached(ctx, query, args)
	}
	exec, ok := e.stmt.(driver.StmtExecContext)
	if !ok {
		return nil, errors.New("stmtcache: the driver's statements lack ExecContext")
	}
	return exec.ExecContext(ctx, args)
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	e, err := c.statement(ctx, query)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return c.queryUncached(ctx, query, args)
	}
	q, ok := e.stmt.(driver.StmtQueryContext)
	if !ok {
		return nil, errors.New("stmtcache: the driver's statements lack QueryContext")
	}
	rows, err := q.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	e.open++
	return &cachedRows{Rows: rows, done: func() {
		e.open--
		c.evict()
	}}, nil
}

func (c *conn) execUncached(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if exec, ok := c.Conn.(driver.ExecerContext); ok {
		return exec.ExecContext(ctx, query, args)
	}
	stmt, err := c.prepare.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer stmt.Close()
	return stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (c *conn) queryUncached(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if q, ok := c.Conn.(driver.QueryerContext); ok {
		return q.QueryContext(ctx, query, args)
	}
	return nil, driver.ErrSkip
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.prepare.PrepareContext(ctx, query)
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.begin.BeginTx(ctx, opts)
}

func (c *conn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *conn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *conn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *conn) CheckNamedValue(value *driver.NamedValue) error {
	if checker, ok := c.Conn.(driver.NamedValueChecker); ok {
		return checker.CheckNamedValue(value)
	}
	return driver.ErrSkip
}

// Close finalizes the cached statements and closes the connection.
func (c *conn) Close() error {
	var errs []error
	for _, element := range c.entries {
		errs = append(errs, element.Value.(*entry).stmt.Close())
	}
	clear(c.entries)
	c.order.Init()
	errs = append(errs, c.Conn.Close())
	return errors.Join(errs...)
}

// cachedRows gives the statement back to the cache when it is closed.
type cachedRows struct {
	driver.Rows
	done func()
}

func (r *cachedRows) Close() error {
	if r.done == nil {
		return nil
	}
	err := r.Rows.Close()
	r.done()
	r.done = nil
	return err
}

func (r *cachedRows) ColumnTypeDatabaseTypeName(index int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(index)
	}
	return ""
}

func (r *cachedRows) ColumnTypeScanType(index int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(index)
	}
	return reflect.TypeFor[any]()
}

func (r *cachedRows) ColumnTypeNullable(index int) (nullable, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(index)
	}
	return false, false
}

func (r *cachedRows) ColumnTypeLength(index int) (length int64, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(index)
	}
	return 0, false
}

func (r *cachedRows) ColumnTypePrecisionScale(index int) (precision, scale int64, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(index)
	}
	return 0, 0, false
}
