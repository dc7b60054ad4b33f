package ingest

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/datapusher/datapusher"
)

// DefaultCacheTTL bounds how long a cached account or destination list
// lives, even if an invalidation message from another node is lost.
const DefaultCacheTTL = 60 * time.Second

// Cache keeps the hot lookups of incoming data in process: token hash to
// account, and account to destinations. Invalidate drops an account's
// entries after every committed change to it, so the next event on this
// node reads fresh rows.
type Cache struct {
	ttl time.Duration
	now func() time.Time

	mu           sync.Mutex
	accounts     map[string]cachedAccount      // by token hash
	destinations map[string]cachedDestinations // by account id
	tokenHashes  map[string][]string           // account id to its cached token hashes
	generations  map[string]uint64             // account id to invalidation count
	epoch        uint64                        // count of Clear calls
	invalidated  uint64                        // count of Invalidate calls, for any account

	// OnLookup, when set, is called with each lookup's cache name and
	// whether it hit, for metrics.
	OnLookup func(cache string, hit bool)
}

type cachedAccount struct {
	account *datapusher.Account
	expires time.Time
}

type cachedDestinations struct {
	destinations []*datapusher.Destination
	expires      time.Time
}

// NewCache returns an empty cache whose entries live for ttl.
func NewCache(ttl time.Duration) *Cache {
	if ttl <= 0 {
		ttl = DefaultCacheTTL
	}
	return &Cache{
		ttl: ttl, now: time.Now,
		accounts: map[string]cachedAccount{}, destinations: map[string]cachedDestinations{},
		tokenHashes: map[string][]string{}, generations: map[string]uint64{},
	}
}

// Invalidate drops every cached entry of the account.
func (c *Cache) Invalidate(accountID string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, hash := range c.tokenHashes[accountID] {
		delete(c.accounts, hash)
	}
	delete(c.tokenHashes, accountID)
	delete(c.destinations, accountID)
	c.generations[accountID]++
	c.invalidated++
}

// generation returns the account's invalidation count. A loader reads it
// before querying the database and stores its result only if it has not
// changed, so a lookup that raced with a change cannot cache stale rows.
func (c *Cache) generation(accountID string) generation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return generation{epoch: c.epoch, count: c.generations[accountID]}
}

type generation struct{ epoch, count uint64 }

// tokenGeneration is generation for a token lookup, whose account is not
// known before the query, so any invalidation makes its result stale.
func (c *Cache) tokenGeneration() generation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return generation{epoch: c.epoch, count: c.invalidated}
}

// current reports whether gen is still the account's generation. The
// caller holds c.mu.
func (c *Cache) current(accountID string, gen generation) bool {
	return gen == generation{epoch: c.epoch, count: c.generations[accountID]}
}

func (c *Cache) account(tokenHash string) (*datapusher.Account, bool) {
	c.mu.Lock()
	entry, ok := c.accounts[tokenHash]
	c.mu.Unlock()
	hit := ok && c.now().Before(entry.expires)
	c.report("account", hit)
	return entry.account, hit
}

// storeAccount caches the account of a token until the TTL ends, or until
// the token stops working when until is set and comes first.
func (c *Cache) storeAccount(tokenHash string, account *datapusher.Account, gen generation, until *time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != (generation{epoch: c.epoch, count: c.invalidated}) {
		return
	}
	expires := c.now().Add(c.ttl)
	if until != nil && until.Before(expires) {
		expires = *until
	}
	c.accounts[tokenHash] = cachedAccount{account: account, expires: expires}
	c.tokenHashes[account.AccountID] = append(c.tokenHashes[account.AccountID], tokenHash)
}

func (c *Cache) accountDestinations(accountID string) ([]*datapusher.Destination, bool) {
	c.mu.Lock()
	entry, ok := c.destinations[accountID]
	c.mu.Unlock()
	hit := ok && c.now().Before(entry.expires)
	c.report("destinations", hit)
	return entry.destinations, hit
}

func (c *Cache) storeDestinations(accountID string, destinations []*datapusher.Destination, gen generation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.current(accountID, gen) {
		return
	}
	c.destinations[accountID] = cachedDestinations{destinations: destinations, expires: c.now().Add(c.ttl)}
}

func (c *Cache) report(cache string, hit bool) {
	if c.OnLookup != nil {
		c.OnLookup(cache, hit)
	}
}

// Sweep drops expired entries. Run it now and then so that accounts that
// stopped sending do not stay in memory.
func (c *Cache) Sweep() {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for hash, entry := range c.accounts {
		if !now.Before(entry.expires) {
			delete(c.accounts, hash)
		}
	}
	for accountID, entry := range c.destinations {
		if !now.Before(entry.expires) {
			delete(c.destinations, accountID)
		}
	}
	for accountID, hashes := range c.tokenHashes {
		remaining := hashes[:0]
		for _, hash := range hashes {
			if _, ok := c.accounts[hash]; ok {
				remaining = append(remaining, hash)
			}
		}
		if len(remaining) == 0 {
			delete(c.tokenHashes, accountID)
		} else {
			c.tokenHashes[accountID] = remaining
		}
	}
}

// InvalidationChannel is the Redis pub/sub channel on which nodes announce
// changed accounts.
const InvalidationChannel = "datapusher:cache:invalidate"

// Broadcaster sends invalidations to the other nodes through Redis pub/sub
// and applies theirs to the local cache.
type Broadcaster struct {
	client *redis.Client
	cache  *Cache
	logger *slog.Logger

	ready     chan struct{}
	readyOnce sync.Once
}

// NewBroadcaster returns a Broadcaster for cache over client.
func NewBroadcaster(client *redis.Client, cache *Cache, logger *slog.Logger) *Broadcaster {
	return &Broadcaster{client: client, cache: cache, logger: logger, ready: make(chan struct{})}
}

// Ready is closed once Run has subscribed for the first time.
func (b *Broadcaster) Ready() <-chan struct{} { return b.ready }

// Invalidate drops the account's entries here and notifies the other nodes.
// A failed publish is logged: the other nodes' entries then expire with
// their TTL.
func (b *Broadcaster) Invalidate(ctx context.Context, accountID string) {
	b.cache.Invalidate(accountID)
	if err := b.client.Publish(ctx, InvalidationChannel, accountID).Err(); err != nil {
		b.logger.Warn("publish cache invalidation", "account_id", accountID, "error", err)
	}
}

// Run applies invalidations from other nodes until ctx ends. It
// resubscribes after a lost connection, and drops the whole cache then,
// because messages sent in the meantime are lost.
func (b *Broadcaster) Run(ctx context.Context) {
	for ctx.Err() == nil {
		b.subscribe(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (b *Broadcaster) subscribe(ctx context.Context) {
	pubsub := b.client.Subscribe(ctx, InvalidationChannel)
	defer pubsub.Close()
	if _, err := pubsub.Receive(ctx); err != nil {
		if ctx.Err() == nil {
			b.logger.Warn("subscribe to cache invalidations", "error", err)
		}
		return
	}
	b.cache.Clear()
	b.readyOnce.Do(func() { close(b.ready) })
	for {
		msg, err := pubsub.ReceiveMessage(ctx)
		if err != nil {
			if ctx.Err() == nil {
				b.logger.Warn("receive cache invalidation", "error", err)
			}
			return
		}
		b.cache.Invalidate(msg.Payload)
	}
}

// Clear drops every entry.
func (c *Cache) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.accounts = map[string]cachedAccount{}
	c.destinations = map[string]cachedDestinations{}
	c.tokenHashes = map[string][]string{}
}
