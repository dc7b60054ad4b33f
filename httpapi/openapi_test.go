package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/apidocs"
	"github.com/datapusher/datapusher/apidocs/apidocstest"
	"github.com/datapusher/datapusher/health"
	"github.com/datapusher/datapusher/ingest"
	"github.com/datapusher/datapusher/internal/testdb"
	"github.com/datapusher/datapusher/metrics"
	"github.com/datapusher/datapusher/ratelimit"
	"github.com/datapusher/datapusher/sqlstore"
)

// undocumentedRoutes are the routes that openapi.yaml leaves out, because
// they serve the document itself.
var undocumentedRoutes = []Route{
	{"GET", "/api/schema/"},
	{"GET", "/swagger/"},
	{"GET", "/swagger/{path...}"},
}

// TestRoutesMatchOpenAPI checks that openapi.yaml documents every route
// that the server registers, and no other. Routes without a method are
// skipped, because the document lists operations by method.
func TestRoutesMatchOpenAPI(t *testing.T) {
	t.Parallel()
	s := NewServer(Config{SecretKey: testSecretKey, BcryptCost: bcrypt.MinCost}, nil, nil,
		slog.New(slog.DiscardHandler))

	var registered []Route
	for _, rt := range s.Routes() {
		if rt.Method == "" || slices.Contains(undocumentedRoutes, rt) {
			continue
		}
		registered = append(registered, rt)
	}
	var inDocument []Route
	for _, op := range apidocstest.DocumentedOperations() {
		inDocument = append(inDocument, Route{Method: op.Method, Path: op.Path})
	}

	require.NotEmpty(t, registered)
	for _, rt := range registered {
		assert.Contains(t, inDocument, rt, "route %s %s is not in openapi.yaml", rt.Method, rt.Path)
	}
	for _, op := range inDocument {
		assert.Contains(t, registered, op, "openapi.yaml documents %s %s, but the server has no such route",
			op.Method, op.Path)
	}
}

// TestOperationalRoutesMatchOpenAPI serves the real health and metrics
// handlers through the router and checks their responses against
// openapi.yaml. serveRequest skips these paths, because the fixture serves
// them with stubs.
func TestOperationalRoutesMatchOpenAPI(t *testing.T) {
	t.Parallel()
	store := testdb.Open(t, testdb.Dialects[0])
	passing := health.Check{Name: "migrations", Run: func(context.Context) error { return nil }}
	failing := health.Check{Name: "database", Run: func(context.Context) error {
		return &health.Error{Message: "ping failed", Class: "connection_refused"}
	}}
	newHandler := func(ready http.Handler, metricsToken string) http.Handler {
		cfg := Config{
			SecretKey: testSecretKey, BcryptCost: bcrypt.MinCost, HealthHandler: health.Live(),
			ReadyHandler: ready, MetricsHandler: metrics.New(nil).Handler(metricsToken),
		}
		return NewServer(cfg, store, &fakeEvents{}, slog.New(slog.DiscardHandler)).Handler()
	}
	send := func(t *testing.T, h http.Handler, method, path, authorization string) *response {
		t.Helper()
		req := httptest.NewRequest(method, path, nil)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		apiDocs(t).Check(t, req, nil, rec.Result(), rec.Body.Bytes())
		return &response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	}

	ready := newHandler(health.Ready(nil, time.Second, passing), "")
	unready := newHandler(health.Ready(nil, time.Second, passing, failing), "metrics-token")
	for name, tc := range map[string]struct {
		handler                     http.Handler
		method, path, authorization string
		want                        int
	}{
		"Health":            {ready, "GET", "/healthz", "", http.StatusOK},
		"HealthHead":        {ready, "HEAD", "/healthz", "", http.StatusOK},
		"Ready":             {ready, "GET", "/readyz", "", http.StatusOK},
		"NotReady":          {unready, "GET", "/readyz", "", http.StatusServiceUnavailable},
		"Metrics":           {ready, "GET", "/metrics", "", http.StatusOK},
		"MetricsWithToken":  {unready, "GET", "/metrics", "Bearer metrics-token", http.StatusOK},
		"MetricsNeedsToken": {unready, "GET", "/metrics", "", http.StatusUnauthorized},
		"MetricsWrongToken": {unready, "GET", "/metrics", "Bearer wrong", http.StatusUnauthorized},
	} {
		t.Run(name, func(t *testing.T) {
			resp := send(t, tc.handler, tc.method, tc.path, tc.authorization)
			require.Equal(t, tc.want, resp.status, "%s", resp.body)
		})
	}
}

// TestSharedResponsesMatchOpenAPI sends every checked route the requests
// that get the responses most routes share: 304, 413, 429, 500 and 503.
// serveRequest checks each response against openapi.yaml. For 413 and 429
// the test also checks the reverse: a route returns the status exactly when
// openapi.yaml lists it for that route.
func TestSharedResponsesMatchOpenAPI(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, testdb.Open(t, testdb.Dialects[0]), Config{})
	routes := checkedRoutes(fx.server)
	newHandler := func(cfg Config, store *sqlstore.Store, events datapusher.EventSubmitter) http.Handler {
		cfg.SecretKey, cfg.BcryptCost, cfg.Enqueue = testSecretKey, bcrypt.MinCost, fx.server.cfg.Enqueue
		return NewServer(cfg, store, events, slog.New(slog.DiscardHandler)).Handler()
	}
	send := func(t *testing.T, h http.Handler, rt Route, w *world) *response {
		t.Helper()
		return doRequest(t, h, rt.Method, w.path(rt.Path), fx.admin, permissionMatrix[rt].body(fx, w, fx.admin))
	}

	t.Run("NotModified", func(t *testing.T) {
		w := fx.newWorld(t)
		for _, rt := range routes {
			if rt.Method != http.MethodGet {
				continue
			}
			// Statistics without "to" end now, so their body changes with
			// every request.
			path := w.path(rt.Path)
			if strings.HasSuffix(rt.Path, "/stats/") {
				path += "?to=2026-01-02T00:00:00Z"
			}
			first := doRequest(t, fx.server.Handler(), rt.Method, path, fx.admin, nil)
			require.Equal(t, http.StatusOK, first.status, "%s %s: %s", rt.Method, rt.Path, first.body)
			req, _ := newRequest(t, rt.Method, path, fx.admin, nil)
			req.Header.Set("If-None-Match", first.header.Get("ETag"))
			resp := serveRequest(t, fx.server.Handler(), req, nil)
			require.Equal(t, http.StatusNotModified, resp.status, "%s %s: %s", rt.Method, rt.Path, resp.body)
		}
	})
	t.Run("TooLarge", func(t *testing.T) {
		h := newHandler(Config{MaxBodyBytes: 16}, fx.store, fx.events)
		body := map[string]string{"padding": strings.Repeat("x", 64)}
		for _, rt := range routes {
			// Routes that read no body run, and some of them delete their
			// object, so each route gets a new world.
			w := fx.newWorld(t)
			resp := doRequest(t, h, rt.Method, w.path(rt.Path), fx.admin, body)
			requireStatusIfDocumented(t, rt, http.StatusRequestEntityTooLarge, resp)
		}
	})
	t.Run("Throttled", func(t *testing.T) {
		events := &acceptingEvents{err: &ingest.RateLimitedError{Result: rejectedResult}}
		h := newHandler(Config{Limiter: rejectingLimiter{}}, fx.store, events)
		w := fx.newWorld(t)
		for _, rt := range routes {
			resp := send(t, h, rt, w)
			requireStatusIfDocumented(t, rt, http.StatusTooManyRequests, resp)
		}
	})
	t.Run("InternalError", func(t *testing.T) {
		closed := testdb.Open(t, testdb.Dialects[0])
		require.NoError(t, closed.Close())
		h := newHandler(Config{}, closed, &acceptingEvents{err: errors.New("event store failed")})
		w := fx.newWorld(t)
		for _, rt := range routes {
			resp := send(t, h, rt, w)
			require.Equal(t, http.StatusInternalServerError, resp.status, "%s %s: %s", rt.Method, rt.Path, resp.body)
		}
	})
	t.Run("Unavailable", func(t *testing.T) {
		store := openBehindProxy(t)
		unavailable := datapusher.Errorf(datapusher.EUNAVAILABLE, "database unavailable")
		h := newHandler(Config{}, store, &acceptingEvents{err: unavailable})
		w := fx.newWorld(t)
		for _, rt := range routes {
			resp := send(t, h, rt, w)
			require.Equal(t, http.StatusServiceUnavailable, resp.status, "%s %s: %s", rt.Method, rt.Path, resp.body)
		}
	})
}

// checkedRoutes returns the routes of s whose responses serveRequest
// checks against openapi.yaml: every documented route but the operational
// ones.
func checkedRoutes(s *Server) []Route {
	var out []Route
	for _, rt := range s.Routes() {
		if rt.Method != "" && !slices.Contains(undocumentedRoutes, rt) && documented(rt.Path) {
			out = append(out, rt)
		}
	}
	return out
}

// requireStatusIfDocumented checks that resp has status exactly when
// openapi.yaml lists status for the route.
func requireStatusIfDocumented(t *testing.T, rt Route, status int, resp *response) {
	t.Helper()
	doc, err := loadDocument()
	require.NoError(t, err)
	listed := doc.Paths.Value(rt.Path).GetOperation(rt.Method).Responses.Status(status) != nil
	if listed {
		require.Equal(t, status, resp.status, "%s %s lists %d in openapi.yaml: %s", rt.Method, rt.Path, status, resp.body)
	} else {
		require.NotEqual(t, status, resp.status, "%s %s does not list %d in openapi.yaml", rt.Method, rt.Path, status)
	}
}

// loadDocument loads openapi.yaml once for requireStatusIfDocumented, which
// only reads it.
var loadDocument = sync.OnceValues(apidocs.Document)

// rejectedResult is the result of a request over its rate limit.
var rejectedResult = ratelimit.Result{Limit: 20, RetryAfter: 3 * time.Second, ResetAfter: 3 * time.Second}

// rejectingLimiter rejects every request with rejectedResult.
type rejectingLimiter struct{}

func (rejectingLimiter) Allow(context.Context, string, ratelimit.Limit) (ratelimit.Result, error) {
	return rejectedResult, nil
}

func (rejectingLimiter) AllowN(context.Context, string, ratelimit.Limit, int) (ratelimit.Result, error) {
	return rejectedResult, nil
}

// openBehindProxy opens a store on a new PostgreSQL schema through a
// loopback TCP proxy, then stops the proxy, so that every later query
// fails to reach the database. The proxy keeps its port and closes each new
// connection, so that no other process can take the port in the meantime.
func openBehindProxy(t *testing.T) *sqlstore.Store {
	t.Helper()
	dsn, err := url.Parse(testdb.DSN(t, sqlstore.DialectPostgres))
	require.NoError(t, err)
	proxy := startProxy(t, dsn.Host)
	dsn.Host = proxy.addr()

	store, err := sqlstore.Open(context.Background(), dsn.String())
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	proxy.stop()
	return store
}

// tcpProxy forwards loopback connections to target until stop is called.
type tcpProxy struct {
	listener net.Listener
	target   string

	mu      sync.Mutex
	stopped bool
	conns   []net.Conn
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &tcpProxy{listener: listener, target: target}
	t.Cleanup(func() {
		listener.Close()
		p.stop()
	})
	go p.serve()
	return p
}

func (p *tcpProxy) addr() string { return p.listener.Addr().String() }

func (p *tcpProxy) serve() {
	for {
		client, err := p.listener.Accept()
		if err != nil {
			return
		}
		if !p.track(client) {
			client.Close()
			continue
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil || !p.track(server) {
			client.Close()
			if server != nil {
				server.Close()
			}
			continue
		}
		go func() { _, _ = io.Copy(server, client); server.Close() }()
		go func() { _, _ = io.Copy(client, server); client.Close() }()
	}
}

// track records conn for stop, or reports false once the proxy is stopped.
func (p *tcpProxy) track(conn net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	p.conns = append(p.conns, conn)
	return true
}

// stop closes every forwarded connection and makes the proxy close new ones.
func (p *tcpProxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	for _, conn := range p.conns {
		conn.Close()
	}
	p.conns = nil
}
