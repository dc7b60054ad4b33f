package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// runSink serves a receiver that prints each request it gets, for trying
// Data Pusher out on one machine.
func runSink(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9000", "host:port to listen on")
	status := fs.Int("status", http.StatusOK, "status code to answer with")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *status < 200 || *status > 599 {
		return fmt.Errorf("invalid -status %d: want 200 to 599", *status)
	}

	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	fmt.Fprintf(stdout, "sink listening on http://%s/ and answering %d\n", listener.Addr(), *status)

	var mu sync.Mutex
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		mu.Lock()
		printRequest(stdout, r, body)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(*status)
		_, _ = io.WriteString(w, `{"received": true}`)
	})
	server := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = server.Shutdown(shutdownCtx)
	}()
	if err := server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve sink: %w", err)
	}
	return nil
}

func printRequest(w io.Writer, r *http.Request, body []byte) {
	fmt.Fprintf(w, "--- %s %s %s\n", time.Now().Format(time.RFC3339), r.Method, r.URL.RequestURI())
	names := make([]string, 0, len(r.Header))
	for name := range r.Header {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "%s: %s\n", name, strings.Join(r.Header[name], ", "))
	}
	if len(body) > 0 {
		fmt.Fprintf(w, "\n%s\n", body)
	}
}
