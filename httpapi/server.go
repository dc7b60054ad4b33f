// Package httpapi serves Data Pusher's management REST API: users and JWT
// sign-in, accounts, destinations, account members and delivery logs. Paths,
// field names and error bodies follow the Django REST Framework service it
// replaces, because existing clients parse them.
package httpapi

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/metrics"
	"github.com/datapusher/datapusher/ratelimit"
	"github.com/datapusher/datapusher/sqlstore"
)

// Default values of Config fields left zero.
const (
	DefaultAccessTokenTTL        = 15 * time.Minute
	DefaultRefreshTokenTTL       = 7 * 24 * time.Hour
	DefaultInvitationTTL         = 7 * 24 * time.Hour
	DefaultMaxBodyBytes          = 1 << 20
	DefaultMaxRateLimitPerSecond = 1000

	DefaultAPIRatePerSecond       = 20
	DefaultLoginFailuresPerMinute = 5
	DefaultPublicRatePerMinute    = 60
)

// Config holds the settings of the management API.
type Config struct {
	// SecretKey is the HMAC key that signs JWTs (HS256).
	SecretKey []byte

	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	InvitationTTL   time.Duration

	// MaxBodyBytes limits request bodies. Larger bodies get 413.
	MaxBodyBytes int64

	// MaxRateLimitPerSecond is the largest rate_limit_per_second an
	// account may be given.
	MaxRateLimitPerSecond int

	// CheckDestinationURL rejects destination URLs that must not be called,
	// such as literal IPs in private ranges. When nil, only the scheme and
	// host are checked.
	CheckDestinationURL func(string) error

	// PublicBaseURL, such as "https://api.example.com", is the scheme and
	// host of the next and previous links in list responses. When empty,
	// they are taken from the request.
	PublicBaseURL string

	// BcryptCost is the cost of new password hashes. Zero means
	// bcrypt.DefaultCost. Tests lower it to run fast.
	BcryptCost int

	// Limiter enforces the management API's rate limits: APIRatePerSecond
	// and LoginFailuresPerMinute. When nil, neither limit applies.
	Limiter ratelimit.Limiter

	// APIRatePerSecond is how many authenticated /api/ requests per second
	// each user may make, with a burst of the same size.
	APIRatePerSecond int

	// LoginFailuresPerMinute is how many failed sign-ins per minute each
	// email address, and separately each client IP, may make before
	// POST /api/token/ responds with 429. Successful sign-ins do not count.
	LoginFailuresPerMinute int

	// PublicRatePerMinute is how many requests per minute one client IP may
	// make to the routes that need no sign-in and run bcrypt or issue
	// tokens: register, token refresh and accept-invite. Default 60.
	PublicRatePerMinute int

	// OnAccountChange is called after every committed change that affects
	// the lookups of incoming data (an account's fields, its app secret
	// token or its destinations), before the response is written, so that
	// caches can drop the account. When nil, nothing is called.
	OnAccountChange func(ctx context.Context, accountID string)

	// Metrics records request, event and rate limit metrics. A nil value
	// records nothing.
	Metrics *metrics.Metrics

	// Enqueue queues the deliveries of retried and recovered logs. When
	// nil, those endpoints respond with 503.
	Enqueue sqlstore.EnqueueFunc

	// Handlers of the operational routes, which need no JWT: GET /healthz,
	// GET /readyz, GET /metrics (which checks its own bearer token), GET
	// /api/schema/, and GET /swagger/ with its static files under
	// /swagger/. A nil handler makes its route respond with 404.
	HealthHandler  http.Handler
	ReadyHandler   http.Handler
	MetricsHandler http.Handler
	SchemaHandler  http.Handler
	DocsHandler    http.Handler

	// RiverUIHandler serves the job queue dashboard under /riverui/, to
	// superusers only. When nil the route responds with 404.
	RiverUIHandler http.Handler
}

func (c Config) withDefaults() Config {
	if c.AccessTokenTTL <= 0 {
		c.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if c.RefreshTokenTTL <= 0 {
		c.RefreshTokenTTL = DefaultRefreshTokenTTL
	}
	if c.InvitationTTL <= 0 {
		c.InvitationTTL = DefaultInvitationTTL
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxRateLimitPerSecond <= 0 {
		c.MaxRateLimitPerSecond = DefaultMaxRateLimitPerSecond
	}
	if c.BcryptCost == 0 {
		c.BcryptCost = bcrypt.DefaultCost
	}
	if c.APIRatePerSecond <= 0 {
		c.APIRatePerSecond = DefaultAPIRatePerSecond
	}
	if c.PublicRatePerMinute <= 0 {
		c.PublicRatePerMinute = DefaultPublicRatePerMinute
	}
	if c.LoginFailuresPerMinute <= 0 {
		c.LoginFailuresPerMinute = DefaultLoginFailuresPerMinute
	}
	return c
}

// Server is the management API. Create it with NewServer.
type Server struct {
	cfg    Config
	store  *sqlstore.Store
	events datapusher.EventSubmitter
	logger *slog.Logger

	// dummyHash is compared against when a sign-in names an unknown email,
	// so that the response takes as long as for a known one.
	dummyHash []byte

	// patterns contains the ServeMux pattern of every route, which the
	// request metrics accept as route labels.
	patterns map[string]bool

	// basicAuth remembers verified Basic credentials of the queue dashboard.
	basicAuth credentialCache

	handler http.Handler
}

// NewServer returns a Server that reads and writes store and hands test
// events to events.
func NewServer(cfg Config, store *sqlstore.Store, events datapusher.EventSubmitter, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.Default()
	}
	s := &Server{cfg: cfg.withDefaults(), store: store, events: events, logger: logger}
	if len(s.cfg.SecretKey) == 0 {
		logger.Error("jwt secret key is empty, so every sign-in and authenticated request fails")
	}
	s.dummyHash = newDummyHash(s.cfg.BcryptCost)
	s.handler = s.middleware(s.newMux())
	return s
}

// Handler returns the HTTP handler of every route, wrapped in the request
// id, logging and panic recovery middleware.
func (s *Server) Handler() http.Handler { return s.handler }

// now returns the store's clock, which tests replace.
func (s *Server) now() time.Time { return s.store.Now() }

// accountChanged calls Config.OnAccountChange, if set, for an account whose
// change has been committed.
func (s *Server) accountChanged(ctx context.Context, accountID string) {
	if s.cfg.OnAccountChange != nil {
		s.cfg.OnAccountChange(ctx, accountID)
	}
}

func newDummyHash(cost int) []byte {
	password := make([]byte, 16)
	_, _ = rand.Read(password)
	hash, err := bcrypt.GenerateFromPassword(password, cost)
	if err != nil {
		panic("httpapi: hash dummy password: " + err.Error())
	}
	return hash
}
