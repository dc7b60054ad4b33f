package health

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Pinger is a database that can be pinged, such as *sqlstore.Store.
type Pinger interface {
	Ping(ctx context.Context) error
}

// MigrationCounter reports how many schema migrations have not run yet,
// such as *sqlstore.Store.
type MigrationCounter interface {
	PendingMigrations(ctx context.Context) (int, error)
}

// RedisPinger is a Redis client, such as redis.UniversalClient.
type RedisPinger interface {
	Ping(ctx context.Context) *redis.StatusCmd
}

// Database returns the check named "database" that pings db.
func Database(db Pinger) Check {
	return Check{Name: "database", Run: func(ctx context.Context) error {
		if err := db.Ping(ctx); err != nil {
			return &Error{Message: "ping failed", Err: err}
		}
		return nil
	}}
}

// Migrations returns the check named "migrations" that fails while store
// has migrations that have not run, for example while a newer release waits
// for "datapusher migrate".
func Migrations(store MigrationCounter) Check {
	return Check{Name: "migrations", Run: func(ctx context.Context) error {
		pending, err := store.PendingMigrations(ctx)
		if err != nil {
			return &Error{Message: "reading migration state failed", Err: err}
		}
		if pending > 0 {
			return &Error{Message: fmt.Sprintf("%d migrations pending", pending), Class: "pending_migrations"}
		}
		return nil
	}}
}

// Redis returns the check named "redis" that sends PING to client.
func Redis(client RedisPinger) Check {
	return Check{Name: "redis", Run: func(ctx context.Context) error {
		if err := client.Ping(ctx).Err(); err != nil {
			return &Error{Message: "ping failed", Err: err}
		}
		return nil
	}}
}
