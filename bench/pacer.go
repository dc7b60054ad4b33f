package bench

import (
	"sync"
	"time"
)

// maxPacerLag is how far the senders may fall behind the schedule of a
// Pacer before it drops the missed send slots.
const maxPacerLag = 100 * time.Millisecond

// Pacer hands out evenly spaced send times at a fixed rate to all the
// senders of a load generator. It is safe for concurrent use.
//
// When the senders fall behind the schedule by more than maxLag, because all
// of them are waiting for responses, Pacer drops the missed slots instead of
// letting the senders catch up in a burst. The achieved rate is then below
// the offered one, and the report shows both.
type Pacer struct {
	mu       sync.Mutex
	interval time.Duration
	maxLag   time.Duration
	next     time.Time
	dropped  int64
}

// NewPacer returns a Pacer for rate sends per second whose first slot is
// start. The rate must be positive.
func NewPacer(rate float64, start time.Time, maxLag time.Duration) *Pacer {
	interval := max(time.Duration(float64(time.Second)/rate), 1)
	return &Pacer{interval: interval, maxLag: maxLag, next: start}
}

// Next reserves the next send slot and returns its time, which the caller
// waits for. now is the current time.
func (p *Pacer) Next(now time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if lag := now.Sub(p.next); lag > p.maxLag {
		p.dropped += int64(lag / p.interval)
		p.next = now
	}
	slot := p.next
	p.next = p.next.Add(p.interval)
	return slot
}

// Dropped returns the number of slots dropped because the senders were late.
func (p *Pacer) Dropped() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}
