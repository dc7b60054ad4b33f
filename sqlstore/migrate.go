package sqlstore

import (
	"context"
	"database/sql"
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
// those it applied.
func (s *Store) Migrate(ctx context.Context) ([]string, error) {
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
			// PostgreSQL: an advisory lock keeps two processes that start at
			// once from applying the same migration. SQLite's BEGIN IMMEDIATE
			// already serialises them.
			if s.dialect == DialectPostgres {
				if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7262010)`); err != nil {
					return fmt.Errorf("lock migrations: %w", err)
				}
			}
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
