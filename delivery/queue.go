package delivery

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/riverqueue/river"
	"riverqueue.com/riverui"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/sqlstore"
)

// QueueConfig tunes the job queue.
type QueueConfig struct {
	// Workers is how many jobs of single deliveries (retries and
	// deliveries handed on by batches) run at once in this process; 0 makes
	// an insert-only queue, for processes that only accept events. The
	// requests in flight are capped by the worker's Config.Concurrency.
	Workers int

	// BatchWorkers is how many batch jobs run at once in this process; each
	// one works up to 256 deliveries. Default 16.
	BatchWorkers int

	// PollInterval is how often idle workers look for new jobs.
	PollInterval time.Duration

	// LogMaxAge and RetentionInterval schedule the job that deletes old
	// delivery logs, in processes with workers; the defaults are
	// DefaultLogMaxAge and DefaultRetentionInterval.
	LogMaxAge         time.Duration
	RetentionInterval time.Duration
}

// Queue is the durable job queue of deliveries.
type Queue struct {
	client *river.Client[*sql.Tx]
	worker *Worker
}

// NewQueue returns a queue on the store's database. With cfg.Workers > 0 it
// runs worker once started.
func NewQueue(store *sqlstore.Store, worker *Worker, cfg QueueConfig, logger *slog.Logger) (*Queue, error) {
	// Every process registers every worker, because the queue checks the
	// kind of each job it inserts; only processes with workers run them.
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, worker); err != nil {
		return nil, fmt.Errorf("register delivery worker: %w", err)
	}
	if err := river.AddWorkerSafely(workers, worker.Batch()); err != nil {
		return nil, fmt.Errorf("register batch delivery worker: %w", err)
	}
	retention := NewRetentionWorker(store, RetentionConfig{}, logger)
	if err := river.AddWorkerSafely(workers, retention); err != nil {
		return nil, fmt.Errorf("register retention worker: %w", err)
	}

	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	config := &river.Config{
		Workers:                     workers,
		Logger:                      logger,
		FetchCooldown:               min(cfg.PollInterval, 10*time.Millisecond),
		FetchPollInterval:           cfg.PollInterval,
		JobTimeout:                  worker.jobTimeout(),
		RescueStuckJobsAfter:        worker.rescueAfter(),
		CompletedJobRetentionPeriod: time.Hour,
		CancelledJobRetentionPeriod: 24 * time.Hour,
	}
	if cfg.Workers > 0 {
		if cfg.BatchWorkers <= 0 {
			cfg.BatchWorkers = 16
		}
		config.Queues = map[string]river.QueueConfig{
			river.QueueDefault: {MaxWorkers: cfg.Workers},
			batchQueue:         {MaxWorkers: cfg.BatchWorkers},
		}
		config.PeriodicJobs = PeriodicJobs(cfg.LogMaxAge, cfg.RetentionInterval)
	}

	client, err := river.NewClient(store.RiverDriver(), config)
	if err != nil {
		return nil, fmt.Errorf("create job queue client: %w", err)
	}
	worker.insertJobs = func(ctx context.Context, tx *sql.Tx, params []river.InsertManyParams) error {
		if _, err := client.InsertManyFastTx(ctx, tx, params); err != nil {
			return fmt.Errorf("insert delivery jobs: %w", err)
		}
		return nil
	}
	return &Queue{client: client, worker: worker}, nil
}

// batchQueue is the queue of batch jobs. Batch jobs have their own queue and
// worker count because each one holds many deliveries in memory, and a
// backlog of them must not take the workers of retries.
const batchQueue = "delivery_batch"

// maxJobAttempts is how often the queue runs a delivery job that fails
// before it gives up. A failed delivery attempt is not a failed job: its
// retries follow the delivery schedule. A job fails when the database does.
const maxJobAttempts = 25

// Enqueue inserts batch jobs for logs in tx, up to maxBatchLogs logs of one
// generation per job. It is a sqlstore.EnqueueFunc.
func (q *Queue) Enqueue(ctx context.Context, tx *sql.Tx, logs []*datapusher.DeliveryLog) error {
	byGeneration := map[int][]string{}
	var generations []int
	for _, log := range logs {
		if _, ok := byGeneration[log.Generation]; !ok {
			generations = append(generations, log.Generation)
		}
		byGeneration[log.Generation] = append(byGeneration[log.Generation], log.ID)
	}
	if len(logs) == 0 {
		return nil
	}
	var params []river.InsertManyParams
	for _, generation := range generations {
		for chunk := range slices.Chunk(byGeneration[generation], maxBatchLogs) {
			params = append(params, river.InsertManyParams{
				Args:       BatchArgs{LogIDs: chunk, Generation: generation},
				InsertOpts: &river.InsertOpts{MaxAttempts: maxJobAttempts, Queue: batchQueue},
			})
		}
	}
	return q.worker.insertJobs(ctx, tx, params)
}

// Start starts the workers, when the queue has any.
func (q *Queue) Start(ctx context.Context) error {
	return q.client.Start(ctx)
}

// Stop waits for running deliveries to finish until ctx ends, then cancels
// the rest; the queue runs those again after the next start.
func (q *Queue) Stop(ctx context.Context) error {
	defer q.worker.Close()
	err := q.client.Stop(ctx)
	if err == nil {
		return nil
	}
	cancelCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if cancelErr := q.client.StopAndCancel(cancelCtx); cancelErr != nil {
		return fmt.Errorf("stop job queue: %w", cancelErr)
	}
	return nil
}

// NewDashboard returns the River UI, the job queue's web dashboard, served
// under prefix. It reads and changes jobs through the queue's client, on
// SQLite and PostgreSQL alike; the caller decides who may reach it.
func (q *Queue) NewDashboard(ctx context.Context, prefix string, logger *slog.Logger) (http.Handler, error) {
	handler, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(q.client, nil),
		Logger:    logger,
		Prefix:    prefix,
	})
	if err != nil {
		return nil, fmt.Errorf("create queue dashboard: %w", err)
	}
	if err := handler.Start(ctx); err != nil {
		return nil, fmt.Errorf("start queue dashboard: %w", err)
	}
	return handler, nil
}
