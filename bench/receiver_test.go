package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseSentNanos(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		body string
		want int64
		ok   bool
	}{
		{"First", `{"bench_sent_ns":123456789,"seq":1}`, 123456789, true},
		{"Later", `{"seq":1,"bench_sent_ns":42}`, 42, true},
		{"Missing", `{"seq":1}`, 0, false},
		{"NotANumber", `{"bench_sent_ns":"x"}`, 0, false},
		{"Empty", ``, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := parseSentNanos([]byte(tc.body))
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestAppendEventBody(t *testing.T) {
	t.Parallel()
	body := appendEventBody(nil, 1234567890, 7, strings.Repeat("x", 150))
	var event struct {
		SentNanos int64  `json:"bench_sent_ns"`
		Seq       int64  `json:"seq"`
		Pad       string `json:"pad"`
	}
	require.NoError(t, json.Unmarshal(body, &event))
	require.Equal(t, int64(1234567890), event.SentNanos)
	require.Equal(t, int64(7), event.Seq)
	require.Len(t, event.Pad, 150)

	sent, ok := parseSentNanos(body)
	require.True(t, ok)
	require.Equal(t, int64(1234567890), sent)
}

func TestReceiverRecordsLatency(t *testing.T) {
	t.Parallel()
	// A clock started a second ago, so that a send 5 ms ago is positive.
	c := &clock{start: time.Now().Add(-time.Second)}
	r, err := StartReceiver(c, 0)
	require.NoError(t, err)
	t.Cleanup(r.Close)

	client := newHTTPClient(1)
	t.Cleanup(client.CloseIdleConnections)
	sent := c.now() - 5*time.Millisecond
	resp, err := client.Post(r.URL+healthyPath+"0", "application/json",
		bytes.NewReader(appendEventBody(nil, int64(sent), 1, "")))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	require.Equal(t, int64(1), r.Delivered())
	require.Equal(t, uint64(1), r.Latency.Count())
	require.GreaterOrEqual(t, r.Latency.Max(), 5*time.Millisecond)
}

func TestReceiverCountsInvalidBody(t *testing.T) {
	t.Parallel()
	r, err := StartReceiver(newClock(), 0)
	require.NoError(t, err)
	t.Cleanup(r.Close)

	client := newHTTPClient(1)
	t.Cleanup(client.CloseIdleConnections)
	resp, err := client.Post(r.URL+healthyPath+"0", "application/json", strings.NewReader(`{"a":1}`))
	require.NoError(t, err)
	resp.Body.Close()

	require.Equal(t, int64(1), r.Delivered())
	require.Equal(t, int64(1), r.InvalidBodies())
	require.Equal(t, uint64(0), r.Latency.Count())
}

func TestReceiverHangsUntilClientGivesUp(t *testing.T) {
	t.Parallel()
	r, err := StartReceiver(newClock(), 0)
	require.NoError(t, err)
	t.Cleanup(r.Close)

	client := newHTTPClient(1)
	t.Cleanup(client.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL+hangPath+"0", strings.NewReader(`{}`))
	require.NoError(t, err)
	_, err = client.Do(req)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	require.Equal(t, int64(1), r.Hangs())
	require.Equal(t, int64(0), r.Delivered())
}

func TestReceiverDelay(t *testing.T) {
	t.Parallel()
	r, err := StartReceiver(newClock(), 50*time.Millisecond)
	require.NoError(t, err)
	t.Cleanup(r.Close)

	client := newHTTPClient(1)
	t.Cleanup(client.CloseIdleConnections)
	start := time.Now()
	resp, err := client.Post(r.URL+healthyPath+"0", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
	require.Equal(t, int64(1), r.Delivered())
}

func TestLoopbackOnly(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"127.0.0.1:80", "127.1.2.3:8000", "[::1]:443", "[::ffff:127.0.0.1]:80"} {
		require.NoError(t, loopbackOnly("tcp", addr, nil), addr)
	}
	for _, addr := range []string{"10.0.0.1:80", "169.254.169.254:80", "[2001:db8::1]:80", "localhost:80", "nonsense"} {
		require.Error(t, loopbackOnly("tcp", addr, nil), addr)
	}
}

func TestNetworkErrorKind(t *testing.T) {
	t.Parallel()
	dialError := func(errno syscall.Errno) error {
		return &url.Error{Op: "Post", URL: "http://127.0.0.1:1/", Err: &net.OpError{
			Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno),
		}}
	}
	require.Equal(t, "connection refused", networkErrorKind(dialError(syscall.ECONNREFUSED)))
	require.Equal(t, "connection reset", networkErrorKind(dialError(syscall.ECONNRESET)))
	require.Equal(t, "timeout", networkErrorKind(context.DeadlineExceeded))
	require.Equal(t, "connection closed", networkErrorKind(fmt.Errorf("read: %w", io.EOF)))
	require.Equal(t, "not loopback", networkErrorKind(fmt.Errorf("dial: %w", errNotLoopback)))
	require.Equal(t, "network error", networkErrorKind(errors.New("something else")))
}
