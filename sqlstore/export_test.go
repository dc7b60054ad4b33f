package sqlstore

// DeliveryTasksQuery returns the SQL and arguments with which DeliveryTasks
// reads logIDs, for tests that check the query plan.
func DeliveryTasksQuery(logIDs []string) (string, []any) { return deliveryTasksQuery(logIDs) }
