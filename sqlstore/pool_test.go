package sqlstore_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher/internal/testdb"
	"github.com/datapusher/datapusher/sqlstore"
)

func TestPoolSizeFromURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("SetsWarmConnections", func(t *testing.T) {
		store, err := sqlstore.Open(ctx, withParam(t, testdb.PostgresURL(), "pool_max_conns", "3"))
		require.NoError(t, err, "the parameter is not passed on to PostgreSQL, which would reject it")
		t.Cleanup(func() { store.Close() })
		require.NoError(t, store.Warm(ctx))
		require.Equal(t, 3, store.DB().Stats().OpenConnections)
		require.Equal(t, 3, store.DB().Stats().MaxOpenConnections)
	})
	t.Run("DefaultsToTwenty", func(t *testing.T) {
		store, err := sqlstore.Open(ctx, withParam(t, testdb.PostgresURL(), "pool_max_conns", ""))
		require.NoError(t, err)
		t.Cleanup(func() { store.Close() })
		require.Equal(t, 20, store.DB().Stats().MaxOpenConnections)
	})
	t.Run("RejectsOtherPoolSettings", func(t *testing.T) {
		_, err := sqlstore.Open(ctx, withParam(t, testdb.PostgresURL(), "pool_min_conns", "2"))
		require.ErrorContains(t, err, "pool_min_conns is not supported; of the pool settings only pool_max_conns is")
	})
	for _, value := range []string{"0", "-1", "1001", "ten", ""} {
		t.Run("Rejects_"+value, func(t *testing.T) {
			_, err := sqlstore.Open(ctx, "postgres://postgres:secret-password@127.0.0.1:5432/test?pool_max_conns="+value)
			require.ErrorContains(t, err, `pool_max_conns "`+value+`" is not a whole number from 1 to 1000`)
			require.NotContains(t, err.Error(), "secret-password")
		})
	}
}
