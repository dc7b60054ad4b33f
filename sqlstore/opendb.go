package sqlstore

import (
	"database/sql"
	"fmt"
)

// OpenDB returns a Store on db, an open connection pool of dialect
// (DialectSQLite or DialectPostgres), for callers that build the pool
// themselves, such as tests that wrap the database driver. Unlike Open it
// applies no connection settings, so a SQLite pool needs the pragmas that
// Open sets and SetMaxOpenConns(1). Closing the store closes db.
//
// OpenDB panics on any other dialect, because every query of the store
// depends on it.
func OpenDB(db *sql.DB, dialect string) *Store {
	if dialect != DialectSQLite && dialect != DialectPostgres {
		panic(fmt.Sprintf("sqlstore: unknown dialect %q", dialect))
	}
	return &Store{db: db, dialect: dialect, Now: now}
}
