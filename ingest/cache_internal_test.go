package ingest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher"
)

func TestCache(t *testing.T) {
	t.Parallel()
	account := &datapusher.Account{AccountID: "a1"}

	t.Run("EntriesExpire", func(t *testing.T) {
		t.Parallel()
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		c := NewCache(time.Minute)
		c.now = func() time.Time { return now }
		c.storeAccount("hash", account, c.tokenGeneration(), nil)
		_, ok := c.account("hash")
		require.True(t, ok)

		now = now.Add(time.Minute)
		_, ok = c.account("hash")
		require.False(t, ok)
		c.Sweep()
		require.Empty(t, c.accounts)
		require.Empty(t, c.tokenHashes)
	})

	t.Run("PreviousTokenExpiresAtGraceEnd", func(t *testing.T) {
		t.Parallel()
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		c := NewCache(time.Minute)
		c.now = func() time.Time { return now }
		graceEnd := now.Add(10 * time.Second)
		c.storeAccount("previous", account, c.tokenGeneration(), &graceEnd)
		_, ok := c.account("previous")
		require.True(t, ok)

		now = graceEnd
		_, ok = c.account("previous")
		require.False(t, ok, "cached past the end of the grace period")
	})

	t.Run("LoadRacingInvalidationIsNotStored", func(t *testing.T) {
		t.Parallel()
		c := NewCache(time.Minute)
		tokenGen := c.tokenGeneration()
		destinationsGen := c.generation("a1")
		c.Invalidate("a1")
		c.storeAccount("hash", account, tokenGen, nil)
		c.storeDestinations("a1", nil, destinationsGen)
		_, ok := c.account("hash")
		require.False(t, ok)
		_, ok = c.accountDestinations("a1")
		require.False(t, ok)
	})

	t.Run("ClearDropsEverything", func(t *testing.T) {
		t.Parallel()
		c := NewCache(time.Minute)
		gen := c.generation("a1")
		c.storeAccount("hash", account, c.tokenGeneration(), nil)
		c.Clear()
		c.storeDestinations("a1", nil, gen)
		_, ok := c.account("hash")
		require.False(t, ok)
		_, ok = c.accountDestinations("a1")
		require.False(t, ok)
	})

	t.Run("InvalidateDropsOnlyThatAccount", func(t *testing.T) {
		t.Parallel()
		c := NewCache(time.Minute)
		other := &datapusher.Account{AccountID: "a2"}
		c.storeAccount("h1", account, c.tokenGeneration(), nil)
		c.storeAccount("h2", other, c.tokenGeneration(), nil)
		c.Invalidate("a1")
		_, ok := c.account("h1")
		require.False(t, ok)
		_, ok = c.account("h2")
		require.True(t, ok)
	})
}
