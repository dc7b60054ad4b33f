// Package delivery sends stored events to their destinations from a durable
// job queue (River), with retries on a schedule, per-destination limits on
// concurrent requests, and a record of every attempt.
package delivery

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/delivery/sender"
	"github.com/datapusher/datapusher/internal/groupcommit"
	"github.com/datapusher/datapusher/metrics"
	"github.com/datapusher/datapusher/sqlstore"
)

// Args are the arguments of one delivery job: the delivery log it works on,
// and the log's generation when the job was queued.
type Args struct {
	LogID      string `json:"log_id"`
	Generation int    `json:"generation,omitempty"`
}

// Kind returns the job kind stored in the queue.
func (Args) Kind() string { return "delivery" }

// Config tunes a Worker. Zero values select the defaults.
type Config struct {
	// Schedule is the wait before each retry; DefaultSchedule when nil.
	Schedule []time.Duration

	// MaxPerDestination caps concurrent requests to one destination, so a
	// slow or hanging destination cannot take every worker. Default 10.
	MaxPerDestination int

	// BusyWait is how long a delivery waits in its worker for a free slot
	// of its destination. Deliveries to a destination that stays busy for
	// longer, such as one that hangs, are snoozed for BusyDelay instead, so
	// they free their workers. Default 200 ms.
	BusyWait time.Duration

	// BusyDelay is how long a snoozed delivery waits before it tries
	// again. Default 250 ms.
	BusyDelay time.Duration

	// DisabledDelay is how long a delivery to a disabled destination waits
	// before it checks again. Default 1 minute.
	DisabledDelay time.Duration

	// RequestTimeout is the sender's timeout; the job may run a little
	// longer so that the attempt is always recorded. Default 10 s.
	RequestTimeout time.Duration

	// Breaker sets each destination's circuit breaker;
	// DefaultBreakerConfig when zero.
	Breaker BreakerConfig

	// Metrics, when set, counts attempts and breaker states.
	Metrics *metrics.Metrics
}

// Worker delivers one log's event to its destination per job.
type Worker struct {
	river.WorkerDefaults[Args]

	store  *sqlstore.Store
	sender *sender.Sender
	logger *slog.Logger
	cfg    Config

	breakers *breakers
	recorder *groupcommit.Committer[*attemptRecord]

	mu    sync.Mutex
	slots map[string]chan struct{}
}

// attemptRecord is one attempt waiting to be written.
//
// NOTE: the job is completed by the queue after Work returns, not in this
// transaction. Completing it here (river.JobCompleteTx) saves a commit, but
// the queue then runs its own completion statement too, and on SQLite, where
// parsing that statement dominates the CPU profile, that costs more than it
// saves.
type attemptRecord struct {
	logID   string
	outcome sqlstore.AttemptOutcome
}

// NewWorker returns a Worker that reads logs from store and sends with s.
func NewWorker(store *sqlstore.Store, s *sender.Sender, cfg Config, logger *slog.Logger) *Worker {
	if cfg.Schedule == nil {
		cfg.Schedule = DefaultSchedule
	}
	if cfg.MaxPerDestination <= 0 {
		cfg.MaxPerDestination = 10
	}
	if cfg.BusyWait <= 0 {
		cfg.BusyWait = 200 * time.Millisecond
	}
	if cfg.BusyDelay <= 0 {
		cfg.BusyDelay = 250 * time.Millisecond
	}
	if cfg.DisabledDelay <= 0 {
		cfg.DisabledDelay = time.Minute
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	w := &Worker{
		store: store, sender: s, logger: logger, cfg: cfg,
		breakers: newBreakers(cfg.Breaker, cfg.Metrics), slots: make(map[string]chan struct{}),
	}

	// Attempts of concurrent deliveries are written together, so that under
	// load many share one commit. SQLite has one writer; PostgreSQL takes
	// several transactions at once.
	committers := 1
	if store.Dialect() == sqlstore.DialectPostgres {
		committers = 4
	}
	w.recorder = groupcommit.New(w.writeAttempts, nil, committers, 100)
	return w
}

// writeAttempts writes a batch of attempts in one transaction.
func (w *Worker) writeAttempts(ctx context.Context, records []*attemptRecord) error {
	return w.store.WithTx(ctx, func(tx *sql.Tx) error {
		for _, record := range records {
			if err := w.store.RecordAttemptTx(ctx, tx, record.logID, record.outcome); err != nil {
				return err
			}
		}
		return nil
	})
}

// Close writes the attempts still waiting and stops the attempt writers.
// Call it after the queue has stopped running jobs.
func (w *Worker) Close() { w.recorder.Stop() }

// recordTimeout bounds the writes that record an attempt after its request.
const recordTimeout = 10 * time.Second

// jobTimeout bounds one job: loading the log and making the request.
func (w *Worker) jobTimeout() time.Duration {
	return w.cfg.RequestTimeout + 5*time.Second
}

// rescueAfter is how long a job may stay running before the queue assumes
// its process died and runs it again. It is longer than a job can live,
// including the recording that outlasts the job's context, so a delivery
// never runs twice at once.
func (w *Worker) rescueAfter() time.Duration {
	return w.jobTimeout() + recordTimeout + 5*time.Second
}

// Timeout bounds one job; see jobTimeout.
func (w *Worker) Timeout(*river.Job[Args]) time.Duration {
	return w.jobTimeout()
}

// Work makes one delivery attempt for the job's log.
func (w *Worker) Work(ctx context.Context, job *river.Job[Args]) error {
	task, err := w.store.DeliveryTask(ctx, job.Args.LogID)
	if datapusher.ErrorCode(err) == datapusher.ENOTFOUND {
		// The account or destination was deleted with its logs.
		return nil
	} else if err != nil {
		return fmt.Errorf("load delivery %s: %w", job.Args.LogID, err)
	}
	log, destination := task.Log, task.Destination
	if log.Generation != job.Args.Generation {
		// A replay queued a newer job for this log.
		return nil
	}
	if log.Status == datapusher.StatusSuccess || log.Status == datapusher.StatusFailed {
		// Already final: this job ran before a crash kept it from completing.
		return nil
	}
	if !destination.Enabled {
		return river.JobSnooze(w.cfg.DisabledDelay)
	}
	if !w.acquire(ctx, destination.ID) {
		return river.JobSnooze(withJitter(w.cfg.BusyDelay))
	}
	defer w.release(destination.ID)
	reportToBreaker, ok := w.breakers.allow(destination.ID)
	if !ok {
		// The breaker is open: wait without making or counting an attempt.
		return river.JobSnooze(withJitter(w.breakers.cfg.Cooldown))
	}

	res := w.sender.Send(ctx, sender.Request{
		URL: destination.URL, Method: destination.HTTPMethod, Headers: destination.Headers,
		Body: log.ReceivedData, EventID: log.EventID, WebhookID: "msg_" + log.ID,
		Timestamp: time.Now(), Secrets: destination.SigningSecrets(time.Now()),
	})
	if res.Class == sender.ClassCanceled && ctx.Err() != nil {
		// Shutting down: the queue runs the job again after restart, and
		// the breaker does not count the interruption.
		reportToBreaker(errAttemptInterrupted)
		return fmt.Errorf("delivery %s interrupted: %w", log.ID, ctx.Err())
	}
	if res.Success() {
		reportToBreaker(nil)
	} else {
		reportToBreaker(errAttemptFailed)
	}
	return w.record(ctx, log, destination, res)
}

// record stores the attempt and returns what the queue should do next.
func (w *Worker) record(ctx context.Context, log *datapusher.DeliveryLog,
	destination *datapusher.Destination, res sender.Result) error {
	attempt := log.Attempts + 1
	decision := decide(res, attempt, w.cfg.Schedule)
	a := &datapusher.Attempt{
		StartedAt: time.Now().Add(-res.Duration), DurationMS: res.Duration.Milliseconds(),
		RequestURL: res.RequestURL, ResponseBody: storableText(res.Body), ErrorClass: string(res.Class),
	}
	if res.StatusCode != 0 {
		a.ResponseStatus = &res.StatusCode
	}
	if res.Err != nil {
		a.ErrorMessage = storableText([]byte(res.Err.Error()))
	}

	// The attempt is recorded even if the job's context ends now, because
	// the request was already made.
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	outcome := sqlstore.AttemptOutcome{Attempt: a, Status: decision.Status, Final: decision.Final}
	if res.StatusCode == http.StatusGone {
		outcome.DisableReason = "destination answered 410 Gone"
	}
	record := &attemptRecord{logID: log.ID, outcome: outcome}
	if err := w.recorder.Submit(recordCtx, record); err != nil {
		w.logger.Error("record delivery attempt", "log_id", log.ID, "event_id", log.EventID,
			"destination_id", destination.ID, "attempt", attempt, "error", err)
		return fmt.Errorf("record attempt of delivery %s: %w", log.ID, err)
	}
	w.cfg.Metrics.ObserveDelivery(decision.Status, string(res.Class), res.Duration)
	w.logger.Info("delivery attempt",
		"log_id", log.ID, "event_id", log.EventID, "destination_id", destination.ID,
		"attempt", attempt, "status_code", res.StatusCode, "error_class", string(res.Class),
		"duration_ms", res.Duration.Milliseconds(), "outcome", decision.Status)

	switch {
	case decision.Status == datapusher.StatusSuccess:
		return nil
	case decision.Final:
		return river.JobCancel(errors.New(a.ErrorMessage))
	default:
		return river.JobSnooze(decision.Delay)
	}
}

// acquire takes one of the destination's MaxPerDestination slots, waiting
// up to BusyWait for one to free up. It reports false when none did.
func (w *Worker) acquire(ctx context.Context, destinationID string) bool {
	slots := w.destinationSlots(destinationID)
	select {
	case slots <- struct{}{}:
		return true
	default:
	}
	timer := time.NewTimer(w.cfg.BusyWait)
	defer timer.Stop()
	select {
	case slots <- struct{}{}:
		return true
	case <-timer.C:
		return false
	case <-ctx.Done():
		return false
	}
}

func (w *Worker) release(destinationID string) {
	<-w.destinationSlots(destinationID)
}

// destinationSlots returns the semaphore of a destination.
//
// NOTE: semaphores are kept for every destination this process has
// delivered to, one small channel each, until the process stops.
func (w *Worker) destinationSlots(destinationID string) chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	slots, ok := w.slots[destinationID]
	if !ok {
		slots = make(chan struct{}, w.cfg.MaxPerDestination)
		w.slots[destinationID] = slots
	}
	return slots
}

// storableText returns b as text that both databases accept: valid UTF-8
// without NUL bytes. A destination may respond with any bytes, and the
// response is cut at a fixed size that can split a character.
func storableText(b []byte) string {
	return strings.ToValidUTF8(strings.ReplaceAll(string(b), "\x00", ""), "\uFFFD")
}
