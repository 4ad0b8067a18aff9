-- mecha's schema on PostgreSQL, in the shape the SQLite schema has after its own migrations
-- (store/sqlite/migrations/): the same tables, columns and indexes, so that the two backends
-- answer every query alike. Times are unix seconds (or milliseconds where the column says so),
-- JSON is kept as text as the daemon wrote it. `seq` columns give the insertion order that
-- SQLite's rowid gives: ties of created_at are broken by it.

CREATE TABLE events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY,
    id          TEXT   NOT NULL PRIMARY KEY,
    delivery_id TEXT   NOT NULL DEFAULT '',
    dedup_key   TEXT   NOT NULL DEFAULT '',
    source      TEXT   NOT NULL CHECK (source <> ''),
    type        TEXT   NOT NULL,
    actor       TEXT   NOT NULL DEFAULT '',
    subject     TEXT   NOT NULL DEFAULT '',
    attrs       TEXT   NOT NULL DEFAULT '{}',
    state       TEXT   NOT NULL DEFAULT 'received',
    worker_name TEXT   NOT NULL DEFAULT '',
    task_id     TEXT   NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE INDEX events_state ON events (state);
CREATE INDEX events_source_type ON events (source, type);
CREATE INDEX events_newest ON events (created_at DESC, seq DESC);
-- A provider's delivery id is unique within that provider only; empty means "none given". The
-- index is what makes a redelivery to another daemon a duplicate too.
CREATE UNIQUE INDEX events_source_delivery ON events (source, delivery_id) WHERE delivery_id <> '';
-- Not unique: a key may come back once its earlier event has ended.
CREATE INDEX events_dedup_key ON events (dedup_key) WHERE dedup_key <> '';

-- Bodies, written once, compressed by mecha (store/body.rs): EXTERNAL keeps PostgreSQL from
-- compressing them again.
CREATE TABLE event_bodies (
    event_id TEXT   NOT NULL PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
    size     BIGINT NOT NULL CHECK (size > 0),
    codec    TEXT   NOT NULL CHECK (codec IN ('identity', 'zstd')),
    data     BYTEA  NOT NULL
);
ALTER TABLE event_bodies ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE workers (
    name         TEXT    NOT NULL PRIMARY KEY CHECK (name <> ''),
    definition   TEXT    NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'offline',
    error        TEXT    NOT NULL DEFAULT '',
    container_id TEXT    NOT NULL DEFAULT '',
    endpoint     TEXT    NOT NULL DEFAULT '',
    started_at   BIGINT,
    updated_at   BIGINT  NOT NULL,
    restarts     BIGINT  NOT NULL DEFAULT 0 CHECK (restarts >= 0),
    -- The daemon that runs the worker's container; '' when none does.
    runtime_owner TEXT   NOT NULL DEFAULT ''
);

CREATE TABLE tasks (
    seq                 BIGINT GENERATED ALWAYS AS IDENTITY,
    id                  TEXT   NOT NULL PRIMARY KEY,
    worker_name         TEXT   NOT NULL CHECK (worker_name <> ''),
    prompt              TEXT   NOT NULL,
    context             TEXT   NOT NULL DEFAULT '{}',
    event_id            TEXT   NOT NULL DEFAULT '',
    dedup_key           TEXT   NOT NULL DEFAULT '',
    trace_id            TEXT   NOT NULL DEFAULT '',
    state               TEXT   NOT NULL DEFAULT 'pending',
    result              TEXT   NOT NULL DEFAULT '',
    error               TEXT   NOT NULL DEFAULT '',
    attempts            BIGINT NOT NULL DEFAULT 0,
    max_retries         BIGINT NOT NULL DEFAULT 3,
    next_retry_at       BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    dispatched_at       BIGINT,
    completed_at        BIGINT,
    write_back          TEXT   NOT NULL DEFAULT '',
    write_back_attempts BIGINT NOT NULL DEFAULT 0,
    write_back_next_at  BIGINT,
    write_back_error    TEXT   NOT NULL DEFAULT '',
    decision            TEXT   NOT NULL DEFAULT '',
    lease_owner         TEXT,
    lease_until         BIGINT
);

CREATE INDEX tasks_state ON tasks (state);
CREATE INDEX tasks_worker_name ON tasks (worker_name);
CREATE INDEX tasks_event_id ON tasks (event_id);
CREATE INDEX tasks_state_next_retry ON tasks (state, next_retry_at);
CREATE INDEX tasks_newest ON tasks (created_at DESC, seq DESC);
-- One task per (event, worker), whatever its state, across every daemon.
CREATE UNIQUE INDEX tasks_dedup_key ON tasks (dedup_key) WHERE dedup_key <> '';
CREATE INDEX tasks_write_back_due ON tasks (write_back_next_at) WHERE write_back = 'pending';

CREATE TABLE logs (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trace_id TEXT   NOT NULL DEFAULT '',
    ts       BIGINT NOT NULL,
    action   TEXT   NOT NULL CHECK (action <> ''),
    outcome  TEXT   NOT NULL DEFAULT 'ok',
    event_id TEXT   NOT NULL DEFAULT '',
    task_id  TEXT   NOT NULL DEFAULT '',
    worker   TEXT   NOT NULL DEFAULT '',
    attempt  BIGINT NOT NULL DEFAULT 0,
    error    TEXT   NOT NULL DEFAULT '',
    detail   TEXT   NOT NULL DEFAULT '{}'
);

CREATE INDEX logs_trace_id ON logs (trace_id) WHERE trace_id <> '';
CREATE INDEX logs_event_id ON logs (event_id) WHERE event_id <> '';
CREATE INDEX logs_task_id ON logs (task_id) WHERE task_id <> '';
CREATE INDEX logs_action_ts ON logs (action, ts);
CREATE INDEX logs_ts ON logs (ts);

CREATE TABLE signed_deliveries (
    source     TEXT   NOT NULL CHECK (source <> ''),
    digest     BYTEA  NOT NULL CHECK (length(digest) = 32),
    event_id   TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (source, digest)
);

CREATE INDEX signed_deliveries_created_at ON signed_deliveries (created_at);
