package sqlstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/internal/testdb"
	"github.com/datapusher/datapusher/sqlstore"
)

func TestDeliveryTasksKeepRequestedOrder(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			store := testdb.Open(t, dialect)
			owner := createUser(t, store, "order@example.com")
			account := createAccount(t, store, owner, "Order")
			destinations := []*datapusher.Destination{
				createDestination(t, store, account, "POST"), createDestination(t, store, account, "PUT"),
			}
			var events []*sqlstore.NewEvent
			for i := range 20 {
				events = append(events, insertEventAt(t, store, account, fmt.Sprintf("order-%d", i),
					time.Now(), destinations...))
			}
			inserted := logIDsOf(events...)

			reversed := slices.Clone(inserted)
			slices.Reverse(reversed)
			sorted := slices.Clone(inserted)
			slices.Sort(sorted)
			for name, want := range map[string][]string{"Reversed": reversed, "ByID": sorted} {
				t.Run(name, func(t *testing.T) {
					// A duplicate, an id of no log and an invalid id are left out.
					request := append(slices.Clone(want), want[3], uuid.NewString(), "not-a-log")
					tasks, err := store.DeliveryTasks(context.Background(), request)
					require.NoError(t, err)
					got := make([]string, 0, len(tasks))
					for _, task := range tasks {
						got = append(got, task.Log.ID)
					}
					require.Equal(t, want, got)
				})
			}
		})
	}
}
