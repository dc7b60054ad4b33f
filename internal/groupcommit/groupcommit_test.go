package groupcommit_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher/internal/groupcommit"
)

// store records the batches it is asked to write, and rejects any batch
// that contains a negative item.
type store struct {
	mu      sync.Mutex
	batches [][]int
	written []int
}

func (s *store) commit(_ context.Context, items []int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches = append(s.batches, append([]int(nil), items...))
	for _, item := range items {
		if item < 0 {
			return errors.New("negative item")
		}
	}
	s.written = append(s.written, items...)
	return nil
}

func TestCommitter(t *testing.T) {
	t.Parallel()

	t.Run("ConcurrentItemsAreBatched", func(t *testing.T) {
		t.Parallel()
		s := &store{}
		c := groupcommit.New(s.commit, nil, 1, 10)
		defer c.Stop()
		var wg sync.WaitGroup
		for i := range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				require.NoError(t, c.Submit(context.Background(), i))
			}()
		}
		wg.Wait()
		s.mu.Lock()
		defer s.mu.Unlock()
		require.Len(t, s.written, 200)
		for _, batch := range s.batches {
			require.LessOrEqual(t, len(batch), 10)
		}
	})

	t.Run("BadItemFailsAlone", func(t *testing.T) {
		t.Parallel()
		s := &store{}
		var resets []int
		var mu sync.Mutex
		c := groupcommit.New(s.commit, func(item int) {
			mu.Lock()
			resets = append(resets, item)
			mu.Unlock()
		}, 1, 10)
		defer c.Stop()

		var wg sync.WaitGroup
		errs := map[int]error{}
		var errsMu sync.Mutex
		for _, item := range []int{1, -1, 2, 3} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := c.Submit(context.Background(), item)
				errsMu.Lock()
				errs[item] = err
				errsMu.Unlock()
			}()
		}
		wg.Wait()
		require.Error(t, errs[-1])
		for _, item := range []int{1, 2, 3} {
			require.NoError(t, errs[item], "item %d", item)
		}
		require.ElementsMatch(t, []int{1, 2, 3}, s.written)
	})

	t.Run("StopWritesQueuedAndRejectsNew", func(t *testing.T) {
		t.Parallel()
		s := &store{}
		c := groupcommit.New(s.commit, nil, 2, 5)
		require.NoError(t, c.Submit(context.Background(), 7))
		c.Stop()
		require.ErrorIs(t, c.Submit(context.Background(), 8), groupcommit.ErrStopped)
		require.Equal(t, []int{7}, s.written)
	})

	t.Run("CanceledContextReturns", func(t *testing.T) {
		t.Parallel()
		block := make(chan struct{})
		c := groupcommit.New(func(context.Context, []int) error { <-block; return nil }, nil, 1, 1)
		defer c.Stop()
		defer close(block)
		ctx, cancel := context.WithCancel(context.Background())
		go func() { _ = c.Submit(context.Background(), 1) }()
		cancel()
		require.ErrorIs(t, c.Submit(ctx, 2), context.Canceled)
	})
}
