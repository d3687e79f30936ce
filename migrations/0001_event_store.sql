-- 0001: tenants, tokens, and the write side: the event log, its outbox,
-- snapshots, operations and idempotency keys. See DESIGN.md §4-§5.

CREATE TABLE tenants (
    tenant_id   uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Bearer tokens. Only a SHA-256 of the token is stored; it is shown once.
CREATE TABLE api_tokens (
    token_id    uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (tenant_id),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- The log. global_position is taken at INSERT but visible at COMMIT, so every
-- reader orders by (tx_id, global_position) and stays behind the fence
-- tx_id < pg_snapshot_xmin(pg_current_snapshot()).
CREATE TABLE events (
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx_id           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    event_id        uuid NOT NULL UNIQUE,
    tenant_id       uuid NOT NULL,
    aggregate_type  text NOT NULL,
    aggregate_id    uuid NOT NULL,
    version         bigint NOT NULL CHECK (version > 0),
    event_type      text NOT NULL,
    event_version   integer NOT NULL DEFAULT 1,
    data            jsonb NOT NULL,  -- proto3 JSON of the event message
    metadata        jsonb NOT NULL,  -- {"correlationId", "causationId", "userId"}
    operation_id    uuid NOT NULL,
    correlation_id  text NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    -- the optimistic-concurrency guard: a violation is a conflict
    CONSTRAINT events_stream_version UNIQUE (tenant_id, aggregate_type, aggregate_id, version)
);
CREATE INDEX events_log_order ON events (tx_id, global_position);
CREATE INDEX events_tenant_log_order ON events (tenant_id, tx_id, global_position);
CREATE INDEX events_correlation ON events (tenant_id, correlation_id, tx_id, global_position);
CREATE INDEX events_stream_time ON events (tenant_id, aggregate_type, aggregate_id, recorded_at);
CREATE INDEX events_payment ON events (tenant_id, aggregate_id, (data ->> 'paymentId'))
    WHERE event_type IN ('PaymentMade', 'PaymentRefunded');

-- The log is append-only.
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are immutable (% rejected)', TG_OP USING ERRCODE = '55000';
END $$;
CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();

-- One row per event to deliver, written in the event's transaction.
-- published_at is set by the projector; rows are deleted after a retention.
CREATE TABLE outbox (
    global_position bigint PRIMARY KEY REFERENCES events (global_position),
    tx_id           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    tenant_id       uuid NOT NULL,
    published_at    timestamptz
);
CREATE INDEX outbox_pending ON outbox (tx_id, global_position) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Aggregate state every N events, for loading and time travel.
CREATE TABLE snapshots (
    tenant_id       uuid NOT NULL,
    aggregate_type  text NOT NULL,
    aggregate_id    uuid NOT NULL,
    version         bigint NOT NULL,
    state           jsonb NOT NULL,
    recorded_at     timestamptz NOT NULL,  -- of the event at `version`
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, aggregate_type, aggregate_id, version)
);

-- The status of every command; the transfer saga completes its own.
CREATE TABLE operations (
    operation_id    uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    kind            text NOT NULL,
    status          text NOT NULL CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED')),
    failure_reason  text,
    aggregate_type  text NOT NULL,
    aggregate_id    uuid NOT NULL,
    correlation_id  text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX operations_tenant ON operations (tenant_id, operation_id);

-- A retried command gets the stored answer, byte for byte.
CREATE TABLE idempotency_keys (
    tenant_id       uuid NOT NULL,
    key             text NOT NULL,
    request_hash    bytea NOT NULL,    -- SHA-256 of method path + request bytes
    status_code     integer NOT NULL,  -- gRPC status of the original answer
    status_message  text NOT NULL DEFAULT '',
    response        bytea,             -- serialized reply (without its position) when status_code = 0
    position_tx_id  xid8,              -- the reply's position, filled in by the same statement
    position_global bigint,
    operation_id    uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE projector_checkpoints (
    name            text PRIMARY KEY,
    tx_id           xid8 NOT NULL DEFAULT '0',
    global_position bigint NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE dead_letters (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    projection      text NOT NULL,
    global_position bigint NOT NULL,
    tx_id           xid8 NOT NULL,
    tenant_id       uuid NOT NULL,
    aggregate_type  text NOT NULL,
    aggregate_id    uuid NOT NULL,
    error           text NOT NULL,
    attempts        integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    UNIQUE (projection, global_position)
);
