-- Signed request bodies already received, per source instance: a provider's signature covers the
-- body but not its delivery id, so a captured signed body could otherwise be sent again under new
-- delivery ids (or none) and run again. `digest` is the SHA-256 of the signed message; `event_id`
-- the first event the request produced, named in the duplicate answer. Pruned with retention.
CREATE TABLE signed_deliveries (
    source     TEXT    NOT NULL CHECK (source != ''),
    digest     BLOB    NOT NULL CHECK (length(digest) = 32),
    event_id   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (source, digest)
) STRICT, WITHOUT ROWID;

CREATE INDEX signed_deliveries_created_at ON signed_deliveries (created_at);
