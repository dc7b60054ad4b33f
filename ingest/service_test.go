package ingest_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/ingest"
	"github.com/datapusher/datapusher/internal/testdb"
	"github.com/datapusher/datapusher/ratelimit"
	"github.com/datapusher/datapusher/sqlstore"
)

type fixture struct {
	store   *sqlstore.Store
	owner   *datapusher.User
	account *datapusher.Account
}

func setup(t *testing.T, dialect string) *fixture {
	t.Helper()
	ctx := context.Background()
	store := testdb.Open(t, dialect)
	owner := &datapusher.User{Email: "owner@example.com", PasswordHash: "x"}
	require.NoError(t, store.CreateUser(ctx, owner))
	f := &fixture{store: store, owner: owner}
	f.account = f.newAccount(t, "token-1")
	f.addDestination(t, f.account)
	return f
}

func (f *fixture) newAccount(t *testing.T, token string) *datapusher.Account {
	t.Helper()
	account := &datapusher.Account{AccountName: token}
	require.NoError(t, f.store.CreateAccount(context.Background(), account, ingest.HashToken(token), f.owner.ID))
	return account
}

func (f *fixture) addDestination(t *testing.T, account *datapusher.Account) *datapusher.Destination {
	t.Helper()
	d := &datapusher.Destination{AccountID: account.AccountID, URL: "https://example.test/", HTTPMethod: "POST",
		SigningSecret: "whsec_x", Enabled: true}
	require.NoError(t, f.store.CreateDestination(context.Background(), d, f.owner.ID))
	return d
}

func (f *fixture) logCount(t *testing.T, eventID string) int {
	t.Helper()
	page, err := f.store.Logs(context.Background(), datapusher.LogFilter{EventID: &eventID})
	require.NoError(t, err)
	return len(page.Logs)
}

// lookupCounter records cache hits and misses.
type lookupCounter struct {
	mu     sync.Mutex
	hits   map[string]int
	misses map[string]int
}

func newLookupCounter(cache *ingest.Cache) *lookupCounter {
	c := &lookupCounter{hits: map[string]int{}, misses: map[string]int{}}
	cache.OnLookup = func(name string, hit bool) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if hit {
			c.hits[name]++
		} else {
			c.misses[name]++
		}
	}
	return c
}

func TestSubmit(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()

			t.Run("RejectsBadInput", func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect)
				service := ingest.NewService(f.store, nil, ingest.Options{})
				_, err := service.SubmitWithToken(ctx, "", "e", []byte(`{}`), "")
				require.Equal(t, datapusher.EUNAUTHORIZED, datapusher.ErrorCode(err))
				_, err = service.SubmitWithToken(ctx, "wrong", "e", []byte(`{}`), "")
				require.Equal(t, datapusher.EUNAUTHORIZED, datapusher.ErrorCode(err))
				_, err = service.SubmitWithToken(ctx, "token-1", "e", []byte(`[1]`), "")
				require.Equal(t, datapusher.EINVALID, datapusher.ErrorCode(err))
				_, err = service.SubmitWithToken(ctx, "token-1", "bad\nid", []byte(`{}`), "")
				require.Equal(t, datapusher.EINVALID, datapusher.ErrorCode(err))
				require.Zero(t, f.logCount(t, "e"), "nothing is stored for a rejected event")
			})

			t.Run("GeneratesEventID", func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect)
				service := ingest.NewService(f.store, nil, ingest.Options{})
				sub, err := service.SubmitWithToken(ctx, "token-1", "", []byte(`{}`), "")
				require.NoError(t, err)
				require.NotEmpty(t, sub.EventID)
				require.Equal(t, 1, f.logCount(t, sub.EventID))
			})

			t.Run("DuplicateIsNotStoredTwice", func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect)
				service := ingest.NewService(f.store, nil, ingest.Options{})
				sub, err := service.SubmitWithToken(ctx, "token-1", "same", []byte(`{"n":1}`), "")
				require.NoError(t, err)
				require.False(t, sub.Duplicate)
				sub, err = service.SubmitWithToken(ctx, "token-1", "same", []byte(`{"n":2}`), "")
				require.NoError(t, err)
				require.True(t, sub.Duplicate)
				require.Equal(t, 1, f.logCount(t, "same"))

				other := f.newAccount(t, "token-2")
				f.addDestination(t, other)
				sub, err = service.SubmitWithToken(ctx, "token-2", "same", []byte(`{"n":3}`), "")
				require.NoError(t, err)
				require.False(t, sub.Duplicate, "event ids are unique per account")
			})

			t.Run("CacheServesRepeatedLookups", func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect)
				cache := ingest.NewCache(time.Minute)
				counter := newLookupCounter(cache)
				service := ingest.NewService(f.store, nil, ingest.Options{Cache: cache})
				for _, id := range []string{"a", "b", "c"} {
					_, err := service.SubmitWithToken(ctx, "token-1", id, []byte(`{}`), "")
					require.NoError(t, err)
				}
				require.Equal(t, 1, counter.misses["account"])
				require.Equal(t, 2, counter.hits["account"])
				require.Equal(t, 1, counter.misses["destinations"])
				require.Equal(t, 2, counter.hits["destinations"])

				// A destination added without invalidation stays unseen
				// until the entry is dropped, which shows the cache is used.
				f.addDestination(t, f.account)
				_, err := service.SubmitWithToken(ctx, "token-1", "stale", []byte(`{}`), "")
				require.NoError(t, err)
				require.Equal(t, 1, f.logCount(t, "stale"))

				cache.Invalidate(f.account.AccountID)
				_, err = service.SubmitWithToken(ctx, "token-1", "fresh", []byte(`{}`), "")
				require.NoError(t, err)
				require.Equal(t, 2, f.logCount(t, "fresh"), "the next event after invalidation sees the change")
			})

			t.Run("RotationTakesEffectAtOnce", func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect)
				cache := ingest.NewCache(time.Minute)
				service := ingest.NewService(f.store, nil, ingest.Options{Cache: cache})
				_, err := service.SubmitWithToken(ctx, "token-1", "before", []byte(`{}`), "")
				require.NoError(t, err)

				require.NoError(t, f.store.RotateAccountToken(ctx, f.account.AccountID, ingest.HashToken("token-new"), 0, f.owner.ID))
				cache.Invalidate(f.account.AccountID)
				_, err = service.SubmitWithToken(ctx, "token-1", "old", []byte(`{}`), "")
				require.Equal(t, datapusher.EUNAUTHORIZED, datapusher.ErrorCode(err))
				_, err = service.SubmitWithToken(ctx, "token-new", "new", []byte(`{}`), "")
				require.NoError(t, err)
			})

			t.Run("PreviousTokenStopsAtGraceEnd", func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect)
				cache := ingest.NewCache(time.Hour)
				service := ingest.NewService(f.store, nil, ingest.Options{Cache: cache})
				require.NoError(t, f.store.RotateAccountToken(ctx, f.account.AccountID, ingest.HashToken("token-new"),
					3*time.Second, f.owner.ID))
				cache.Invalidate(f.account.AccountID)
				_, err := service.SubmitWithToken(ctx, "token-1", "in-grace", []byte(`{}`), "")
				require.NoError(t, err, "the previous token works during its grace period")

				// The cached entry ends with the grace period, not an hour later.
				require.Eventually(t, func() bool {
					_, err := service.SubmitWithToken(ctx, "token-1", "", []byte(`{}`), "")
					return datapusher.ErrorCode(err) == datapusher.EUNAUTHORIZED
				}, 10*time.Second, 50*time.Millisecond)
			})

			t.Run("RateLimitPerAccount", func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect)
				service := ingest.NewService(f.store, nil, ingest.Options{Limiter: ratelimit.NewLocal()})
				for i := range 5 {
					_, err := service.SubmitWithToken(ctx, "token-1", "", []byte(`{}`), "")
					require.NoError(t, err, "event %d is within the default 5 per second", i)
				}
				_, err := service.SubmitWithToken(ctx, "token-1", "", []byte(`{}`), "")
				var limited *ingest.RateLimitedError
				require.True(t, errors.As(err, &limited), "got %v", err)
				require.Equal(t, 5, limited.Result.Limit)
				require.Zero(t, limited.Result.Remaining)
				require.Positive(t, limited.Result.RetryAfter)

				other := f.newAccount(t, "token-2")
				_ = other
				_, err = service.SubmitWithToken(ctx, "token-2", "", []byte(`{}`), "")
				require.NoError(t, err, "another account is not slowed")
			})

			t.Run("AccountRateOverride", func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect)
				service := ingest.NewService(f.store, nil, ingest.Options{Limiter: ratelimit.NewLocal(), MaxRate: 50})
				two, hundred := 2, 100
				require.Equal(t, 5, service.RatePerSecond(&datapusher.Account{}))
				require.Equal(t, 2, service.RatePerSecond(&datapusher.Account{RateLimitPerSecond: &two}))
				require.Equal(t, 50, service.RatePerSecond(&datapusher.Account{RateLimitPerSecond: &hundred}), "capped at the maximum")

				f.account.RateLimitPerSecond = &two
				require.NoError(t, f.store.UpdateAccount(ctx, f.account, f.owner.ID))
				for range 2 {
					_, err := service.SubmitWithToken(ctx, "token-1", "", []byte(`{}`), "")
					require.NoError(t, err)
				}
				_, err := service.SubmitWithToken(ctx, "token-1", "", []byte(`{}`), "")
				var limited *ingest.RateLimitedError
				require.ErrorAs(t, err, &limited)
			})
		})
	}
}

func TestBroadcaster(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	// Each node clears its cache when its subscription starts, so the test
	// waits for both before it caches anything.
	newNode := func() (*ingest.Cache, *ingest.Broadcaster) {
		client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
		t.Cleanup(func() { client.Close() })
		cache := ingest.NewCache(time.Minute)
		b := ingest.NewBroadcaster(client, cache, logger)
		go b.Run(ctx)
		select {
		case <-b.Ready():
		case <-time.After(10 * time.Second):
			t.Fatal("broadcaster did not subscribe")
		}
		return cache, b
	}

	store := testdb.Open(t, sqlstore.DialectSQLite)
	owner := &datapusher.User{Email: "o@example.com", PasswordHash: "x"}
	require.NoError(t, store.CreateUser(ctx, owner))
	account := &datapusher.Account{AccountName: "Shared"}
	require.NoError(t, store.CreateAccount(ctx, account, ingest.HashToken("shared-token"), owner.ID))

	cacheA, broadcasterA := newNode()
	cacheB, _ := newNode()
	counterB := newLookupCounter(cacheB)
	serviceB := ingest.NewService(store, nil, ingest.Options{Cache: cacheB})
	_ = cacheA

	// Node B caches the account; node A rotates the token and broadcasts.
	_, err := serviceB.SubmitWithToken(ctx, "shared-token", "", []byte(`{}`), "")
	require.NoError(t, err)
	require.NoError(t, store.RotateAccountToken(ctx, account.AccountID, ingest.HashToken("rotated"), 0, owner.ID))
	_, err = serviceB.SubmitWithToken(ctx, "shared-token", "", []byte(`{}`), "")
	require.NoError(t, err, "node B still has the old token cached")
	require.Equal(t, 1, counterB.hits["account"])

	// Subscriptions start asynchronously, so publish until B reacts.
	require.Eventually(t, func() bool {
		broadcasterA.Invalidate(ctx, account.AccountID)
		_, err := serviceB.SubmitWithToken(ctx, "shared-token", "", []byte(`{}`), "")
		return datapusher.ErrorCode(err) == datapusher.EUNAUTHORIZED
	}, 10*time.Second, 50*time.Millisecond)
}
