package delivery

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/datapusher/datapusher/delivery/sender"
)

// initialPerDestination is the limit of requests in flight that a
// destination starts with, before its responses show how many it takes.
const initialPerDestination = 10

// destinationSlots are the request slots of one destination. Their number,
// the limit, adapts to the destination's responses, between 1 and a maximum.
// While requests wait for a slot, each limit's worth of successful responses
// adds one slot. A timeout, a connection error, 429 Too Many Requests or a
// 5xx status halves the limit, at most once per limit's worth of responses,
// so a burst of failures of the requests in flight together counts once.
type destinationSlots struct {
	// sem has one unit per slot up to the maximum. The units above the
	// limit are held in reserve, so requests only get the ones below it.
	sem *semaphore.Weighted
	max int

	finished     atomic.Int64 // requests that released their slot
	lastFinished atomic.Int64 // when one last did, in Unix nanoseconds

	mu    sync.Mutex
	limit int
	// reserved counts the units held above the limit. owed counts the units
	// still to reserve when requests in flight finish, after the limit
	// dropped below their number.
	reserved, owed int
	// successes counts successful responses while saturated since the
	// limit last grew. responses counts all of them since it last halved.
	successes, responses int
	// busySince is when the slots were last found all taken, after a
	// request had found one free. It is zero while requests find one free.
	busySince time.Time
}

// newDestinationSlots returns slots whose limit starts at initial and grows
// up to maxLimit.
func newDestinationSlots(initial, maxLimit int) *destinationSlots {
	maxLimit = max(maxLimit, 1)
	initial = min(max(initial, 1), maxLimit)
	d := &destinationSlots{sem: semaphore.NewWeighted(int64(maxLimit)), max: maxLimit, limit: initial}
	d.reserved = maxLimit - initial
	if d.reserved > 0 && !d.sem.TryAcquire(int64(d.reserved)) {
		panic("destination slots: a new semaphore is not empty")
	}
	return d
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
	if d.sem.TryAcquire(1) {
		d.mu.Lock()
		d.busySince = time.Time{}
		d.mu.Unlock()
		return true, 0
	}

	now := time.Now()
	d.mu.Lock()
	if d.busySince.IsZero() {
		d.busySince = now
	}
	busyFor := now.Sub(d.busySince)
	d.mu.Unlock()

	if wait <= 0 {
		return false, busyFor
	}
	if untilStuck && busyFor > wait && now.Sub(time.Unix(0, d.lastFinished.Load())) > wait {
		// Saturated, and no request finished within a whole wait: the
		// destination is stuck, so waiting again would only delay the batch.
		return false, busyFor
	}

	for {
		finished := d.finished.Load()
		waitCtx, cancel := context.WithTimeout(ctx, wait)
		err := d.sem.Acquire(waitCtx, 1)
		cancel()
		if err == nil {
			return true, 0
		}
		if ctx.Err() != nil || !untilStuck || d.finished.Load() == finished {
			return false, time.Since(d.busySinceLocked())
		}
	}
}

func (d *destinationSlots) busySinceLocked() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.busySince.IsZero() {
		return time.Now()
	}
	return d.busySince
}

// release adapts the limit to res and frees the slot of its request. A
// delivery that stopped before its request passes a zero Result, which
// leaves the limit unchanged.
func (d *destinationSlots) release(res sender.Result) {
	d.mu.Lock()
	switch {
	case overloaded(res):
		d.responses++
		if d.responses >= d.limit && d.limit > 1 {
			d.shrink(d.limit / 2)
		}
	case res.Success():
		d.responses++
		if !d.busySince.IsZero() && d.limit < d.max {
			d.successes++
			if d.successes >= d.limit {
				d.grow()
			}
		}
	case res.Class != "":
		d.responses++
	}
	if d.owed > 0 {
		// The unit goes to the reserve instead of to a waiting request.
		d.owed--
		d.reserved++
	} else {
		d.sem.Release(1)
	}
	d.mu.Unlock()

	d.finished.Add(1)
	d.lastFinished.Store(time.Now().UnixNano())
}

// grow raises the limit by one slot. d.mu is held.
func (d *destinationSlots) grow() {
	d.limit++
	d.successes = 0
	if d.owed > 0 {
		d.owed--
		return
	}
	d.reserved--
	d.sem.Release(1)
}

// shrink lowers the limit to limit. Units in use by requests in flight are
// reserved when those finish. d.mu is held.
func (d *destinationSlots) shrink(limit int) {
	for d.limit > max(limit, 1) {
		d.limit--
		if d.sem.TryAcquire(1) {
			d.reserved++
		} else {
			d.owed++
		}
	}
	d.responses, d.successes = 0, 0
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
