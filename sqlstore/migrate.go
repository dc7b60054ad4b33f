package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations
var migrationFS embed.FS

// Migration is one schema change, numbered by the prefix of its file name.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the embedded migrations of the store's dialect, oldest
// first.
func (s *Store) Migrations() ([]Migration, error) {
	dir := path.Join("migrations", s.dialect)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var migrations []Migration
	for _, entry := range entries {
		name := entry.Name()
		prefix, _, ok := strings.Cut(name, "_")
		version, err := strconv.Atoi(prefix)
		if !ok || err != nil || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration file %s: name must be NNNN_name.sql", name)
		}
		body, err := fs.ReadFile(migrationFS, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		migrations = append(migrations, Migration{Version: version, Name: name, SQL: string(body)})
	}
	sort.Slice(migrations, func(i, j int) bool { return migrations[i].Version < migrations[j].Version })
	return migrations, nil
}

// Migrate applies every migration that has not run yet, each in its own
// transaction, then the job queue's migrations, and returns the names of
// those it applied. On PostgreSQL, processes that start together migrate
// one after the other.
func (s *Store) Migrate(ctx context.Context) ([]string, error) {
	unlock, err := s.lockMigrations(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()

	applied, err := s.migrateTables(ctx)
	if err != nil {
		return applied, err
	}
	riverCount, err := s.migrateRiver(ctx)
	if err != nil {
		return applied, err
	}
	if riverCount > 0 {
		applied = append(applied, fmt.Sprintf("job queue (%d migrations)", riverCount))
	}
	return applied, nil
}

func (s *Store) migrateTables(ctx context.Context) ([]string, error) {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS datapusher_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at text NOT NULL)`); err != nil {
		return nil, fmt.Errorf("create migrations table: %w", err)
	}
	migrations, err := s.Migrations()
	if err != nil {
		return nil, err
	}

	var applied []string
	for _, migration := range migrations {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			var count int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM datapusher_migrations WHERE version = $1`,
				migration.Version).Scan(&count); err != nil {
				return fmt.Errorf("read migration state: %w", err)
			}
			if count > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, migration.SQL); err != nil {
				return fmt.Errorf("apply migration %s: %w", migration.Name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO datapusher_migrations (version, name, applied_at)
				VALUES ($1, $2, $3)`, migration.Version, migration.Name, s.Now().Format(sqliteTimeLayout)); err != nil {
				return fmt.Errorf("record migration %s: %w", migration.Name, err)
			}
			applied = append(applied, migration.Name)
			return nil
		})
		if err != nil {
			return applied, err
		}
	}
	return applied, nil
}

// migrationLockKey is the PostgreSQL advisory lock that a process holds
// while it migrates. Older versions take the same key in each migration's
// transaction, so during an upgrade either kind waits for the other.
const migrationLockKey = 7262010

// lockMigrations takes the PostgreSQL migration lock, waiting while another
// process holds it, and returns its release. Two processes that create one
// table at once would otherwise fail on a unique index of PostgreSQL's
// catalog. SQLite's BEGIN IMMEDIATE already serialises migrations.
func (s *Store) lockMigrations(ctx context.Context) (func(), error) {
	if s.dialect != DialectPostgres {
		return func() {}, nil
	}
	if s.listenerPool != nil {
		// A connection outside the store's pool, so that a pool of one
		// connection can still run the migrations. Closing it, rather than
		// returning it to the pool, ends the session and so the lock.
		conn, err := s.listenerPool.Acquire(ctx)
		if err != nil {
			return nil, fmt.Errorf("lock migrations: %w", err)
		}
		pgConn := conn.Hijack()
		if _, err := pgConn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
			pgConn.Close(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("lock migrations: %w", err)
		}
		return func() { pgConn.Close(context.WithoutCancel(ctx)) }, nil
	}

	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock migrations: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		conn.Close()
		return nil, fmt.Errorf("lock migrations: %w", err)
	}
	return func() {
		_, err := conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLockKey)
		if err != nil {
			// Discard the connection, and with its session the lock.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}, nil
}

// PendingMigrations returns how many embedded migrations have not run yet.
func (s *Store) PendingMigrations(ctx context.Context) (int, error) {
	migrations, err := s.Migrations()
	if err != nil {
		return 0, err
	}
	var latest sql.NullInt64
	err = s.db.QueryRowContext(ctx, `SELECT max(version) FROM datapusher_migrations`).Scan(&latest)
	if err != nil {
		return len(migrations), fmt.Errorf("read migration state: %w", err)
	}
	pending := 0
	for _, migration := range migrations {
		if int64(migration.Version) > latest.Int64 {
			pending++
		}
	}
	return pending, nil
}
