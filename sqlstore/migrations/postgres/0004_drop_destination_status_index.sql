-- Every delivery inserts and then updates its log, and each write adds an
-- entry to every index of delivery_logs. This index served only recovering a
-- destination's failed deliveries, an occasional operation that reads the
-- destination's logs in a time window through
-- delivery_logs_destination_received_idx instead.
DROP INDEX delivery_logs_destination_status_idx;
