package ingest

import (
	"context"
	"errors"
	"sync"

	"github.com/datapusher/datapusher/sqlstore"
)

// Batcher commits events from concurrent requests together: each committer
// takes every event that is waiting, up to MaxBatch, and stores them in one
// transaction (group commit). Under load this turns many small commits,
// each waiting for its own disk flush, into few large ones; a lone event is
// committed at once, without waiting for company.
type Batcher struct {
	store    *sqlstore.Store
	enqueue  sqlstore.EnqueueFunc
	maxBatch int

	requests chan *batchRequest
	stop     chan struct{}
	wg       sync.WaitGroup

	// mu guards stopped. Insert holds it for reading while it queues a
	// request, so that no request is queued after the committers drained.
	mu      sync.RWMutex
	stopped bool
}

type batchRequest struct {
	item *sqlstore.NewEvent
	done chan error
}

// ErrBatcherStopped is returned for events submitted after Stop.
var ErrBatcherStopped = errors.New("event batcher stopped")

// NewBatcher starts committers goroutines that store events in store and
// queue their deliveries with enqueue. SQLite has one writer, so one
// committer suits it; PostgreSQL commits in parallel.
func NewBatcher(store *sqlstore.Store, enqueue sqlstore.EnqueueFunc, committers, maxBatch int) *Batcher {
	if committers <= 0 {
		committers = 1
	}
	if maxBatch <= 0 {
		maxBatch = 100
	}
	b := &Batcher{
		store: store, enqueue: enqueue, maxBatch: maxBatch,
		requests: make(chan *batchRequest, maxBatch*committers),
		stop:     make(chan struct{}),
	}
	for range committers {
		b.wg.Add(1)
		go b.run()
	}
	return b
}

// Insert stores item as part of a batch and returns when the batch has
// committed. The commit goes on even if ctx ends while item waits, because
// the batch may already hold it; a caller that gives up cannot tell whether
// the event was stored, and a sender's retry is then reported as duplicate.
func (b *Batcher) Insert(ctx context.Context, item *sqlstore.NewEvent) error {
	req := &batchRequest{item: item, done: make(chan error, 1)}
	b.mu.RLock()
	if b.stopped {
		b.mu.RUnlock()
		return ErrBatcherStopped
	}
	select {
	case b.requests <- req:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop commits the events already waiting and stops the committers.
func (b *Batcher) Stop() {
	b.mu.Lock()
	if !b.stopped {
		b.stopped = true
		close(b.stop)
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *Batcher) run() {
	defer b.wg.Done()
	batch := make([]*batchRequest, 0, b.maxBatch)
	for {
		select {
		case req := <-b.requests:
			batch = append(batch[:0], req)
		case <-b.stop:
			b.drain()
			return
		}
		batch = b.fill(batch)
		b.commit(batch)
	}
}

// fill adds waiting requests to batch without blocking.
func (b *Batcher) fill(batch []*batchRequest) []*batchRequest {
	for len(batch) < b.maxBatch {
		select {
		case req := <-b.requests:
			batch = append(batch, req)
		default:
			return batch
		}
	}
	return batch
}

// drain commits what is still queued at stop.
func (b *Batcher) drain() {
	for {
		batch := b.fill(nil)
		if len(batch) == 0 {
			return
		}
		b.commit(batch)
	}
}

// commit stores a batch in one transaction. If that fails, each event is
// tried alone, so that one bad event (say, of an account deleted a moment
// ago) does not fail the events it shared the batch with.
func (b *Batcher) commit(batch []*batchRequest) {
	ctx := context.Background()
	items := make([]*sqlstore.NewEvent, len(batch))
	for i, req := range batch {
		items[i] = req.item
	}
	err := b.store.InsertEvents(ctx, items, b.enqueue)
	if err == nil || len(batch) == 1 {
		for _, req := range batch {
			req.done <- err
		}
		return
	}
	for _, req := range batch {
		req.item.Logs, req.item.Duplicate = nil, false
		req.done <- b.store.InsertEvents(ctx, []*sqlstore.NewEvent{req.item}, b.enqueue)
	}
}
