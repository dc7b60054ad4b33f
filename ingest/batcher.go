package ingest

import (
	"context"

	"github.com/datapusher/datapusher/internal/groupcommit"
	"github.com/datapusher/datapusher/sqlstore"
)

// Batcher commits events from concurrent requests together (group commit):
// under load, many events share one transaction and one disk flush.
type Batcher struct {
	committer *groupcommit.Committer[*sqlstore.NewEvent]
}

// ErrBatcherStopped is returned for events submitted after Stop.
var ErrBatcherStopped = groupcommit.ErrStopped

// NewBatcher starts committers goroutines that store events in store, up
// to maxBatch per transaction, and queue their deliveries with enqueue in
// the same transaction. SQLite has one writer, so one committer suits it;
// PostgreSQL commits in parallel.
func NewBatcher(store *sqlstore.Store, enqueue sqlstore.EnqueueFunc, committers, maxBatch int) *Batcher {
	commit := func(ctx context.Context, items []*sqlstore.NewEvent) error {
		return store.InsertEvents(ctx, items, enqueue)
	}
	reset := func(item *sqlstore.NewEvent) { item.Logs, item.Duplicate = nil, false }
	return &Batcher{committer: groupcommit.New(commit, reset, committers, maxBatch)}
}

// Insert stores item as part of a batch and returns when the batch has
// committed. A caller whose ctx ends first cannot tell whether the event was
// stored; a sender's retry is then reported as a duplicate.
func (b *Batcher) Insert(ctx context.Context, item *sqlstore.NewEvent) error {
	return b.committer.Submit(ctx, item)
}

// Stop commits the events already waiting and stops the committers.
func (b *Batcher) Stop() { b.committer.Stop() }
