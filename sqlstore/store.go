// Package sqlstore stores Data Pusher's data in SQLite or PostgreSQL through
// database/sql. One set of queries serves both databases; the few places
// where they differ go through dialect.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/internal/stmtcache"
)

// Dialect names.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// Store reads and writes Data Pusher's tables.
type Store struct {
	db      *sql.DB
	dialect string

	// listenerPool gives the job queue connections for LISTEN on
	// PostgreSQL, so workers hear of new jobs at once instead of polling.
	listenerPool *pgxpool.Pool

	// Now returns the current time. Tests replace it to control clocks.
	Now func() time.Time
}

// Open connects to the database named by dsn: a postgres:// or postgresql://
// URL selects PostgreSQL, anything else is the path of a SQLite file (its
// folder is created when missing).
func Open(ctx context.Context, dsn string) (*Store, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return openPostgres(ctx, dsn)
	}
	return openSQLite(ctx, dsn)
}

func openPostgres(ctx context.Context, dsn string) (*Store, error) {
	connConfig, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse postgres url: %w", err)
	}
	poolSize, err := takePoolSize(connConfig)
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDB(*connConfig, stdlib.OptionAfterConnect(setPlannerCosts))
	db.SetMaxOpenConns(poolSize)
	db.SetMaxIdleConns(poolSize)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	poolConfig, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("parse postgres url: %w", err)
	}
	poolConfig.MinConns, poolConfig.MaxConns = 0, 2
	listenerPool, err := pgxpool.NewWithConfig(ctx, poolConfig)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres listener pool: %w", err)
	}
	return &Store{db: db, dialect: DialectPostgres, listenerPool: listenerPool, Now: now}, nil
}

// takePoolSize returns the pool_max_conns parameter of a PostgreSQL URL, or
// defaultPostgresPoolSize without one, and removes it from config, because
// PostgreSQL rejects parameters it does not know.
func takePoolSize(config *pgx.ConnConfig) (int, error) {
	for name := range config.RuntimeParams {
		if strings.HasPrefix(name, "pool_") && name != "pool_max_conns" {
			return 0, fmt.Errorf("parse postgres url: %s is not supported; of the pool settings only pool_max_conns is", name)
		}
	}
	value, ok := config.RuntimeParams["pool_max_conns"]
	if !ok {
		return defaultPostgresPoolSize, nil
	}
	delete(config.RuntimeParams, "pool_max_conns")
	size, err := strconv.Atoi(value)
	if err != nil || size < 1 || size > maxPostgresPoolSize {
		return 0, fmt.Errorf("parse postgres url: pool_max_conns %q is not a whole number from 1 to %d",
			value, maxPostgresPoolSize)
	}
	return size, nil
}

func openSQLite(ctx context.Context, path string) (*Store, error) {
	path = strings.TrimPrefix(path, "sqlite://")
	path = strings.TrimPrefix(path, "file:")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if path == "" {
		return nil, errors.New("open sqlite: empty database path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create database folder: %w", err)
	}

	// WAL lets readers run beside the writer. synchronous(FULL) makes every
	// commit durable before the response to the request that caused it is sent.
	// _txlock=immediate takes the write lock at BEGIN, so a transaction
	// never fails half-way with SQLITE_BUSY on upgrade.
	query := url.Values{}
	for _, pragma := range []string{
		"journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)", "busy_timeout(10000)",
	} {
		query.Add("_pragma", pragma)
	}
	query.Set("_txlock", "immediate")
	// Each statement is compiled once per connection and then reused:
	// compiling dominates the cost of the small statements that accepting
	// and delivering events run.
	db := sql.OpenDB(stmtcache.NewConnector(&sqlite.Driver{}, "file:"+path+"?"+query.Encode(), sqliteStatementCache))

	// SQLite allows one writer at a time, and River's SQLite driver expects
	// a single connection so that its own statements never meet SQLITE_BUSY.
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return &Store{db: db, dialect: DialectSQLite, Now: now}, nil
}

// setPlannerCosts lowers random_page_cost to 1.1 for the session, unless
// the server, database, role or connection URL sets it. PostgreSQL's default
// of 4 prices a key lookup as a disk seek. With it, the planner reads every
// row of a young table of delivery logs or events to find the up to 256 that
// a delivery batch names. Data Pusher's hot rows are in memory or on SSD.
//
// An error that the server reports, such as no permission to read
// pg_settings, leaves the server's planner settings in place rather than
// refusing the connection.
func setPlannerCosts(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, `SELECT pg_catalog.set_config('random_page_cost', '1.1', false)
		WHERE (SELECT source FROM pg_catalog.pg_settings WHERE name = 'random_page_cost') = 'default'`)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return nil
	} else if err != nil {
		return fmt.Errorf("set planner costs: %w", err)
	}
	return nil
}

// Bounds of how many connections to PostgreSQL one process opens, besides
// the two that listen for new jobs. The URL parameter pool_max_conns sets it.
const (
	defaultPostgresPoolSize = 20
	maxPostgresPoolSize     = 1000
)

// Warm opens the pool's PostgreSQL connections ahead of use and leaves them
// idle, so the first requests after a start do not each wait for PostgreSQL
// to start a backend. It stops at the first connection that fails to open,
// leaving the rest to open on demand, and does nothing on SQLite, whose one
// connection is already open.
func (s *Store) Warm(ctx context.Context) error {
	if s.dialect != DialectPostgres {
		return nil
	}
	poolSize := s.db.Stats().MaxOpenConnections
	conns := make([]*sql.Conn, 0, poolSize)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for len(conns) < poolSize {
		c, err := s.db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("open postgres connection %d of %d: %w", len(conns)+1, poolSize, err)
		}
		conns = append(conns, c)
	}
	return nil
}

// sqliteStatementCache is how many compiled statements a SQLite connection
// keeps. The store and the job queue run a few dozen distinct statements;
// lists of ids of different lengths each add one.
const sqliteStatementCache = 256

func now() time.Time { return time.Now().UTC() }

// DB returns the underlying connection pool, which the job queue shares.
func (s *Store) DB() *sql.DB { return s.db }

// Dialect returns DialectSQLite or DialectPostgres.
func (s *Store) Dialect() string { return s.dialect }

// Close closes the connection pool.
func (s *Store) Close() error {
	if s.listenerPool != nil {
		s.listenerPool.Close()
	}
	return s.db.Close()
}

// Ping checks that the database responds.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// sqliteTimeLayout is fixed-width, so that SQLite's text comparison orders
// timestamps correctly.
const sqliteTimeLayout = "2006-01-02T15:04:05.000000Z"

// timeArg converts t to the form the database stores.
func (s *Store) timeArg(t time.Time) any {
	if s.dialect == DialectSQLite {
		return t.UTC().Format(sqliteTimeLayout)
	}
	return t.UTC()
}

// typed returns the placeholder of the nth argument in a statement whose
// placeholders all come in argument order. PostgreSQL gets $n, cast to
// pgType unless it is empty, because it cannot infer the types of
// parameters in a VALUES list. SQLite gets "?", which it binds by position
// without looking up a name.
func (s *Store) typed(n int, pgType string) string {
	if s.dialect == DialectSQLite {
		return "?"
	}
	if pgType == "" {
		return fmt.Sprintf("$%d", n)
	}
	return fmt.Sprintf("$%d::%s", n, pgType)
}

// forUpdate returns the row lock clause. SQLite has none: its write lock,
// taken at BEGIN IMMEDIATE, already serialises writers.
func (s *Store) forUpdate() string {
	if s.dialect == DialectPostgres {
		return " FOR UPDATE"
	}
	return ""
}

// WithTx runs fn in a transaction and commits it when fn returns nil, for
// writes that span the store and the job queue.
func (s *Store) WithTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.inTx(ctx, func(tx *sql.Tx) error { return mapError(fn(tx)) })
}

// maxTxAttempts bounds how often a transaction that PostgreSQL aborted to
// break a deadlock or a serialization conflict is run again.
const maxTxAttempts = 3

// inTx runs fn in a transaction and commits it when fn returns nil. A
// transaction aborted by a deadlock or a serialization conflict is run
// again, up to maxTxAttempts times in all, so fn must be safe to repeat.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	var err error
	for range maxTxAttempts {
		err = s.inTxOnce(ctx, fn)
		if !isRetryable(err) {
			return err
		}
	}
	return err
}

// isRetryable reports whether err is a deadlock (40P01) or a serialization
// failure (40001), after which the same transaction may succeed.
func isRetryable(err error) bool {
	var retry *retryTxError
	if errors.As(err, &retry) {
		return true
	}
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// retryTxError marks an error after which the whole transaction may succeed
// when run again.
type retryTxError struct{ err error }

func (e *retryTxError) Error() string { return e.err.Error() }
func (e *retryTxError) Unwrap() error { return e.err }

func (s *Store) inTxOnce(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return mapError(fmt.Errorf("begin transaction: %w", err))
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return mapError(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// dbTime scans a timestamp from either database: PostgreSQL returns a
// time.Time, SQLite the text that timeArg wrote.
type dbTime struct {
	Time  time.Time
	Valid bool
}

var timeLayouts = []string{
	sqliteTimeLayout, time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999", "2006-01-02 15:04:05",
}

func (t *dbTime) Scan(value any) error {
	switch v := value.(type) {
	case nil:
		t.Time, t.Valid = time.Time{}, false
		return nil
	case time.Time:
		t.Time, t.Valid = v.UTC(), true
		return nil
	case []byte:
		return t.Scan(string(v))
	case string:
		for _, layout := range timeLayouts {
			if parsed, err := time.Parse(layout, v); err == nil {
				t.Time, t.Valid = parsed.UTC(), true
				return nil
			}
		}
		return fmt.Errorf("parse timestamp %q", v)
	}
	return fmt.Errorf("scan timestamp from %T", value)
}

func (t dbTime) ptr() *time.Time {
	if !t.Valid {
		return nil
	}
	v := t.Time
	return &v
}

// newID returns a new time-ordered UUID (version 7).
func newID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// validID reports whether id is a UUID. Ids come from URLs and bodies;
// PostgreSQL rejects a malformed uuid with an error, so lookups check first
// and return "not found".
// Only the canonical lower-case form is valid: PostgreSQL would match an
// upper-case id where SQLite would not, and ids are also cache keys.
func validID(id string) bool {
	parsed, err := uuid.Parse(id)
	return err == nil && parsed.String() == id
}

// isForeignKeyViolation reports whether err is a foreign key violation, as
// when a row refers to an account or destination deleted a moment before.
func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23503"
	}
	var liteErr *sqlite.Error
	return errors.As(err, &liteErr) && liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// isUniqueViolation reports whether err is a unique constraint violation,
// and on which constraint or column when the database reports it.
func isUniqueViolation(err error) (bool, string) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return true, pgErr.ConstraintName
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) && (liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE ||
		liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
		return true, liteErr.Error()
	}
	return false, ""
}

// mapError turns connection-level database failures into EUNAVAILABLE, so
// callers can respond with 503 instead of 500 while the database is down.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	var domainErr *datapusher.Error
	if errors.As(err, &domainErr) {
		return err
	}
	if isConnectionError(err) {
		return &unavailableError{err: err}
	}
	return err
}

type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return "database unavailable: " + e.err.Error() }
func (e *unavailableError) Unwrap() []error {
	return []error{e.err, &datapusher.Error{Code: datapusher.EUNAVAILABLE, Message: "Service Unavailable"}}
}

func isConnectionError(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08 is connection exceptions; 57P01-57P03 are shutdowns.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P")
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	if errors.Is(err, sql.ErrConnDone) {
		return true
	}
	msg := err.Error()
	for _, fragment := range []string{"connection refused", "broken pipe", "connection reset", "unexpected EOF", "failed to connect", "conn closed", "database system is shutting down"} {
		if strings.Contains(msg, fragment) {
			return true
		}
	}
	return false
}

// notFound returns the ENOTFOUND error for a kind of object.
func notFound(kind string) error {
	return datapusher.Errorf(datapusher.ENOTFOUND, "No %s matches the given query.", kind)
}
