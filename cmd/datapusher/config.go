package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/datapusher/datapusher/delivery/sender"
)

// config is the settings of the server commands. Each field has a flag and
// an environment variable; the flag wins.
type config struct {
	Addr              string
	DataDir           string
	DatabaseURL       string
	SecretKey         string
	AllowedNetworks   string
	DeliveryTimeout   time.Duration
	Workers           int
	MaxPerDestination int
	RetrySchedule     string
	MaxBodyBytes      int64
	AccessTokenTTL    time.Duration
	RefreshTokenTTL   time.Duration
	ShutdownTimeout   time.Duration
	LogLevel          string
	LogFormat         string
	Migrate           bool

	RedisURL               string
	CacheTTL               time.Duration
	RateLimitPerSecond     int
	MaxRateLimitPerSecond  int
	APIRatePerSecond       int
	LoginFailuresPerMinute int
	MetricsToken           string
	LogRetention           time.Duration
	InvitationTTL          time.Duration
	IngestBatchSize        int
	PprofAddr              string
	PublicURL              string
	PublicRatePerMinute    int
}

// envString returns the environment variable name, or fallback when unset.
func envString(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return fallback
}

// envParsed parses the environment variable name with parse, or returns
// fallback when unset. A value that does not parse is reported by setup.
func envParsed[T any](name string, fallback T, parse func(string) (T, error), errs *[]error) T {
	v, ok := os.LookupEnv(name)
	if !ok {
		return fallback
	}
	parsed, err := parse(v)
	if err != nil {
		*errs = append(*errs, fmt.Errorf("invalid %s=%q: %w", name, v, err))
		return fallback
	}
	return parsed
}

func parseInt(s string) (int, error)     { return strconv.Atoi(strings.TrimSpace(s)) }
func parseInt64(s string) (int64, error) { return strconv.ParseInt(strings.TrimSpace(s), 10, 64) }
func parseBool(s string) (bool, error)   { return strconv.ParseBool(strings.TrimSpace(s)) }

// parseConfig reads the flags of a server command over the environment.
func parseConfig(name string, args []string, stderr io.Writer) (*config, error) {
	var envErrs []error
	cfg := &config{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Addr, "addr", envString("DATAPUSHER_ADDR", "127.0.0.1:8000"),
		"host:port to listen on; a worker serves only /healthz, /readyz and /metrics there (DATAPUSHER_ADDR)")
	fs.StringVar(&cfg.DataDir, "data-dir", envString("DATAPUSHER_DATA_DIR", "data"),
		"folder for the SQLite database and the generated secret key (DATAPUSHER_DATA_DIR)")
	fs.StringVar(&cfg.DatabaseURL, "database-url", envString("DATABASE_URL", ""),
		"postgres://... URL, or a SQLite file path; default DATA_DIR/datapusher.db (DATABASE_URL)")
	fs.StringVar(&cfg.SecretKey, "secret-key", envString("DATAPUSHER_SECRET_KEY", ""),
		"key that signs access tokens, at least 32 characters; generated into DATA_DIR/secret_key when empty (DATAPUSHER_SECRET_KEY)")
	fs.StringVar(&cfg.AllowedNetworks, "allowed-destination-networks", envString("DATAPUSHER_ALLOWED_DESTINATION_NETWORKS", ""),
		"comma-separated CIDRs that destinations may use although they are private or loopback (DATAPUSHER_ALLOWED_DESTINATION_NETWORKS)")
	fs.DurationVar(&cfg.DeliveryTimeout, "delivery-timeout", envParsed("DATAPUSHER_DELIVERY_TIMEOUT", 10*time.Second, time.ParseDuration, &envErrs),
		"timeout of one delivery request (DATAPUSHER_DELIVERY_TIMEOUT)")
	fs.IntVar(&cfg.Workers, "workers", envParsed("DATAPUSHER_WORKERS", 500, parseInt, &envErrs),
		"deliveries that run at once in this process (DATAPUSHER_WORKERS)")
	fs.IntVar(&cfg.MaxPerDestination, "max-per-destination", envParsed("DATAPUSHER_MAX_PER_DESTINATION", 50, parseInt, &envErrs),
		"maximum concurrent deliveries to one destination, whose limit starts at 10 and adapts to its responses (DATAPUSHER_MAX_PER_DESTINATION)")
	fs.StringVar(&cfg.RetrySchedule, "retry-schedule", envString("DATAPUSHER_RETRY_SCHEDULE", "5s,5m,30m,2h,5h,10h,10h"),
		"comma-separated waits before each retry (DATAPUSHER_RETRY_SCHEDULE)")
	fs.Int64Var(&cfg.MaxBodyBytes, "max-body-bytes", envParsed("DATAPUSHER_MAX_BODY_BYTES", int64(1<<20), parseInt64, &envErrs),
		"largest accepted event body in bytes (DATAPUSHER_MAX_BODY_BYTES)")
	fs.DurationVar(&cfg.AccessTokenTTL, "access-token-ttl", envParsed("DATAPUSHER_ACCESS_TOKEN_TTL", 15*time.Minute, time.ParseDuration, &envErrs),
		"lifetime of access tokens (DATAPUSHER_ACCESS_TOKEN_TTL)")
	fs.DurationVar(&cfg.RefreshTokenTTL, "refresh-token-ttl", envParsed("DATAPUSHER_REFRESH_TOKEN_TTL", 7*24*time.Hour, time.ParseDuration, &envErrs),
		"lifetime of refresh tokens (DATAPUSHER_REFRESH_TOKEN_TTL)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", envParsed("DATAPUSHER_SHUTDOWN_TIMEOUT", 30*time.Second, time.ParseDuration, &envErrs),
		"how long in-flight requests and deliveries may finish after SIGTERM (DATAPUSHER_SHUTDOWN_TIMEOUT)")
	fs.StringVar(&cfg.LogLevel, "log-level", envString("DATAPUSHER_LOG_LEVEL", "info"),
		"debug, info, warn or error (DATAPUSHER_LOG_LEVEL)")
	fs.StringVar(&cfg.LogFormat, "log-format", envString("DATAPUSHER_LOG_FORMAT", ""),
		"json or text; default text on a terminal, json otherwise (DATAPUSHER_LOG_FORMAT)")
	fs.BoolVar(&cfg.Migrate, "migrate", envParsed("DATAPUSHER_MIGRATE", true, parseBool, &envErrs),
		"apply database migrations at start (DATAPUSHER_MIGRATE)")
	fs.StringVar(&cfg.RedisURL, "redis-url", envString("REDIS_URL", ""),
		"redis://host:port/db; shares rate limits and cache invalidations between nodes (REDIS_URL)")
	fs.DurationVar(&cfg.CacheTTL, "cache-ttl", envParsed("DATAPUSHER_CACHE_TTL", 60*time.Second, time.ParseDuration, &envErrs),
		"longest life of a cached account or destination list (DATAPUSHER_CACHE_TTL)")
	fs.IntVar(&cfg.RateLimitPerSecond, "rate-limit-per-second", envParsed("DATAPUSHER_RATE_LIMIT_PER_SECOND", 5, parseInt, &envErrs),
		"incoming events per second per account, unless the account sets its own (DATAPUSHER_RATE_LIMIT_PER_SECOND)")
	fs.IntVar(&cfg.MaxRateLimitPerSecond, "max-rate-limit-per-second", envParsed("DATAPUSHER_MAX_RATE_LIMIT_PER_SECOND", 1000, parseInt, &envErrs),
		"largest rate_limit_per_second an account may be given (DATAPUSHER_MAX_RATE_LIMIT_PER_SECOND)")
	fs.IntVar(&cfg.APIRatePerSecond, "api-rate-per-second", envParsed("DATAPUSHER_API_RATE_PER_SECOND", 20, parseInt, &envErrs),
		"management API requests per second per user (DATAPUSHER_API_RATE_PER_SECOND)")
	fs.IntVar(&cfg.LoginFailuresPerMinute, "login-failures-per-minute", envParsed("DATAPUSHER_LOGIN_FAILURES_PER_MINUTE", 5, parseInt, &envErrs),
		"failed sign-ins per minute per email and per client IP before 429 (DATAPUSHER_LOGIN_FAILURES_PER_MINUTE)")
	fs.StringVar(&cfg.MetricsToken, "metrics-token", envString("DATAPUSHER_METRICS_TOKEN", ""),
		"bearer token that /metrics requires; open when empty (DATAPUSHER_METRICS_TOKEN)")
	fs.DurationVar(&cfg.LogRetention, "log-retention", envParsed("DATAPUSHER_LOG_RETENTION", 30*24*time.Hour, time.ParseDuration, &envErrs),
		"age after which delivery logs are deleted, unless an account sets its own (DATAPUSHER_LOG_RETENTION)")
	fs.DurationVar(&cfg.InvitationTTL, "invitation-ttl", envParsed("DATAPUSHER_INVITATION_TTL", 7*24*time.Hour, time.ParseDuration, &envErrs),
		"lifetime of member invitation tokens (DATAPUSHER_INVITATION_TTL)")
	fs.StringVar(&cfg.PublicURL, "public-url", envString("DATAPUSHER_PUBLIC_URL", ""),
		"scheme and host of next and previous links, such as https://hooks.example.com; taken from each request when empty (DATAPUSHER_PUBLIC_URL)")
	fs.IntVar(&cfg.PublicRatePerMinute, "public-rate-per-minute", envParsed("DATAPUSHER_PUBLIC_RATE_PER_MINUTE", 60, parseInt, &envErrs),
		"requests per minute per client IP to register, token refresh and accept-invite (DATAPUSHER_PUBLIC_RATE_PER_MINUTE)")
	fs.StringVar(&cfg.PprofAddr, "pprof-addr", envString("DATAPUSHER_PPROF_ADDR", ""),
		"host:port that serves Go's profiler at /debug/pprof/; off when empty; keep it on loopback (DATAPUSHER_PPROF_ADDR)")
	fs.IntVar(&cfg.IngestBatchSize, "ingest-batch-size", envParsed("DATAPUSHER_INGEST_BATCH_SIZE", 100, parseInt, &envErrs),
		"most events committed in one transaction under load (DATAPUSHER_INGEST_BATCH_SIZE)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if len(envErrs) > 0 {
		return nil, errors.Join(envErrs...)
	}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = filepath.Join(cfg.DataDir, "datapusher.db")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// validate rejects settings outside their ranges.
func (c *config) validate() error {
	positive := []struct {
		name  string
		value int64
	}{
		{"DATAPUSHER_WORKERS", int64(c.Workers)},
		{"DATAPUSHER_MAX_PER_DESTINATION", int64(c.MaxPerDestination)},
		{"DATAPUSHER_MAX_BODY_BYTES", c.MaxBodyBytes},
		{"DATAPUSHER_RATE_LIMIT_PER_SECOND", int64(c.RateLimitPerSecond)},
		{"DATAPUSHER_MAX_RATE_LIMIT_PER_SECOND", int64(c.MaxRateLimitPerSecond)},
		{"DATAPUSHER_API_RATE_PER_SECOND", int64(c.APIRatePerSecond)},
		{"DATAPUSHER_LOGIN_FAILURES_PER_MINUTE", int64(c.LoginFailuresPerMinute)},
		{"DATAPUSHER_PUBLIC_RATE_PER_MINUTE", int64(c.PublicRatePerMinute)},
		{"DATAPUSHER_INGEST_BATCH_SIZE", int64(c.IngestBatchSize)},
		{"DATAPUSHER_DELIVERY_TIMEOUT", int64(c.DeliveryTimeout)},
		{"DATAPUSHER_CACHE_TTL", int64(c.CacheTTL)},
		{"DATAPUSHER_LOG_RETENTION", int64(c.LogRetention)},
	}
	for _, setting := range positive {
		if setting.value <= 0 {
			return fmt.Errorf("invalid %s: must be greater than zero", setting.name)
		}
	}
	if c.RateLimitPerSecond > c.MaxRateLimitPerSecond {
		return fmt.Errorf("invalid DATAPUSHER_RATE_LIMIT_PER_SECOND=%d: above DATAPUSHER_MAX_RATE_LIMIT_PER_SECOND=%d",
			c.RateLimitPerSecond, c.MaxRateLimitPerSecond)
	}
	return nil
}

// allowedNetworks parses the allowed destination networks.
func (c *config) allowedNetworks() ([]netip.Prefix, error) {
	networks, err := sender.ParseNetworks(c.AllowedNetworks)
	if err != nil {
		return nil, fmt.Errorf("invalid DATAPUSHER_ALLOWED_DESTINATION_NETWORKS: %w", err)
	}
	return networks, nil
}

// retrySchedule parses the retry schedule. An empty schedule means one
// attempt and no retries.
func (c *config) retrySchedule() ([]time.Duration, error) {
	schedule := []time.Duration{}
	for _, field := range strings.Split(c.RetrySchedule, ",") {
		field = strings.TrimSpace(field)
		if field == "" {
			continue
		}
		d, err := time.ParseDuration(field)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("invalid DATAPUSHER_RETRY_SCHEDULE entry %q: want a positive duration such as 5s or 2h", field)
		}
		schedule = append(schedule, d)
	}
	return schedule, nil
}

// secretKey returns the key that signs access tokens. Without a configured
// key, one is generated once and kept in the data folder, so that tokens
// stay valid across restarts of a single-machine setup.
func (c *config) secretKey() ([]byte, error) {
	if c.SecretKey != "" {
		if len(c.SecretKey) < 32 {
			return nil, errors.New("DATAPUSHER_SECRET_KEY must have at least 32 characters")
		}
		return []byte(c.SecretKey), nil
	}
	path := filepath.Join(c.DataDir, "secret_key")
	if key, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(key))) >= 32 {
		return []byte(strings.TrimSpace(string(key))), nil
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data folder: %w", err)
	}
	random := make([]byte, 32)
	if _, err := rand.Read(random); err != nil {
		return nil, fmt.Errorf("generate secret key: %w", err)
	}
	key := hex.EncodeToString(random)
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write secret key: %w", err)
	}
	return []byte(key), nil
}

// newLogger returns the process logger: text on a terminal, JSON otherwise,
// unless the format is set.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	return newLoggerAtLeast(w, level, format, slog.LevelDebug)
}

// newLoggerAtLeast is newLogger with a floor under the level, for noisy
// libraries such as the job queue, whose routine messages are at info.
func newLoggerAtLeast(w io.Writer, level, format string, minLevel slog.Level) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid log level %q: want debug, info, warn or error", level)
	}
	if format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	opts := &slog.HandlerOptions{Level: max(lvl, minLevel)}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("invalid log format %q: want json or text", format)
}
