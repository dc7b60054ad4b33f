package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

// RiverDriver returns the job queue driver for the store's database. Both
// drivers work on *sql.Tx, so delivery jobs are inserted in the same
// transaction as the events they deliver.
func (s *Store) RiverDriver() riverdriver.Driver[*sql.Tx] {
	if s.listenerPool != nil {
		return riverdatabasesql.NewWithPgxListener(s.db, s.listenerPool)
	}
	if s.dialect == DialectPostgres {
		return riverdatabasesql.New(s.db)
	}
	return riversqlite.New(s.db)
}

// migrateRiver brings the job queue's tables up to date.
func (s *Store) migrateRiver(ctx context.Context) (int, error) {
	migrator, err := rivermigrate.New(s.RiverDriver(), nil)
	if err != nil {
		return 0, fmt.Errorf("create job queue migrator: %w", err)
	}
	res, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return 0, fmt.Errorf("migrate job queue: %w", err)
	}
	return len(res.Versions), nil
}
