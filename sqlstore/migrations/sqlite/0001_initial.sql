CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    username      TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL DEFAULT '',
    is_superuser  INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE refresh_tokens (
    jti        TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);

CREATE TABLE roles (
    id         INTEGER PRIMARY KEY,
    role_name  TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO roles (id, role_name, created_at, updated_at) VALUES
    (1, 'Admin', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    (2, 'Normal user', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

CREATE TABLE accounts (
    account_id                TEXT PRIMARY KEY,
    account_name              TEXT NOT NULL,
    email                     TEXT UNIQUE,
    website                   TEXT,
    token_hash                TEXT NOT NULL UNIQUE,
    previous_token_hash       TEXT,
    previous_token_expires_at TEXT,
    rate_limit_per_second     INTEGER,
    created_at                TEXT NOT NULL,
    updated_at                TEXT NOT NULL,
    created_by                TEXT REFERENCES users (id) ON DELETE SET NULL,
    updated_by                TEXT REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX accounts_previous_token_hash_idx ON accounts (previous_token_hash);
CREATE INDEX accounts_created_at_idx ON accounts (created_at, account_id);
CREATE INDEX accounts_account_name_idx ON accounts (account_name, account_id);

CREATE TABLE account_members (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id    INTEGER NOT NULL REFERENCES roles (id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    updated_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    UNIQUE (account_id, user_id)
);
CREATE INDEX account_members_user_id_idx ON account_members (user_id);
CREATE INDEX account_members_role_id_idx ON account_members (role_id);

CREATE TABLE invitations (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id TEXT REFERENCES accounts (account_id) ON DELETE CASCADE,
    expires_at TEXT NOT NULL,
    used_at    TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE destinations (
    id                                 TEXT PRIMARY KEY,
    account_id                         TEXT NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    url                                TEXT NOT NULL,
    http_method                        TEXT NOT NULL,
    headers                            TEXT NOT NULL DEFAULT '{}',
    signing_secret                     TEXT NOT NULL,
    previous_signing_secret            TEXT NOT NULL DEFAULT '',
    previous_signing_secret_expires_at TEXT,
    enabled                            INTEGER NOT NULL DEFAULT 1,
    disabled_reason                    TEXT NOT NULL DEFAULT '',
    created_at                         TEXT NOT NULL,
    updated_at                         TEXT NOT NULL,
    created_by                         TEXT REFERENCES users (id) ON DELETE SET NULL,
    updated_by                         TEXT REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX destinations_account_id_idx ON destinations (account_id, created_at, id);
CREATE INDEX destinations_http_method_idx ON destinations (http_method, created_at, id);
CREATE INDEX destinations_created_at_idx ON destinations (created_at, id);

CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    event_id    TEXT NOT NULL,
    body        TEXT NOT NULL,
    request_id  TEXT NOT NULL DEFAULT '',
    received_at TEXT NOT NULL,
    UNIQUE (account_id, event_id)
);
CREATE INDEX events_received_at_idx ON events (received_at);

CREATE TABLE delivery_logs (
    id                   TEXT PRIMARY KEY,
    event_pk             TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    account_id           TEXT NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    destination_id       TEXT NOT NULL REFERENCES destinations (id) ON DELETE CASCADE,
    event_id             TEXT NOT NULL,
    status               TEXT NOT NULL,
    attempts             INTEGER NOT NULL DEFAULT 0,
    response_status_code INTEGER,
    error                TEXT NOT NULL DEFAULT '',
    request_id           TEXT NOT NULL DEFAULT '',
    received_at          TEXT NOT NULL,
    processed_at         TEXT
);
CREATE INDEX delivery_logs_event_pk_idx ON delivery_logs (event_pk);
CREATE INDEX delivery_logs_account_received_idx ON delivery_logs (account_id, received_at, id);
CREATE INDEX delivery_logs_destination_received_idx ON delivery_logs (destination_id, received_at, id);
CREATE INDEX delivery_logs_received_idx ON delivery_logs (received_at, id);
CREATE INDEX delivery_logs_processed_idx ON delivery_logs (processed_at, id);
CREATE INDEX delivery_logs_status_received_idx ON delivery_logs (status, received_at, id);
CREATE INDEX delivery_logs_event_id_idx ON delivery_logs (event_id);

CREATE TABLE delivery_attempts (
    id              TEXT PRIMARY KEY,
    log_id          TEXT NOT NULL REFERENCES delivery_logs (id) ON DELETE CASCADE,
    number          INTEGER NOT NULL,
    started_at      TEXT NOT NULL,
    duration_ms     INTEGER NOT NULL,
    request_url     TEXT NOT NULL,
    response_status INTEGER,
    response_body   TEXT NOT NULL DEFAULT '',
    error_class     TEXT NOT NULL DEFAULT '',
    error_message   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX delivery_attempts_log_id_idx ON delivery_attempts (log_id, number);
