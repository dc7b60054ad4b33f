package delivery

import (
	"container/list"
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/datapusher/datapusher/delivery/sender"
)

// initialPerDestination is the limit of requests in flight that a
// destination starts with, before its responses show how many it takes.
const initialPerDestination = 10

// destinationSlots are the request slots of one destination. Their number,
// the limit, adapts to the destination's responses, between 1 and a maximum.
// While requests wait for a slot, each limit's worth of successful responses
// adds one slot (see release for the successes that do not count). A timeout, a connection error, 429 Too Many Requests or a
// 5xx status halves the limit, at most once per limit's worth of responses,
// so a burst of failures of the requests in flight together counts once.
type destinationSlots struct {
	max int

	finished     atomic.Int64 // requests that released their slot
	lastFinished atomic.Int64 // when one last did, in Unix nanoseconds

	mu       sync.Mutex
	limit    int
	inFlight int
	// waiters holds one channel per waiting request, oldest first. A slot
	// is granted by counting it in inFlight and closing the channel.
	waiters list.List
	// successes counts successful responses while requests waited, since
	// the limit last grew. responses counts all of them since it last
	// halved.
	successes, responses int
	// busySince is when the slots were last found all taken, after a
	// request had found one free. It is zero while requests find one free.
	busySince time.Time

	// holders counts the requests between Worker.holdSlots and dropSlots,
	// and lastUsed is when one last started or ended. The Worker's mutex
	// guards both.
	holders  int
	lastUsed time.Time
}

// newDestinationSlots returns slots whose limit starts at initial and grows
// up to maxLimit.
func newDestinationSlots(initial, maxLimit int) *destinationSlots {
	maxLimit = max(maxLimit, 1)
	return &destinationSlots{max: maxLimit, limit: min(max(initial, 1), maxLimit)}
}

// Limit returns how many requests the destination may have in flight now.
func (d *destinationSlots) Limit() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.limit
}

// acquire takes one of the destination's slots, waiting up to wait for one
// to free up, or, when untilStuck, for as long as some request of the
// destination finishes within each wait. When it gets none it reports false
// and how long the destination has had no free slot: the longer a
// destination stays saturated, the longer its waiting deliveries stay away.
func (d *destinationSlots) acquire(ctx context.Context, wait time.Duration, untilStuck bool) (bool, time.Duration) {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inFlight < d.limit && d.waiters.Len() == 0 {
		d.inFlight++
		d.busySince = time.Time{}
		return true, 0
	}
	if d.busySince.IsZero() {
		d.busySince = now
	}
	busyFor := now.Sub(d.busySince)
	if wait <= 0 {
		return false, busyFor
	}
	if untilStuck && busyFor > wait && now.Sub(time.Unix(0, d.lastFinished.Load())) > wait {
		// Saturated, and no request finished within a whole wait: the
		// destination is stuck, so waiting again would only delay the batch.
		return false, busyFor
	}

	// The request keeps its place in the queue across rounds.
	granted := make(chan struct{})
	waiter := d.waiters.PushBack(granted)
	for {
		finished := d.finished.Load()
		d.mu.Unlock()
		timer := time.NewTimer(wait)
		select {
		case <-granted:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		d.mu.Lock()

		select {
		case <-granted:
			// Granted, possibly just as the wait ended: the slot is ours.
			return true, 0
		default:
		}
		if ctx.Err() != nil || !untilStuck || d.finished.Load() == finished {
			d.waiters.Remove(waiter)
			return false, time.Since(busySinceOr(d.busySince, now))
		}
	}
}

// busySinceOr returns busySince, or fallback when it is zero.
func busySinceOr(busySince, fallback time.Time) time.Time {
	if busySince.IsZero() {
		return fallback
	}
	return busySince
}

// release adapts the limit to res and frees the slot of its request. A zero
// Result, from a delivery that stopped before its request, and a request
// canceled at shutdown leave the limit unchanged. A success counts toward a
// new slot only when mayGrow is true.
func (d *destinationSlots) release(res sender.Result, mayGrow bool) {
	d.mu.Lock()
	switch {
	case overloaded(res):
		d.responses++
		if d.responses >= d.limit && d.limit > 1 {
			d.limit = max(d.limit/2, 1)
			d.responses, d.successes = 0, 0
		}
	case res.Success():
		d.responses++
		if mayGrow && d.waiters.Len() > 0 && d.limit < d.max {
			d.successes++
			if d.successes >= d.limit {
				d.limit++
				d.successes = 0
			}
		}
	case res.Class != "" && res.Class != sender.ClassCanceled:
		d.responses++
	}
	d.inFlight--
	for d.inFlight < d.limit && d.waiters.Len() > 0 {
		oldest := d.waiters.Remove(d.waiters.Front()).(chan struct{})
		d.inFlight++
		close(oldest)
	}
	// A waiter checks for finished requests under d.mu, so the count
	// changes before the lock is released.
	d.finished.Add(1)
	d.lastFinished.Store(time.Now().UnixNano())
	d.mu.Unlock()
}

// overloaded reports whether res suggests that the destination gets more
// requests than it can handle: a timeout, a connection error, 429 Too Many
// Requests or a 5xx status.
func overloaded(res sender.Result) bool {
	switch res.Class {
	case sender.ClassTimeout, sender.ClassConnect:
		return true
	case sender.ClassHTTPStatus:
		return res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500
	default:
		return false
	}
}
