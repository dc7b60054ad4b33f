package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/datapusher/datapusher"
)

// RequeueLog makes a log pending again and queues a new delivery of it with
// enqueue, in one transaction. The log keeps its attempts; new ones are
// added to them. A job queued earlier for the log is superseded.
func (s *Store) RequeueLog(ctx context.Context, logID string, enqueue EnqueueFunc) (*datapusher.DeliveryLog, error) {
	if !validID(logID) {
		return nil, notFound("log")
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		log, err := s.requeue(ctx, tx, logID)
		if err != nil {
			return err
		}
		return enqueueInTx(ctx, tx, enqueue, []*datapusher.DeliveryLog{log})
	})
	if err != nil {
		return nil, err
	}
	return s.Log(ctx, logID)
}

// RecoverQuery returns the SQL and arguments with which RecoverDestination
// selects the failed logs to requeue, for tests that check the query plan.
func (s *Store) RecoverQuery(destinationID string, since time.Time, until *time.Time) (string, []any) {
	var w where
	w.add("destination_id = ?", destinationID)
	w.add("status = ?", datapusher.StatusFailed)
	w.add("received_at >= ?", s.timeArg(since))
	if until != nil {
		w.add("received_at < ?", s.timeArg(*until))
	}
	return `SELECT id FROM delivery_logs` + w.String() + ` ORDER BY received_at, id`, w.args
}

// RecoverDestination requeues every failed log of a destination received in
// [since, until), or since `since` when until is nil, and returns how many
// it queued. The whole window commits at once.
func (s *Store) RecoverDestination(ctx context.Context, destinationID string, since time.Time, until *time.Time,
	enqueue EnqueueFunc) (int, error) {
	if !validID(destinationID) {
		return 0, notFound("destination")
	}
	var count int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		query, args := s.RecoverQuery(destinationID, since, until)
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return mapError(fmt.Errorf("select failed logs: %w", err))
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("scan log id: %w", err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return mapError(err)
		}

		logs := make([]*datapusher.DeliveryLog, 0, len(ids))
		for _, id := range ids {
			log, err := s.requeue(ctx, tx, id)
			if err != nil {
				return err
			}
			logs = append(logs, log)
		}
		count = len(logs)
		return enqueueInTx(ctx, tx, enqueue, logs)
	})
	return count, err
}

// requeue resets one log to pending with a new generation.
func (s *Store) requeue(ctx context.Context, tx *sql.Tx, logID string) (*datapusher.DeliveryLog, error) {
	log := &datapusher.DeliveryLog{ID: logID}
	err := tx.QueryRowContext(ctx, `UPDATE delivery_logs SET status = $1, processed_at = NULL,
		generation = generation + 1 WHERE id = $2 RETURNING generation, event_id, destination_id`,
		datapusher.StatusPending, logID).Scan(&log.Generation, &log.EventID, &log.DestinationID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("log")
	} else if err != nil {
		return nil, mapError(fmt.Errorf("requeue log: %w", err))
	}
	log.Status = datapusher.StatusPending
	return log, nil
}

func enqueueInTx(ctx context.Context, tx *sql.Tx, enqueue EnqueueFunc, logs []*datapusher.DeliveryLog) error {
	if enqueue == nil || len(logs) == 0 {
		return nil
	}
	if err := enqueue(ctx, tx, logs); err != nil {
		return mapError(fmt.Errorf("enqueue deliveries: %w", err))
	}
	return nil
}
