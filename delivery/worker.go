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
	"sync/atomic"
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

// BatchArgs are the arguments of a job that makes the first attempt of many
// logs at once, such as all the logs of the events that one transaction
// accepted. One job for many deliveries keeps the queue's own work per
// delivery small. Retries, and deliveries that cannot start at once, move
// to a job of their own.
type BatchArgs struct {
	LogIDs     []string `json:"log_ids"`
	Generation int      `json:"generation,omitempty"`
}

// Kind returns the job kind stored in the queue.
func (BatchArgs) Kind() string { return "delivery_batch" }

// maxBatchLogs is the most logs one batch job carries.
const maxBatchLogs = 256

// Config tunes a Worker. Zero values select the defaults.
type Config struct {
	// Schedule is the wait before each retry; DefaultSchedule when nil.
	Schedule []time.Duration

	// Concurrency caps the requests in flight in this process, across all
	// destinations. Default 100.
	Concurrency int

	// MaxPerDestination caps concurrent requests to one destination, so a
	// slow or hanging destination cannot take every worker. Below the cap,
	// each destination's limit starts at 10 and adapts to its responses (see
	// destinationSlots). Default 50.
	MaxPerDestination int

	// BusyWait is how long a delivery waits in its worker for a free slot
	// of its destination. Deliveries to a destination that stays busy for
	// longer, such as one that hangs, are snoozed for BusyDelay instead, so
	// they free their workers. Default 200 ms.
	BusyWait time.Duration

	// BusyDelay is how long a snoozed delivery waits before it tries
	// again, at least. While a destination stays busy, the wait grows with
	// the time it has been busy, up to MaxBusyDelay. Defaults 250 ms and
	// 30 s.
	BusyDelay    time.Duration
	MaxBusyDelay time.Duration

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

// Worker delivers one log's event to its destination per job. Its Batch
// worker makes the first attempts of many logs per job.
type Worker struct {
	river.WorkerDefaults[Args]

	store  *sqlstore.Store
	sender *sender.Sender
	logger *slog.Logger
	cfg    Config

	breakers *breakers
	recorder *groupcommit.Committer[*attemptRecord]
	sending  chan struct{} // one token per request in flight

	// insertJobs queues jobs in a transaction; the queue sets it.
	insertJobs func(ctx context.Context, tx *sql.Tx, params []river.InsertManyParams) error

	mu             sync.Mutex
	slots          map[string]*destinationSlots
	lastSlotsSweep time.Time
}

// attemptRecord is one attempt waiting to be written, or, when outcome is
// nil, a delivery handed from a batch job to a job of its own without an
// attempt.
//
// NOTE: the job is completed by the queue after Work returns, not in this
// transaction. Completing it here (river.JobCompleteTx) saves a commit, but
// the queue then runs its own completion statement too, and on SQLite, where
// parsing that statement dominates the CPU profile, that costs more than it
// saves.
type attemptRecord struct {
	logID   string
	outcome *sqlstore.AttemptOutcome

	// generation is the log's generation that the job saw.
	generation int
	// delay is the wait before the new job, when one is queued.
	delay time.Duration
}

// NewWorker returns a Worker that reads logs from store and sends with s.
func NewWorker(store *sqlstore.Store, s *sender.Sender, cfg Config, logger *slog.Logger) *Worker {
	if cfg.Schedule == nil {
		cfg.Schedule = DefaultSchedule
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 100
	}
	if cfg.MaxPerDestination <= 0 {
		cfg.MaxPerDestination = 50
	}
	if cfg.BusyWait <= 0 {
		cfg.BusyWait = 200 * time.Millisecond
	}
	if cfg.BusyDelay <= 0 {
		cfg.BusyDelay = 250 * time.Millisecond
	}
	if cfg.MaxBusyDelay < cfg.BusyDelay {
		cfg.MaxBusyDelay = max(30*time.Second, cfg.BusyDelay)
	}
	if cfg.DisabledDelay <= 0 {
		cfg.DisabledDelay = time.Minute
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	w := &Worker{
		store: store, sender: s, logger: logger, cfg: cfg,
		breakers: newBreakers(cfg.Breaker, cfg.Metrics), slots: make(map[string]*destinationSlots),
		sending: make(chan struct{}, cfg.Concurrency),
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

// writeAttempts writes a batch of attempts, and queues the jobs of the
// deliveries that move to a job of their own, in one transaction.
func (w *Worker) writeAttempts(ctx context.Context, records []*attemptRecord) error {
	return w.store.WithTx(ctx, func(tx *sql.Tx) error {
		var jobs []river.InsertManyParams
		now := time.Now()
		queue := func(logID string, generation int, delay time.Duration) {
			jobs = append(jobs, river.InsertManyParams{
				Args:       Args{LogID: logID, Generation: generation},
				InsertOpts: &river.InsertOpts{MaxAttempts: maxJobAttempts, ScheduledAt: now.Add(delay)},
			})
		}
		var attempts []*sqlstore.LogAttempt
		var delays []time.Duration
		for _, record := range records {
			if record.outcome != nil {
				attempts = append(attempts, &sqlstore.LogAttempt{
					LogID: record.logID, Outcome: *record.outcome, Generation: record.generation,
				})
				delays = append(delays, record.delay)
				continue
			}
			generation, moved, err := w.store.NextGenerationTx(ctx, tx, record.logID, record.generation)
			if err != nil {
				return err
			}
			if moved {
				queue(record.logID, generation, record.delay)
			}
		}
		if err := w.store.RecordAttemptsTx(ctx, tx, attempts); err != nil {
			return err
		}
		for i, attempt := range attempts {
			if attempt.Superseded {
				msg := "delivery attempt not recorded: its log was deleted meanwhile"
				if attempt.Stored {
					msg = "delivery attempt kept in history only: its log was queued again meanwhile"
				}
				w.logger.Info(msg, "log_id", attempt.LogID, "generation", attempt.Generation)
				continue
			}
			if attempt.Outcome.NewGeneration {
				queue(attempt.LogID, attempt.Generation, delays[i])
			}
		}
		if len(jobs) == 0 {
			return nil
		}
		if w.insertJobs == nil {
			return errors.New("delivery worker is not attached to a queue")
		}
		return w.insertJobs(ctx, tx, jobs)
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

// batchTimeout bounds one batch job. Its deliveries wait for a free request
// slot at most until a full jobTimeout is left, so each one that starts has
// as long as a job of its own.
func (w *Worker) batchTimeout() time.Duration {
	return 2 * w.jobTimeout()
}

// rescueAfter is how long a job may stay running before the queue assumes
// its process died and runs it again. It is longer than a job can live,
// including the recording that outlasts the job's context, so a delivery
// never runs twice at once.
func (w *Worker) rescueAfter() time.Duration {
	return w.batchTimeout() + recordTimeout + 5*time.Second
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
	if !due(task.Log, job.Args.Generation) {
		return nil
	}
	return w.attempt(ctx, task, nil)
}

// due reports whether a job queued for generation still has to deliver log.
func due(log *datapusher.DeliveryLog, generation int) bool {
	if log.Generation != generation {
		// A replay, a retry or a hand-off queued a newer job for this log.
		return false
	}
	// A final log was delivered by this job before a crash kept the job
	// from completing.
	return log.Status != datapusher.StatusSuccess && log.Status != datapusher.StatusFailed
}

// Batch returns the worker of batch jobs, which shares this worker's
// limits, breakers and attempt writers.
func (w *Worker) Batch() river.Worker[BatchArgs] { return &batchWorker{w: w} }

type batchWorker struct {
	river.WorkerDefaults[BatchArgs]
	w *Worker
}

// Timeout bounds one batch job; see batchTimeout.
func (b *batchWorker) Timeout(*river.Job[BatchArgs]) time.Duration {
	return b.w.batchTimeout()
}

// Work makes the first attempt of each of the job's logs, all at once
// within the limits on requests in flight. A log that is final or moved on
// to a newer job, for example when the job runs again after a crash, is
// skipped. The job fails, and runs again, only when an attempt could not be
// recorded or was interrupted.
func (b *batchWorker) Work(ctx context.Context, job *river.Job[BatchArgs]) error {
	tasks, err := b.w.store.DeliveryTasks(ctx, job.Args.LogIDs)
	if err != nil {
		return fmt.Errorf("load %d deliveries: %w", len(job.Args.LogIDs), err)
	}
	loadedAt := time.Now()
	byDestination := map[string]*batchDestination{}
	var order []*batchDestination
	for _, task := range tasks {
		if !due(task.Log, job.Args.Generation) {
			continue
		}
		group, ok := byDestination[task.Destination.ID]
		if !ok {
			group = &batchDestination{loadedAt: loadedAt}
			byDestination[task.Destination.ID] = group
			order = append(order, group)
		}
		group.tasks = append(group.tasks, task)
	}

	// Each destination's logs are worked by as many goroutines as the
	// destination may take requests, so a large batch costs few goroutines.
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, group := range order {
		for range min(len(group.tasks), b.w.cfg.MaxPerDestination) {
			wg.Go(func() {
				for task := group.take(); task != nil; task = group.take() {
					if err := b.w.attempt(ctx, task, group); err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				}
			})
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}

// batchDestination holds the logs of one batch job that go to one
// destination.
type batchDestination struct {
	mu    sync.Mutex
	tasks []*sqlstore.DeliveryTask

	// loadedAt is when the batch read its logs and destinations.
	loadedAt time.Time

	// busy is set once the destination had no free request slot: the
	// batch's remaining logs for it then move to jobs of their own without
	// waiting for one.
	busy atomic.Bool
}

// take returns the next log to deliver, or nil when none is left.
func (g *batchDestination) take() *sqlstore.DeliveryTask {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.tasks) == 0 {
		return nil
	}
	task := g.tasks[0]
	g.tasks = g.tasks[1:]
	return task
}

// attempt makes one delivery attempt for task, unless its destination
// cannot take one now. Without an attempt, or after one that failed and
// will be retried, the current job snoozed delivers the log later, or a job
// of its own when the log comes from a batch (batch is not nil).
func (w *Worker) attempt(ctx context.Context, task *sqlstore.DeliveryTask, batch *batchDestination) error {
	task, res, wait, err := w.send(ctx, task, batch)
	if err != nil || task == nil {
		return err
	}
	fromBatch := batch != nil
	if wait > 0 {
		if fromBatch {
			return w.handOff(ctx, task.Log, wait)
		}
		return river.JobSnooze(wait)
	}
	return w.record(ctx, task.Log, task.Destination, res, fromBatch)
}

// send makes the request of one attempt while it holds a request slot of
// the destination and of the process. The attempt is recorded after both
// slots are free again. send returns the task it sent, which a batch
// reloads when it waited. When the destination cannot take a request now,
// send makes none and returns how long to wait instead. A nil task means
// the log needs no attempt any more.
func (w *Worker) send(ctx context.Context, task *sqlstore.DeliveryTask,
	batch *batchDestination) (_ *sqlstore.DeliveryTask, res sender.Result, wait time.Duration, err error) {
	log, destination := task.Log, task.Destination
	if !destination.Enabled {
		return task, res, w.cfg.DisabledDelay, nil
	}
	// A delivery of its own waits up to BusyWait for a slot of its
	// destination. A batch waits as long as the destination keeps finishing
	// requests, because its waiting costs only goroutines, and until only
	// RequestTimeout is left of the job. Once the destination finished none
	// in BusyWait, the batch's deliveries to it move to jobs of their own.
	waitCtx, wait, untilStuck := ctx, w.cfg.BusyWait, batch != nil
	if batch != nil && batch.busy.Load() {
		wait = 0
	}
	if deadline, ok := ctx.Deadline(); ok && batch != nil {
		var cancel context.CancelFunc
		waitCtx, cancel = context.WithDeadline(ctx, deadline.Add(-w.cfg.RequestTimeout))
		defer cancel()
	}
	slots := w.holdSlots(destination.ID)
	defer w.dropSlots(slots)
	if ok, busyFor := slots.acquire(waitCtx, wait, untilStuck); !ok {
		if batch != nil {
			batch.busy.Store(true)
		}
		return task, res, withJitter(min(max(busyFor, w.cfg.BusyDelay), w.cfg.MaxBusyDelay)), nil
	}
	// A request that waited for a process slot while it held the
	// destination's made other deliveries queue for the destination, so its
	// success does not count as a sign that the destination takes more.
	var waitedForProcess bool
	defer func() { slots.release(res, !waitedForProcess) }()
	acquired, waited := w.acquireSending(ctx)
	waitedForProcess = waited
	if !acquired {
		return task, res, withJitter(w.cfg.BusyDelay), nil
	}
	defer func() { <-w.sending }()

	if batch != nil {
		if waitCtx.Err() != nil {
			// Too little of the batch's time is left for a whole request.
			return task, res, withJitter(w.cfg.BusyDelay), nil
		}
		task, wait, err = w.refresh(ctx, task, batch)
		if err != nil || task == nil || wait > 0 {
			return task, res, wait, err
		}
		log, destination = task.Log, task.Destination
	}
	if err := ctx.Err(); err != nil {
		// The job ended while it waited; the queue runs it again.
		return nil, res, 0, fmt.Errorf("delivery %s interrupted: %w", log.ID, err)
	}
	reportToBreaker, ok := w.breakers.allow(destination.ID)
	if !ok {
		// The breaker is open: wait without making or counting an attempt.
		return task, res, withJitter(w.breakers.cfg.Cooldown), nil
	}

	res = w.sender.Send(ctx, sender.Request{
		URL: destination.URL, Method: destination.HTTPMethod, Headers: destination.Headers,
		Body: log.ReceivedData, EventID: log.EventID, WebhookID: "msg_" + log.ID,
		Timestamp: time.Now(), Secrets: destination.SigningSecrets(time.Now()),
	})
	if res.Class == sender.ClassCanceled && ctx.Err() != nil {
		// Shutting down: the queue runs the job again after restart, and
		// the breaker does not count the interruption.
		reportToBreaker(errAttemptInterrupted)
		return nil, res, 0, fmt.Errorf("delivery %s interrupted: %w", log.ID, ctx.Err())
	}
	if res.Success() {
		reportToBreaker(nil)
	} else {
		reportToBreaker(errAttemptFailed)
	}
	return task, res, 0, nil
}

// refresh returns task as it is now when the batch read it longer than
// BusyWait ago, because the destination may have been disabled, changed or
// deleted since, or the log queued again. It returns nil when the log needs
// no attempt any more, and a wait when the destination is disabled.
func (w *Worker) refresh(ctx context.Context, task *sqlstore.DeliveryTask,
	batch *batchDestination) (*sqlstore.DeliveryTask, time.Duration, error) {
	if time.Since(batch.loadedAt) <= w.cfg.BusyWait {
		return task, 0, nil
	}
	fresh, err := w.store.DeliveryTask(ctx, task.Log.ID)
	if datapusher.ErrorCode(err) == datapusher.ENOTFOUND {
		return nil, 0, nil
	} else if err != nil {
		return nil, 0, fmt.Errorf("reload delivery %s: %w", task.Log.ID, err)
	}
	if !due(fresh.Log, task.Log.Generation) {
		return nil, 0, nil
	}
	if !fresh.Destination.Enabled {
		return fresh, w.cfg.DisabledDelay, nil
	}
	return fresh, 0, nil
}

// handOff moves a log from a batch job to a job of its own that starts after
// delay.
func (w *Worker) handOff(ctx context.Context, log *datapusher.DeliveryLog, delay time.Duration) error {
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	record := &attemptRecord{logID: log.ID, generation: log.Generation, delay: delay}
	if err := w.recorder.Submit(recordCtx, record); err != nil {
		return fmt.Errorf("queue delivery %s: %w", log.ID, err)
	}
	return nil
}

// record stores the attempt and returns what the queue should do next.
func (w *Worker) record(ctx context.Context, log *datapusher.DeliveryLog,
	destination *datapusher.Destination, res sender.Result, fromBatch bool) error {
	// NOTE: log is the copy the job loaded. An overtaken attempt stored
	// since then makes this count one short, which allows one more retry.
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
	retry := decision.Status != datapusher.StatusSuccess && !decision.Final
	outcome := &sqlstore.AttemptOutcome{
		Attempt: a, Status: decision.Status, Final: decision.Final, NewGeneration: retry && fromBatch,
	}
	if res.StatusCode == http.StatusGone {
		outcome.DisableReason = "destination answered 410 Gone"
	}
	record := &attemptRecord{logID: log.ID, outcome: outcome, generation: log.Generation, delay: decision.Delay}
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
	case decision.Status == datapusher.StatusSuccess, fromBatch:
		// A retry from a batch was queued with the attempt.
		return nil
	case decision.Final:
		return river.JobCancel(errors.New(a.ErrorMessage))
	default:
		return river.JobSnooze(decision.Delay)
	}
}

// acquireSending takes one of the process's request slots. It waits until
// only RequestTimeout is left of the job, so that a request that starts can
// run to its own timeout, and reports false when no slot freed up by then.
// waited reports whether no slot was free at first.
func (w *Worker) acquireSending(ctx context.Context) (acquired, waited bool) {
	select {
	case w.sending <- struct{}{}:
		return true, false
	default:
	}
	wait := w.cfg.BusyWait
	if deadline, ok := ctx.Deadline(); ok {
		wait = max(time.Until(deadline)-w.cfg.RequestTimeout, 0)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case w.sending <- struct{}{}:
		return true, true
	case <-timer.C:
		return false, true
	case <-ctx.Done():
		return false, true
	}
}

// Idle destinations' slots are dropped, so that a process that delivers to
// many destinations over time keeps slots only for the recent ones. A
// destination whose slots were dropped starts again at the initial limit.
const (
	slotsIdleTime      = 10 * time.Minute
	slotsSweepInterval = time.Minute
)

// holdSlots returns the request slots of a destination and keeps them until
// the caller calls dropSlots, so that two requests to one destination never
// count on different slots.
func (w *Worker) holdSlots(destinationID string) *destinationSlots {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Sub(w.lastSlotsSweep) >= slotsSweepInterval {
		w.sweepSlots(now)
	}
	slots, ok := w.slots[destinationID]
	if !ok {
		slots = newDestinationSlots(min(initialPerDestination, w.cfg.MaxPerDestination), w.cfg.MaxPerDestination)
		w.slots[destinationID] = slots
	}
	slots.holders++
	slots.lastUsed = now
	return slots
}

// dropSlots ends a hold that holdSlots started.
func (w *Worker) dropSlots(slots *destinationSlots) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	slots.holders--
	slots.lastUsed = now
}

// sweepSlots deletes the slots that no request holds and that went unused
// for slotsIdleTime. The caller holds w.mu.
func (w *Worker) sweepSlots(now time.Time) {
	w.lastSlotsSweep = now
	for id, slots := range w.slots {
		if slots.holders == 0 && now.Sub(slots.lastUsed) >= slotsIdleTime {
			delete(w.slots, id)
		}
	}
}

// storableText returns b as text that both databases accept: valid UTF-8
// without NUL bytes. A destination may respond with any bytes, and the
// response is cut at a fixed size that can split a character.
func storableText(b []byte) string {
	return strings.ToValidUTF8(strings.ReplaceAll(string(b), "\x00", ""), "\uFFFD")
}
