package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/datapusher/datapusher/apidocs"
	"github.com/datapusher/datapusher/delivery"
	"github.com/datapusher/datapusher/delivery/sender"
	"github.com/datapusher/datapusher/health"
	"github.com/datapusher/datapusher/httpapi"
	"github.com/datapusher/datapusher/ingest"
	"github.com/datapusher/datapusher/metrics"
	"github.com/datapusher/datapusher/ratelimit"
	"github.com/datapusher/datapusher/sqlstore"
)

type serverMode int

const (
	modeServe serverMode = iota
	modeAPI
	modeWorker
)

func (m serverMode) name() string {
	return [...]string{"serve", "api", "worker"}[m]
}

func (m serverMode) servesHTTP() bool { return m != modeWorker }
func (m serverMode) delivers() bool   { return m != modeAPI }

// runServer runs the API, the workers or both until ctx ends, then shuts
// down: the listener closes first, in-flight requests and deliveries get
// ShutdownTimeout to finish, and deliveries still running after that are
// queued again for the next start.
func runServer(ctx context.Context, args []string, stderr io.Writer, mode serverMode) error {
	cfg, err := parseConfig(mode.name(), args, stderr)
	if err != nil {
		return err
	}
	logger, err := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	networks, err := cfg.allowedNetworks()
	if err != nil {
		return err
	}
	schedule, err := cfg.retrySchedule()
	if err != nil {
		return err
	}

	if cfg.PprofAddr != "" {
		go servePprof(ctx, cfg.PprofAddr, logger)
	}
	store, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Warm(ctx); err != nil {
		logger.Warn("database connections will open on demand", "error", err)
	}
	redisClient, err := openRedis(ctx, cfg, logger)
	if err != nil {
		return err
	}
	if redisClient != nil {
		defer redisClient.Close()
	}
	m := metrics.New(logger)
	if err := m.WatchQueue(store.QueueStats); err != nil {
		return fmt.Errorf("watch queue: %w", err)
	}

	// The worker is registered in every mode, because the queue checks the
	// kind of each job it inserts; only delivering modes run it.
	s := sender.New(sender.Options{Timeout: cfg.DeliveryTimeout, AllowedNetworks: networks})
	worker := delivery.NewWorker(store, s, delivery.Config{
		Schedule: schedule, Concurrency: cfg.Workers, MaxPerDestination: cfg.MaxPerDestination,
		RequestTimeout: cfg.DeliveryTimeout, Metrics: m,
	}, logger)
	queueLogger, err := newLoggerAtLeast(stderr, cfg.LogLevel, cfg.LogFormat, slog.LevelWarn)
	if err != nil {
		return err
	}
	queueConfig := delivery.QueueConfig{LogMaxAge: cfg.LogRetention}
	if mode.delivers() {
		queueConfig.Workers = cfg.Workers
	}
	queue, err := delivery.NewQueue(store, worker, queueConfig, queueLogger.With("component", "queue"))
	if err != nil {
		return err
	}
	// Check the signing key and take the address before delivering, so that
	// a process that cannot serve stops before it sends anything.
	var key []byte
	if mode.servesHTTP() {
		if key, err = cfg.secretKey(); err != nil {
			return err
		}
	}
	listener, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	defer listener.Close()
	if mode.delivers() {
		if err := queue.Start(ctx); err != nil {
			return fmt.Errorf("start delivery workers: %w", err)
		}
		logger.Info("delivery workers started", "workers", cfg.Workers)
	}

	var serveErr error
	if mode.servesHTTP() {
		serveErr = serveHTTP(ctx, cfg, listener, components{
			key: key, store: store, queue: queue, redis: redisClient, metrics: m, networks: networks,
		}, logger)
	} else {
		serveErr = serveWorkerHTTP(ctx, cfg, listener, store, m, logger)
	}

	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	if mode.delivers() {
		stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		if err := queue.Stop(stopCtx); err != nil {
			logger.Error("stop delivery workers", "error", err)
		}
	}
	logger.Info("stopped")
	return serveErr
}

func openStore(ctx context.Context, cfg *config, logger *slog.Logger) (*sqlstore.Store, error) {
	store, err := sqlstore.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.Migrate {
		applied, err := store.Migrate(ctx)
		if err != nil {
			store.Close()
			return nil, err
		}
		for _, name := range applied {
			logger.Info("migration applied", "migration", name)
		}
	}
	logger.Info("database ready", "dialect", store.Dialect())
	return store, nil
}

// openRedis connects to REDIS_URL, or returns nil when it is not set. A
// server that does not respond at start is logged, not fatal: rate limits
// fall back to this process and cache entries expire with their TTL until
// it responds.
func openRedis(ctx context.Context, cfg *config, logger *slog.Logger) (*redis.Client, error) {
	if cfg.RedisURL == "" {
		return nil, nil
	}
	options, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("invalid REDIS_URL: %w", err)
	}
	options.DialTimeout = 2 * time.Second
	options.ReadTimeout = time.Second
	options.WriteTimeout = time.Second
	options.MaxRetries = 1
	redis.SetLogger(redisLogger{logger})
	client := redis.NewClient(options)
	pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		logger.Warn("redis not reachable at start", "error", err)
	} else {
		logger.Info("redis ready")
	}
	return client, nil
}

// components are the parts the HTTP server is built from.
type components struct {
	key      []byte // signs and checks JWTs
	store    *sqlstore.Store
	queue    *delivery.Queue
	redis    *redis.Client
	metrics  *metrics.Metrics
	networks []netip.Prefix
}

func serveHTTP(ctx context.Context, cfg *config, listener net.Listener, c components, logger *slog.Logger) error {
	// Rate limits and the ingest cache are shared through Redis when it is
	// configured, and kept in this process otherwise.
	local := ratelimit.NewLocal()
	var limiter ratelimit.Limiter = local
	cache := ingest.NewCache(cfg.CacheTTL)
	cache.OnLookup = c.metrics.CacheLookup
	invalidate := func(_ context.Context, accountID string) { cache.Invalidate(accountID) }
	readyChecks := []health.Check{health.Database(c.store), health.Migrations(c.store)}
	if c.redis != nil {
		limiter = ratelimit.NewRedis(c.redis, "datapusher:", local, logger)
		broadcaster := ingest.NewBroadcaster(c.redis, cache, logger)
		go broadcaster.Run(ctx)
		invalidate = broadcaster.Invalidate
		readyChecks = append(readyChecks, health.Redis(c.redis))
	}
	go sweepCache(ctx, cache, cfg.CacheTTL)

	// SQLite has one writer. On PostgreSQL a second committer builds its
	// transaction while the first waits for its disk flush. More committers
	// split the waiting events into smaller transactions, each with its own
	// delivery job, so they cost more than they overlap.
	committers := 1
	if c.store.Dialect() == sqlstore.DialectPostgres {
		committers = 2
	}
	batcher := ingest.NewBatcher(c.store, c.queue.Enqueue, committers, cfg.IngestBatchSize)
	defer batcher.Stop()
	events := ingest.NewService(c.store, c.queue.Enqueue, ingest.Options{
		Cache: cache, Limiter: limiter, Batcher: batcher,
		DefaultRate: cfg.RateLimitPerSecond, MaxRate: cfg.MaxRateLimitPerSecond,
	})

	dashboard, err := c.queue.NewDashboard(ctx, "/riverui", logger.With("component", "riverui"))
	if err != nil {
		return err
	}

	api := httpapi.NewServer(httpapi.Config{
		SecretKey:              c.key,
		AccessTokenTTL:         cfg.AccessTokenTTL,
		RefreshTokenTTL:        cfg.RefreshTokenTTL,
		InvitationTTL:          cfg.InvitationTTL,
		MaxBodyBytes:           cfg.MaxBodyBytes,
		MaxRateLimitPerSecond:  cfg.MaxRateLimitPerSecond,
		CheckDestinationURL:    func(raw string) error { return sender.CheckURL(raw, c.networks) },
		Limiter:                limiter,
		APIRatePerSecond:       cfg.APIRatePerSecond,
		LoginFailuresPerMinute: cfg.LoginFailuresPerMinute,
		PublicRatePerMinute:    cfg.PublicRatePerMinute,
		PublicBaseURL:          cfg.PublicURL,
		OnAccountChange:        invalidate,
		Metrics:                c.metrics,
		Enqueue:                c.queue.Enqueue,
		HealthHandler:          health.Live(),
		ReadyHandler:           health.Ready(logger, 2*time.Second, readyChecks...),
		MetricsHandler:         c.metrics.Handler(cfg.MetricsToken),
		SchemaHandler:          apidocs.SchemaHandler(),
		DocsHandler:            apidocs.SwaggerUIHandler(),
		RiverUIHandler:         dashboard,
	}, c.store, events, logger)

	return serve(ctx, cfg, listener, api.Handler(), logger)
}

// serveWorkerHTTP serves a worker's health checks and metrics on listener
// until ctx ends, so that a worker process can be probed and scraped like
// an API process.
func serveWorkerHTTP(ctx context.Context, cfg *config, listener net.Listener, store *sqlstore.Store,
	m *metrics.Metrics, logger *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", health.Live())
	mux.Handle("GET /readyz", health.Ready(logger, 2*time.Second, health.Database(store), health.Migrations(store)))
	mux.Handle("GET /metrics", m.Handler(cfg.MetricsToken))
	return serve(ctx, cfg, listener, mux, logger)
}

// serve serves handler on listener until ctx ends, then shuts the server
// down within cfg.ShutdownTimeout.
func serve(ctx context.Context, cfg *config, listener net.Listener, handler http.Handler, logger *slog.Logger) error {
	server := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("listening", "addr", listener.Addr().String())

	errc := make(chan error, 1)
	go func() { errc <- server.Serve(listener) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shut down http server: %w", err)
	}
	return nil
}

// sweepCache drops expired cache entries once per TTL until ctx ends.
func sweepCache(ctx context.Context, cache *ingest.Cache, ttl time.Duration) {
	ticker := time.NewTicker(ttl)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			cache.Sweep()
		}
	}
}

// redisLogger sends the Redis client's own messages, such as every failed
// dial, to the debug level: the rate limiter and the cache already log
// outages once per minute.
type redisLogger struct{ logger *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.logger.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "redis")
}

// servePprof serves Go's profiler on addr until ctx ends.
func servePprof(ctx context.Context, addr string, logger *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	server := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = server.Close()
	}()
	logger.Info("profiler listening", "addr", addr)
	if err := server.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("serve profiler", "error", err)
	}
}
