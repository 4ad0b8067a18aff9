-- Tasks: one row per prompt sent (or to be sent) to a worker (reference 6.1), plus the trace id
-- that ties it to its event's audit trail. Written in one step in its final shape.
CREATE TABLE tasks (
    id            TEXT    NOT NULL PRIMARY KEY,
    worker_name   TEXT    NOT NULL CHECK (worker_name != ''),
    prompt        TEXT    NOT NULL,
    context       TEXT    NOT NULL DEFAULT '{}',
    event_id      TEXT    NOT NULL DEFAULT '',
    -- '<event_id>:<worker_name>' for tasks made from an event, '' otherwise.
    dedup_key     TEXT    NOT NULL DEFAULT '',
    trace_id      TEXT    NOT NULL DEFAULT '',
    state         TEXT    NOT NULL DEFAULT 'pending',
    result        TEXT    NOT NULL DEFAULT '',
    error         TEXT    NOT NULL DEFAULT '',
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_retries   INTEGER NOT NULL DEFAULT 3,
    next_retry_at INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    dispatched_at INTEGER,
    completed_at  INTEGER
) STRICT;

CREATE INDEX tasks_state ON tasks (state);
CREATE INDEX tasks_worker_name ON tasks (worker_name);
CREATE INDEX tasks_event_id ON tasks (event_id);
-- The due-task scan: pending tasks whose retry time has come.
CREATE INDEX tasks_state_next_retry ON tasks (state, next_retry_at);
-- Listing newest first, and keyset pagination from a given task.
CREATE INDEX tasks_created_at ON tasks (created_at);
-- One task per (event, worker), whatever its state: a redelivered or re-matched event cannot make
-- a worker do the same job twice.
CREATE UNIQUE INDEX tasks_dedup_key ON tasks (dedup_key) WHERE dedup_key != '';
