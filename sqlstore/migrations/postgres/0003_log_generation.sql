-- A replay or recovery raises a log's generation and queues a new job with
-- it; a job that carries an older generation was superseded and does nothing.
ALTER TABLE delivery_logs ADD COLUMN generation integer NOT NULL DEFAULT 0;
CREATE INDEX delivery_logs_destination_status_idx ON delivery_logs (destination_id, status, received_at);
