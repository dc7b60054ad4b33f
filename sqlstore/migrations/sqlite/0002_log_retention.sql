-- A per-account override of how long delivery logs are kept, in days. NULL
-- keeps the global retention period.
ALTER TABLE accounts ADD COLUMN log_retention_days INTEGER CHECK (log_retention_days > 0);

-- Retention deletes an account's old events, and account statistics count
-- an account's events in a time window.
CREATE INDEX events_account_received_idx ON events (account_id, received_at, id);
