-- The write-back of an event's results is tracked per task (0005), where each worker's
-- result is written; the event-level counters it replaces were never set.
ALTER TABLE events DROP COLUMN write_back_attempts;
ALTER TABLE events DROP COLUMN write_back_last_err;
