-- Restarts in a row of a managed worker's container since it was last seen healthy, kept with
-- the worker so that a daemon restart does not give a crash-looping container a fresh budget.
ALTER TABLE workers ADD COLUMN restarts INTEGER NOT NULL DEFAULT 0 CHECK (restarts >= 0);
