-- An event's body moves out of its row into a table of its own (see `store/body.rs`): it is
-- written once, compressed, and a state change no longer rewrites it. Bodies already stored
-- move as they are ('identity'); new ones are compressed when that saves space.
CREATE TABLE event_bodies (
    event_id TEXT    NOT NULL PRIMARY KEY,
    -- The length of the body as received.
    size     INTEGER NOT NULL CHECK (size > 0),
    codec    TEXT    NOT NULL CHECK (codec IN ('identity', 'zstd')),
    data     BLOB    NOT NULL
) STRICT;

INSERT INTO event_bodies (event_id, size, codec, data)
    SELECT id, length(raw), 'identity', raw FROM events WHERE length(raw) > 0;

ALTER TABLE events DROP COLUMN raw;

-- A body goes with its event, whichever way the event is deleted (retention, or by hand).
CREATE TRIGGER events_delete_body AFTER DELETE ON events BEGIN
    DELETE FROM event_bodies WHERE event_id = old.id;
END;
