-- Workers: one row per registered worker, holding its definition and its runtime state (reference
-- 2.4). The definition is the worker's configuration as JSON, opaque to the store: the worker
-- module owns its shape. State, error and runtime columns change often; the definition rarely.
CREATE TABLE workers (
    name         TEXT    NOT NULL PRIMARY KEY CHECK (name != ''),
    definition   TEXT    NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'offline',
    error        TEXT    NOT NULL DEFAULT '',
    container_id TEXT    NOT NULL DEFAULT '',
    endpoint     TEXT    NOT NULL DEFAULT '',
    -- Unix seconds when the worker last came up from offline; NULL while offline.
    started_at   INTEGER,
    updated_at   INTEGER NOT NULL
) STRICT;
