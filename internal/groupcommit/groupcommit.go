// Package groupcommit writes items from concurrent callers together: each
// committer goroutine takes every item that is waiting, up to a maximum, and
// writes them in one transaction. Under load, many small commits that each
// wait for their own disk flush become a few large ones. A lone item is
// written at once, without waiting for company.
package groupcommit

import (
	"context"
	"errors"
	"sync"
)

// ErrStopped is returned for items submitted after Stop.
var ErrStopped = errors.New("group commit stopped")

// CommitFunc writes a batch of items in one transaction.
type CommitFunc[T any] func(ctx context.Context, items []T) error

// Committer batches items of type T.
type Committer[T any] struct {
	commit   CommitFunc[T]
	reset    func(T)
	maxBatch int

	requests chan *request[T]
	stop     chan struct{}
	wg       sync.WaitGroup

	// mu guards stopped. Submit holds it for reading while it queues a
	// request, so that no request is queued after the committers drained.
	mu      sync.RWMutex
	stopped bool
}

type request[T any] struct {
	item T
	done chan error
}

// New starts committers goroutines that write batches of up to maxBatch
// items with commit. When a batch fails, each of its items is written
// alone, after reset (when not nil) undoes what the failed attempt left on
// the item, so that one bad item does not fail the others.
func New[T any](commit CommitFunc[T], reset func(T), committers, maxBatch int) *Committer[T] {
	if committers <= 0 {
		committers = 1
	}
	if maxBatch <= 0 {
		maxBatch = 100
	}
	c := &Committer[T]{
		commit: commit, reset: reset, maxBatch: maxBatch,
		requests: make(chan *request[T], maxBatch*committers),
		stop:     make(chan struct{}),
	}
	for range committers {
		c.wg.Add(1)
		go c.run()
	}
	return c
}

// Submit writes item as part of a batch and returns when the batch has
// committed. The write goes on even if ctx ends while item waits, because
// the batch may already hold it: a caller that gives up cannot tell whether
// the item was written.
func (c *Committer[T]) Submit(ctx context.Context, item T) error {
	req := &request[T]{item: item, done: make(chan error, 1)}
	c.mu.RLock()
	if c.stopped {
		c.mu.RUnlock()
		return ErrStopped
	}
	select {
	case c.requests <- req:
		c.mu.RUnlock()
	case <-ctx.Done():
		c.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop writes the items already waiting and stops the committers.
func (c *Committer[T]) Stop() {
	c.mu.Lock()
	if !c.stopped {
		c.stopped = true
		close(c.stop)
	}
	c.mu.Unlock()
	c.wg.Wait()
}

func (c *Committer[T]) run() {
	defer c.wg.Done()
	batch := make([]*request[T], 0, c.maxBatch)
	for {
		select {
		case req := <-c.requests:
			batch = append(batch[:0], req)
		case <-c.stop:
			c.drain()
			return
		}
		batch = c.fill(batch)
		c.write(batch)
	}
}

// fill adds waiting requests to batch without blocking.
func (c *Committer[T]) fill(batch []*request[T]) []*request[T] {
	for len(batch) < c.maxBatch {
		select {
		case req := <-c.requests:
			batch = append(batch, req)
		default:
			return batch
		}
	}
	return batch
}

// drain writes what is still queued at stop.
func (c *Committer[T]) drain() {
	for {
		batch := c.fill(nil)
		if len(batch) == 0 {
			return
		}
		c.write(batch)
	}
}

func (c *Committer[T]) write(batch []*request[T]) {
	ctx := context.Background()
	items := make([]T, len(batch))
	for i, req := range batch {
		items[i] = req.item
	}
	err := c.commit(ctx, items)
	if err == nil || len(batch) == 1 {
		for _, req := range batch {
			req.done <- err
		}
		return
	}
	for _, req := range batch {
		if c.reset != nil {
			c.reset(req.item)
		}
		req.done <- c.commit(ctx, []T{req.item})
	}
}
