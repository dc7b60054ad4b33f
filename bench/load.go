package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// requestTimeout bounds each request of the load generator and the setup
// client, so a stuck server cannot hold a phase open.
const requestTimeout = 10 * time.Second

// loadSpec is one run of the load generator.
type loadSpec struct {
	URL   string
	Token string // CL-X-TOKEN header; empty for the ceiling servers

	Concurrency int
	Rate        float64 // offered events per second; 0 sends as fast as the server responds
	Duration    time.Duration
	Count       int64 // events to send at most; 0 means no limit
	PayloadSize int   // approximate bytes per event body
}

// loadStats is the live state of a load run, read by the progress printer
// while the run goes on.
type loadStats struct {
	sent     atomic.Int64
	accepted atomic.Int64
	failed   atomic.Int64

	// Latency is the time from sending the request to reading the whole
	// response, of accepted events only.
	Latency Histogram

	mu     sync.Mutex
	errors map[string]int64
}

func (s *loadStats) addError(kind string) {
	s.failed.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.errors == nil {
		s.errors = map[string]int64{}
	}
	s.errors[kind]++
}

// Errors returns a copy of the error counts by kind.
func (s *loadStats) Errors() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.errors)
}

// loadResult is the outcome of a load run.
type loadResult struct {
	Elapsed      time.Duration // from the first send to the last response
	DroppedSlots int64         // send slots of a paced run that the senders missed
}

// runLoad sends event bodies to spec.URL from spec.Concurrency senders until
// spec.Duration has passed, spec.Count events were sent or ctx ends. Each
// body carries its send time on c in bench_sent_ns, in nanoseconds. Requests
// in flight at the end of the duration finish, within requestTimeout.
func runLoad(ctx context.Context, client *http.Client, c *clock, spec loadSpec, stats *loadStats) loadResult {
	start := time.Now()
	deadline := start.Add(spec.Duration)
	var pacer *Pacer
	if spec.Rate > 0 {
		pacer = NewPacer(spec.Rate, start, maxPacerLag)
	}
	pad := strings.Repeat("x", max(spec.PayloadSize-len(`{"bench_sent_ns":10000000000,"seq":100000,"pad":""}`), 0))

	var seq atomic.Int64
	var senders sync.WaitGroup
	for range max(spec.Concurrency, 1) {
		senders.Go(func() {
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				n := seq.Add(1)
				if spec.Count > 0 && n > spec.Count {
					return
				}
				if pacer != nil && !waitForSlot(ctx, timer, pacer, deadline) {
					return
				}
				sendEvent(ctx, client, c, spec, n, pad, stats)
			}
		})
	}
	senders.Wait()

	result := loadResult{Elapsed: time.Since(start)}
	if pacer != nil {
		result.DroppedSlots = pacer.Dropped()
	}
	return result
}

// waitForSlot waits for the next send slot of pacer and reports whether it
// came before the deadline and the end of ctx.
func waitForSlot(ctx context.Context, timer *time.Timer, pacer *Pacer, deadline time.Time) bool {
	slot := pacer.Next(time.Now())
	if !slot.Before(deadline) {
		return false
	}
	wait := time.Until(slot)
	if wait <= 0 {
		return true
	}
	timer.Reset(wait)
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// sendEvent sends event number seq and records the outcome in stats.
func sendEvent(ctx context.Context, client *http.Client, c *clock, spec loadSpec, seq int64, pad string, stats *loadStats) {
	// The transport may still read a request body after Do returns, so
	// each request gets its own buffer.
	body := appendEventBody(make([]byte, 0, len(pad)+64), int64(c.now()), seq, pad)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, spec.URL, bytes.NewReader(body))
	if err != nil {
		stats.addError("invalid request")
		return
	}
	req.Header.Set("Content-Type", "application/json")
	if spec.Token != "" {
		req.Header.Set("CL-X-TOKEN", spec.Token)
		req.Header.Set("CL-X-EVENT-ID", "bench-"+strconv.FormatInt(seq, 10))
	}

	stats.sent.Add(1)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return // interrupted, not a server error
		}
		stats.addError(networkErrorKind(err))
		// Back off a little, so that a server that is gone does not
		// turn the senders into a busy loop.
		time.Sleep(10 * time.Millisecond)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		stats.addError(fmt.Sprintf("http %d", resp.StatusCode))
		return
	}
	stats.accepted.Add(1)
	stats.Latency.Record(time.Since(start))
}

// appendEventBody appends the JSON body of one benchmark event to dst. The
// bench_sent_ns field comes first, so the receiver finds it fast.
func appendEventBody(dst []byte, sentNanos, seq int64, pad string) []byte {
	dst = append(dst, `{"bench_sent_ns":`...)
	dst = strconv.AppendInt(dst, sentNanos, 10)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, `,"pad":"`...)
	dst = append(dst, pad...)
	return append(dst, `"}`...)
}

// networkErrorKind names the kind of a request error for the error counts.
func networkErrorKind(err error) string {
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.Is(err, errNotLoopback):
		return "not loopback"
	}
	return "network error"
}

// errNotLoopback rejects a connection to an address outside 127.0.0.0/8
// and ::1.
var errNotLoopback = errors.New("address is not loopback")

// newHTTPClient returns a keep-alive client that keeps up to conns idle
// connections and connects only to loopback addresses.
func newHTTPClient(conns int) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: loopbackOnly}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: requestTimeout,
		DisableCompression:    true,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   requestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// loopbackOnly is a net.Dialer Control function that rejects every address
// outside the loopback range.
func loopbackOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("dial %s: %w", address, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Unmap().IsLoopback() {
		return fmt.Errorf("dial %s: %w", address, errNotLoopback)
	}
	return nil
}
