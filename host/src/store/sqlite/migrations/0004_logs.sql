-- Logs: the audit trail (reference 12.2), one row per pipeline stage an event or task went
-- through. `ts` is in unix milliseconds so that stages within one second keep their order when
-- read by time; `id` orders them exactly.
CREATE TABLE logs (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    trace_id TEXT    NOT NULL DEFAULT '',
    ts       INTEGER NOT NULL,
    action   TEXT    NOT NULL CHECK (action != ''),
    outcome  TEXT    NOT NULL DEFAULT 'ok',
    event_id TEXT    NOT NULL DEFAULT '',
    task_id  TEXT    NOT NULL DEFAULT '',
    worker   TEXT    NOT NULL DEFAULT '',
    attempt  INTEGER NOT NULL DEFAULT 0,
    error    TEXT    NOT NULL DEFAULT '',
    detail   TEXT    NOT NULL DEFAULT '{}'
) STRICT;

-- Partial indexes: most rows lack one or another of these ids. Queries repeat the `!= ''` term so
-- that SQLite can use them.
CREATE INDEX logs_trace_id ON logs (trace_id) WHERE trace_id != '';
CREATE INDEX logs_event_id ON logs (event_id) WHERE event_id != '';
CREATE INDEX logs_task_id ON logs (task_id) WHERE task_id != '';
CREATE INDEX logs_action_ts ON logs (action, ts);
CREATE INDEX logs_ts ON logs (ts);
