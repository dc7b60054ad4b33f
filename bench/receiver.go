package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Receiver paths. A destination URL is the receiver's URL followed by one of
// them and a destination number.
const (
	healthyPath = "/hook/"
	hangPath    = "/hang/"
)

// Receiver is the webhook receiver of the benchmark, served on 127.0.0.1 in
// the harness process. Requests to /hook/N are healthy deliveries: the
// receiver records their end-to-end latency from the bench_sent_ns field of
// the body, waits the response delay and responds with 200. Requests to /hang/N
// get no response until the client ends the request.
type Receiver struct {
	// URL is the base URL, http://127.0.0.1:PORT.
	URL string

	clock  *clock
	delay  time.Duration
	server *http.Server
	done   chan struct{}

	// Latency is the time from the send of an event to the arrival of its
	// healthy deliveries.
	Latency Histogram

	delivered   atomic.Int64 // 200 responses to healthy deliveries
	hangs       atomic.Int64 // requests to /hang/N
	invalidBody atomic.Int64 // healthy deliveries without bench_sent_ns
}

// StartReceiver serves a Receiver on a free port of 127.0.0.1. Every
// healthy delivery gets its response after delay.
func StartReceiver(c *clock, delay time.Duration) (*Receiver, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen on 127.0.0.1: %w", err)
	}
	r := &Receiver{URL: "http://" + listener.Addr().String(), clock: c, delay: delay, done: make(chan struct{})}
	r.server = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(r.done)
		_ = r.server.Serve(listener)
	}()
	return r, nil
}

// Delivered returns the number of healthy deliveries that got their 200
// response so far.
func (r *Receiver) Delivered() int64 { return r.delivered.Load() }

// Hangs returns the number of requests to the hanging destinations.
func (r *Receiver) Hangs() int64 { return r.hangs.Load() }

// InvalidBodies returns the number of healthy deliveries whose body had no
// bench_sent_ns field, which are counted but have no latency.
func (r *Receiver) InvalidBodies() int64 { return r.invalidBody.Load() }

// Close stops the receiver and closes its connections, which ends the
// requests to the hanging destinations.
func (r *Receiver) Close() {
	_ = r.server.Close()
	<-r.done
}

var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// ServeHTTP handles one delivery.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	arrived := r.clock.now()
	if strings.HasPrefix(req.URL.Path, hangPath) {
		r.hangs.Add(1)
		<-req.Context().Done()
		return
	}

	buf := bodyBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer bodyBuffers.Put(buf)
	if _, err := buf.ReadFrom(req.Body); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if sent, ok := parseSentNanos(buf.Bytes()); ok {
		r.Latency.Record(arrived - time.Duration(sent))
	} else {
		r.invalidBody.Add(1)
	}

	if r.delay > 0 {
		timer := time.NewTimer(r.delay)
		select {
		case <-timer.C:
		case <-req.Context().Done():
			timer.Stop()
			return
		}
	}
	r.delivered.Add(1)
	w.WriteHeader(http.StatusOK)
}

// sentField starts the body of every benchmark event.
var sentField = []byte(`"bench_sent_ns":`)

// parseSentNanos returns the value of the bench_sent_ns field of an event
// body without decoding the whole JSON object, which for 16 KiB bodies would
// cost the receiver more than the rest of the request.
func parseSentNanos(body []byte) (int64, bool) {
	i := bytes.Index(body, sentField)
	if i < 0 {
		return 0, false
	}
	digits := body[i+len(sentField):]
	var n int64
	length := 0
	for length < len(digits) && length < 19 && digits[length] >= '0' && digits[length] <= '9' {
		n = n*10 + int64(digits[length]-'0')
		length++
	}
	return n, length > 0
}

// bareServer is the ceiling for the ingest path: a net/http handler that
// reads the body and responds with 202 without storing anything.
type bareServer struct {
	URL    string
	server *http.Server
	done   chan struct{}
}

func startBareServer() (*bareServer, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen on 127.0.0.1: %w", err)
	}
	b := &bareServer{URL: "http://" + listener.Addr().String(), done: make(chan struct{})}
	b.server = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			_, _ = io.Copy(io.Discard, req.Body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, `{"success":true,"message":"Data Received"}`)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		defer close(b.done)
		_ = b.server.Serve(listener)
	}()
	return b, nil
}

func (b *bareServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.server.Shutdown(ctx); err != nil {
		_ = b.server.Close()
	}
	<-b.done
}

// clock measures time since the start of a benchmark run on the monotonic
// clock. Event bodies carry such times, so a latency never depends on
// changes of the wall clock.
type clock struct{ start time.Time }

func newClock() *clock { return &clock{start: time.Now()} }

func (c *clock) now() time.Duration { return time.Since(c.start) }
