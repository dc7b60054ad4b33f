package health_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher/health"
	"github.com/datapusher/datapusher/internal/testdb"
	"github.com/datapusher/datapusher/sqlstore"
)

// get serves one GET request through a real HTTP server and returns the
// status code, the raw body and the decoded body.
func get(t *testing.T, handler http.Handler) (int, string, health.Response) {
	t.Helper()
	server := httptest.NewServer(handler)
	t.Cleanup(server.Close)
	res, err := server.Client().Get(server.URL)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, "application/json", res.Header.Get("Content-Type"))
	require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	var body health.Response
	require.NoError(t, json.Unmarshal(raw, &body), "body %s", raw)
	return res.StatusCode, string(raw), body
}

func discardLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func failing(name string, err error) health.Check {
	return health.Check{Name: name, Run: func(context.Context) error { return err }}
}

type pendingMigrations int

func (p pendingMigrations) PendingMigrations(context.Context) (int, error) { return int(p), nil }

func TestLive(t *testing.T) {
	t.Parallel()
	status, raw, _ := get(t, health.Live())
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"status":"ok"}`, raw)
}

func TestReadyStore(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			store := testdb.Open(t, dialect)

			t.Run("MigratedStoreIsReady", func(t *testing.T) {
				status, raw, _ := get(t, health.Ready(discardLogger(), 0,
					health.Database(store), health.Migrations(store)))
				require.Equal(t, http.StatusOK, status)
				require.JSONEq(t, `{"status":"ok","checks":{"database":{"status":"ok"},"migrations":{"status":"ok"}}}`, raw)
			})
			t.Run("UnmigratedStoreIsNotReady", func(t *testing.T) {
				fresh, err := sqlstore.Open(context.Background(), testdb.DSN(t, dialect))
				require.NoError(t, err)
				t.Cleanup(func() { fresh.Close() })

				status, _, body := get(t, health.Ready(discardLogger(), 0,
					health.Database(fresh), health.Migrations(fresh)))
				require.Equal(t, http.StatusServiceUnavailable, status)
				require.Equal(t, "unavailable", body.Status)
				require.Equal(t, health.Result{Status: "ok"}, body.Checks["database"])
				require.Equal(t, "error", body.Checks["migrations"].Status)
				require.Equal(t, "reading migration state failed", body.Checks["migrations"].Error)
			})
			t.Run("ClosedStoreFailsPing", func(t *testing.T) {
				closed, err := sqlstore.Open(context.Background(), testdb.DSN(t, dialect))
				require.NoError(t, err)
				require.NoError(t, closed.Close())

				status, _, body := get(t, health.Ready(discardLogger(), 0, health.Database(closed)))
				require.Equal(t, http.StatusServiceUnavailable, status)
				require.Equal(t, health.Result{Status: "error", Error: "ping failed", ErrorClass: "error"},
					body.Checks["database"])
			})
		})
	}
}

func TestReadyPendingMigrations(t *testing.T) {
	t.Parallel()
	status, _, body := get(t, health.Ready(discardLogger(), 0, health.Migrations(pendingMigrations(2))))
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, health.Result{Status: "error", Error: "2 migrations pending", ErrorClass: "pending_migrations"},
		body.Checks["migrations"])
}

func TestReadyHidesErrorDetail(t *testing.T) {
	t.Parallel()
	secret := errors.New("connect to postgres://admin:hunter2@db.internal:5432/prod: connection refused")
	wrapped := &health.Error{Message: "ping failed", Err: secret}

	status, raw, body := get(t, health.Ready(discardLogger(), 0,
		failing("plain", secret), failing("wrapped", wrapped), failing("fine", nil)))
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.NotContains(t, raw, "hunter2")
	require.NotContains(t, raw, "db.internal")
	require.Equal(t, health.Result{Status: "error", Error: "check failed", ErrorClass: "error"}, body.Checks["plain"])
	require.Equal(t, health.Result{Status: "error", Error: "ping failed", ErrorClass: "error"}, body.Checks["wrapped"])
	require.Equal(t, health.Result{Status: "ok"}, body.Checks["fine"])
}

func TestReadyTimeout(t *testing.T) {
	t.Parallel()

	t.Run("CheckThatHonorsContext", func(t *testing.T) {
		t.Parallel()
		slow := health.Check{Name: "slow", Run: func(ctx context.Context) error {
			<-ctx.Done()
			return &health.Error{Message: "ping failed", Err: ctx.Err()}
		}}
		status, _, body := get(t, health.Ready(discardLogger(), 50*time.Millisecond, slow))
		require.Equal(t, http.StatusServiceUnavailable, status)
		// The message is the check's own or "check timed out", depending on
		// whether its result arrives before the handler stops waiting.
		require.Equal(t, "error", body.Checks["slow"].Status)
		require.Equal(t, "timeout", body.Checks["slow"].ErrorClass)
	})
	t.Run("CheckThatIgnoresContext", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		t.Cleanup(func() { close(release) })
		stuck := health.Check{Name: "stuck", Run: func(context.Context) error {
			<-release
			return nil
		}}
		status, _, body := get(t, health.Ready(discardLogger(), 50*time.Millisecond, stuck, failing("fine", nil)))
		require.Equal(t, http.StatusServiceUnavailable, status)
		require.Equal(t, health.Result{Status: "error", Error: "check timed out", ErrorClass: "timeout"},
			body.Checks["stuck"])
		require.Equal(t, health.Result{Status: "ok"}, body.Checks["fine"])
	})
}

func TestReadyRedis(t *testing.T) {
	t.Parallel()

	t.Run("Up", func(t *testing.T) {
		t.Parallel()
		client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
		t.Cleanup(func() { client.Close() })
		status, raw, _ := get(t, health.Ready(discardLogger(), 0, health.Redis(client)))
		require.Equal(t, http.StatusOK, status, "is Redis running on 127.0.0.1:6379? body %s", raw)
		require.JSONEq(t, `{"status":"ok","checks":{"redis":{"status":"ok"}}}`, raw)
	})
	t.Run("Down", func(t *testing.T) {
		t.Parallel()
		client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
		t.Cleanup(func() { client.Close() })
		status, raw, body := get(t, health.Ready(discardLogger(), 0, health.Redis(client)))
		require.Equal(t, http.StatusServiceUnavailable, status)
		require.Equal(t, health.Result{Status: "error", Error: "ping failed", ErrorClass: "connection_refused"},
			body.Checks["redis"])
		require.NotContains(t, raw, "127.0.0.1")
	})
}

func TestReadyLogsTransitions(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var err error
	handler := health.Ready(logger, 0, health.Check{Name: "flaky", Run: func(context.Context) error { return err }})

	err = errors.New("boom")
	get(t, handler)
	get(t, handler)
	err = nil
	get(t, handler)
	get(t, handler)

	out := logs.String()
	require.Equal(t, 1, strings.Count(out, "readiness check failed"), out)
	require.Contains(t, out, "check=flaky error=boom")
	require.Equal(t, 1, strings.Count(out, "readiness check recovered"), out)
	require.NotContains(t, out, "still failing", "repeats are logged at debug level")
}
