CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL UNIQUE,
    username      text NOT NULL DEFAULT '',
    password_hash text NOT NULL DEFAULT '',
    is_superuser  boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

CREATE TABLE refresh_tokens (
    jti        text PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);

CREATE TABLE roles (
    id         integer PRIMARY KEY,
    role_name  text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
INSERT INTO roles (id, role_name, created_at, updated_at) VALUES
    (1, 'Admin', now(), now()),
    (2, 'Normal user', now(), now());

CREATE TABLE accounts (
    account_id                uuid PRIMARY KEY,
    account_name              text NOT NULL,
    email                     text UNIQUE,
    website                   text,
    token_hash                text NOT NULL UNIQUE,
    previous_token_hash       text,
    previous_token_expires_at timestamptz,
    rate_limit_per_second     integer,
    created_at                timestamptz NOT NULL,
    updated_at                timestamptz NOT NULL,
    created_by                uuid REFERENCES users (id) ON DELETE SET NULL,
    updated_by                uuid REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX accounts_previous_token_hash_idx ON accounts (previous_token_hash);
CREATE INDEX accounts_created_at_idx ON accounts (created_at, account_id);
CREATE INDEX accounts_account_name_idx ON accounts (account_name, account_id);

CREATE TABLE account_members (
    id         uuid PRIMARY KEY,
    account_id uuid NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id    integer NOT NULL REFERENCES roles (id),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    updated_by uuid REFERENCES users (id) ON DELETE SET NULL,
    UNIQUE (account_id, user_id)
);
CREATE INDEX account_members_user_id_idx ON account_members (user_id);
CREATE INDEX account_members_role_id_idx ON account_members (role_id);

CREATE TABLE invitations (
    token_hash text PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id uuid REFERENCES accounts (account_id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL
);

CREATE TABLE destinations (
    id                                 uuid PRIMARY KEY,
    account_id                         uuid NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    url                                text NOT NULL,
    http_method                        text NOT NULL,
    headers                            text NOT NULL DEFAULT '{}',
    signing_secret                     text NOT NULL,
    previous_signing_secret            text NOT NULL DEFAULT '',
    previous_signing_secret_expires_at timestamptz,
    enabled                            boolean NOT NULL DEFAULT true,
    disabled_reason                    text NOT NULL DEFAULT '',
    created_at                         timestamptz NOT NULL,
    updated_at                         timestamptz NOT NULL,
    created_by                         uuid REFERENCES users (id) ON DELETE SET NULL,
    updated_by                         uuid REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX destinations_account_id_idx ON destinations (account_id, created_at, id);
CREATE INDEX destinations_http_method_idx ON destinations (http_method, created_at, id);
CREATE INDEX destinations_created_at_idx ON destinations (created_at, id);

CREATE TABLE events (
    id          uuid PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    event_id    text NOT NULL,
    body        text NOT NULL,
    request_id  text NOT NULL DEFAULT '',
    received_at timestamptz NOT NULL,
    UNIQUE (account_id, event_id)
);
CREATE INDEX events_received_at_idx ON events (received_at);

CREATE TABLE delivery_logs (
    id                   uuid PRIMARY KEY,
    event_pk             uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    account_id           uuid NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    destination_id       uuid NOT NULL REFERENCES destinations (id) ON DELETE CASCADE,
    event_id             text NOT NULL,
    status               text NOT NULL,
    attempts             integer NOT NULL DEFAULT 0,
    response_status_code integer,
    error                text NOT NULL DEFAULT '',
    request_id           text NOT NULL DEFAULT '',
    received_at          timestamptz NOT NULL,
    processed_at         timestamptz
);
CREATE INDEX delivery_logs_event_pk_idx ON delivery_logs (event_pk);
CREATE INDEX delivery_logs_account_received_idx ON delivery_logs (account_id, received_at, id);
CREATE INDEX delivery_logs_destination_received_idx ON delivery_logs (destination_id, received_at, id);
CREATE INDEX delivery_logs_received_idx ON delivery_logs (received_at, id);
CREATE INDEX delivery_logs_processed_idx ON delivery_logs (processed_at, id);
CREATE INDEX delivery_logs_status_received_idx ON delivery_logs (status, received_at, id);
CREATE INDEX delivery_logs_event_id_idx ON delivery_logs (event_id);

CREATE TABLE delivery_attempts (
    id              uuid PRIMARY KEY,
    log_id          uuid NOT NULL REFERENCES delivery_logs (id) ON DELETE CASCADE,
    number          integer NOT NULL,
    started_at      timestamptz NOT NULL,
    duration_ms     bigint NOT NULL,
    request_url     text NOT NULL,
    response_status integer,
    response_body   text NOT NULL DEFAULT '',
    error_class     text NOT NULL DEFAULT '',
    error_message   text NOT NULL DEFAULT ''
);
CREATE INDEX delivery_attempts_log_id_idx ON delivery_attempts (log_id, number);
