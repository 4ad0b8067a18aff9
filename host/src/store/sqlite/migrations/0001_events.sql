-- Events: one row per incoming webhook delivery or schedule tick, kept from receipt to its end
-- state. Shape follows the Go mecha's final events table (reference 12.1), written in one step.
-- STRICT makes SQLite refuse a value of the wrong type instead of storing it anyway.
CREATE TABLE events (
    id                  TEXT    NOT NULL PRIMARY KEY,
    delivery_id         TEXT    NOT NULL DEFAULT '',
    dedup_key           TEXT    NOT NULL DEFAULT '',
    source              TEXT    NOT NULL CHECK (source != ''),
    type                TEXT    NOT NULL,
    actor               TEXT    NOT NULL DEFAULT '',
    subject             TEXT    NOT NULL DEFAULT '',
    attrs               TEXT    NOT NULL DEFAULT '{}',
    raw                 BLOB    NOT NULL DEFAULT x'',
    state               TEXT    NOT NULL DEFAULT 'received',
    worker_name         TEXT    NOT NULL DEFAULT '',
    task_id             TEXT    NOT NULL DEFAULT '',
    write_back_attempts INTEGER NOT NULL DEFAULT 0,
    write_back_last_err TEXT    NOT NULL DEFAULT '',
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
) STRICT;

CREATE INDEX events_state ON events (state);
CREATE INDEX events_source_type ON events (source, type);
-- A provider's delivery id is unique within that provider only; empty means "none given".
CREATE UNIQUE INDEX events_source_delivery ON events (source, delivery_id) WHERE delivery_id != '';
-- Not unique: a key may come back once its earlier event has ended (completed, failed, skipped).
CREATE INDEX events_dedup_key ON events (dedup_key) WHERE dedup_key != '';
