package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/datapusher/datapusher/delivery"
	"github.com/datapusher/datapusher/delivery/sender"
	"github.com/datapusher/datapusher/httpapi"
	"github.com/datapusher/datapusher/ingest"
	"github.com/datapusher/datapusher/sqlstore"
)

type serverMode int

const (
	modeServe serverMode = iota
	modeAPI
	modeWorker
)

func (m serverMode) servesHTTP() bool { return m != modeWorker }
func (m serverMode) delivers() bool   { return m != modeAPI }

// runServer runs the API, the workers or both until ctx ends, then shuts
// down: the listener closes first, in-flight requests and deliveries get
// ShutdownTimeout to finish, and deliveries still running after that are
// queued again for the next start.
func runServer(ctx context.Context, args []string, stderr io.Writer, mode serverMode) error {
	name := map[serverMode]string{modeServe: "serve", modeAPI: "api", modeWorker: "worker"}[mode]
	cfg, err := parseConfig(name, args, stderr)
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

	store, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer store.Close()

	// The worker is registered in every mode, because the queue checks the
	// kind of each job it inserts; only delivering modes run it.
	s := sender.New(sender.Options{Timeout: cfg.DeliveryTimeout, AllowedNetworks: networks})
	worker := delivery.NewWorker(store, s, delivery.Config{
		Schedule: schedule, MaxPerDestination: cfg.MaxPerDestination, RequestTimeout: cfg.DeliveryTimeout,
	}, logger)
	queueConfig := delivery.QueueConfig{}
	if mode.delivers() {
		queueConfig.Workers = cfg.Workers
	}
	queueLogger, err := newLoggerAtLeast(stderr, cfg.LogLevel, cfg.LogFormat, slog.LevelWarn)
	if err != nil {
		return err
	}
	queue, err := delivery.NewQueue(store, worker, queueConfig, queueLogger.With("component", "queue"))
	if err != nil {
		return err
	}
	if mode.delivers() {
		if err := queue.Start(ctx); err != nil {
			return fmt.Errorf("start delivery workers: %w", err)
		}
		logger.Info("delivery workers started", "workers", cfg.Workers)
	}

	var serveErr error
	if mode.servesHTTP() {
		serveErr = serveHTTP(ctx, cfg, store, queue, networks, logger)
	} else {
		<-ctx.Done()
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

func serveHTTP(ctx context.Context, cfg *config, store *sqlstore.Store, queue *delivery.Queue,
	networks []netip.Prefix, logger *slog.Logger) error {
	key, err := cfg.secretKey()
	if err != nil {
		return err
	}
	events := ingest.NewService(store, queue.Enqueue, ingest.Options{})
	api := httpapi.NewServer(httpapi.Config{
		SecretKey:       key,
		AccessTokenTTL:  cfg.AccessTokenTTL,
		RefreshTokenTTL: cfg.RefreshTokenTTL,
		MaxBodyBytes:    cfg.MaxBodyBytes,
		CheckDestinationURL: func(raw string) error {
			return sender.CheckURL(raw, networks)
		},
	}, store, events, logger)

	listener, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	server := &http.Server{
		Handler:           api.Handler(),
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
