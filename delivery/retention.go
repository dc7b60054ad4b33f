package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/datapusher/datapusher/sqlstore"
)

// Retention defaults.
const (
	// DefaultLogMaxAge is how long delivery logs are kept when neither the
	// job nor the account sets a period.
	DefaultLogMaxAge = 30 * 24 * time.Hour

	// DefaultRetentionInterval is how often PeriodicJobs runs retention when
	// given an interval of zero or less.
	DefaultRetentionInterval = time.Hour

	// DefaultRetentionRunTime bounds one run of the retention job. The job's
	// timeout, RunTime plus 5 seconds, must stay below the queue's
	// RescueStuckJobsAfter, or the queue starts the job a second time while
	// it still runs. NewQueue sets that to the delivery timeout plus 20
	// seconds.
	DefaultRetentionRunTime = 10 * time.Second
)

// RetentionArgs are the arguments of the job that deletes old delivery logs.
type RetentionArgs struct {
	// MaxAge is how long logs are kept, in nanoseconds when encoded;
	// DefaultLogMaxAge when zero. An account's own retention period, when
	// set, takes its place for that account's logs.
	MaxAge time.Duration `json:"max_age"`
}

// Kind returns the job kind stored in the queue.
func (RetentionArgs) Kind() string { return "log_retention" }

// RetentionConfig tunes a RetentionWorker. Zero values select the defaults.
type RetentionConfig struct {
	// BatchSize is how many rows each delete statement removes. Default
	// sqlstore.DefaultRetentionBatchSize.
	BatchSize int

	// RunTime bounds one run. A run that reaches it with rows left snoozes
	// the job, which runs again a second later and goes on from there, so
	// that a large backlog never holds a worker for long. Default
	// DefaultRetentionRunTime.
	RunTime time.Duration
}

// RetentionWorker deletes delivery logs older than the job's MaxAge, with
// their attempts, and the events left without logs.
type RetentionWorker struct {
	river.WorkerDefaults[RetentionArgs]

	store  *sqlstore.Store
	cfg    RetentionConfig
	logger *slog.Logger
}

// NewRetentionWorker returns a RetentionWorker that deletes from store.
func NewRetentionWorker(store *sqlstore.Store, cfg RetentionConfig, logger *slog.Logger) *RetentionWorker {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = sqlstore.DefaultRetentionBatchSize
	}
	if cfg.RunTime <= 0 {
		cfg.RunTime = DefaultRetentionRunTime
	}
	return &RetentionWorker{store: store, cfg: cfg, logger: logger}
}

// Timeout lets a run reach its own RunTime limit before the queue's job
// timeout cancels it, so that the worker can tell the two apart.
func (w *RetentionWorker) Timeout(*river.Job[RetentionArgs]) time.Duration {
	return w.cfg.RunTime + 5*time.Second
}

// Work deletes the logs received before now minus the job's MaxAge.
func (w *RetentionWorker) Work(ctx context.Context, job *river.Job[RetentionArgs]) error {
	maxAge := job.Args.MaxAge
	if maxAge <= 0 {
		maxAge = DefaultLogMaxAge
	}
	cutoff := w.store.Now().Add(-maxAge)
	runCtx, cancel := context.WithTimeout(ctx, w.cfg.RunTime)
	defer cancel()

	started := time.Now()
	deleted, err := w.store.DeleteLogsBefore(runCtx, cutoff, w.cfg.BatchSize)
	attrs := []any{"deleted_logs", deleted, "cutoff", cutoff, "duration_ms", time.Since(started).Milliseconds()}
	switch {
	case err == nil:
		w.logger.Info("log retention done", attrs...)
		return nil
	case runCtx.Err() != nil && ctx.Err() == nil:
		w.logger.Info("log retention reached its run time, continuing in a new run", attrs...)
		return river.JobSnooze(time.Second)
	default:
		// The queue logs the returned error and retries the job.
		w.logger.Info("log retention stopped", attrs...)
		return fmt.Errorf("delete logs before %s: %w", cutoff.Format(time.RFC3339), err)
	}
}

// PeriodicJobs returns the queue's periodic jobs: log retention every
// interval (DefaultRetentionInterval when zero or less), keeping logs for
// maxAge (DefaultLogMaxAge when zero or less). The first run starts when the
// queue starts. Each job is unique within its interval (aligned to UTC
// multiples of it) while the queue keeps it, so processes that restart
// within one interval do not add a run each.
func PeriodicJobs(maxAge, interval time.Duration) []*river.PeriodicJob {
	if maxAge <= 0 {
		maxAge = DefaultLogMaxAge
	}
	if interval <= 0 {
		interval = DefaultRetentionInterval
	}
	retention := river.NewPeriodicJob(river.PeriodicInterval(interval),
		func() (river.JobArgs, *river.InsertOpts) {
			return RetentionArgs{MaxAge: maxAge}, &river.InsertOpts{
				MaxAttempts: 5,
				UniqueOpts:  river.UniqueOpts{ByPeriod: interval},
			}
		},
		&river.PeriodicJobOpts{ID: RetentionArgs{}.Kind(), RunOnStart: true})
	return []*river.PeriodicJob{retention}
}
