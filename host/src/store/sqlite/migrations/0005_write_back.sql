-- Write-back: what the worker's policies decided about a completed task's result, and where
-- writing the allowed part to the provider stands. A completed event task starts `pending`
-- (so a crash before the write-back finds it again), then becomes `done` or, after its
-- retries, `failed` until an operator retries it. Direct tasks have nothing to write back ('').
ALTER TABLE tasks ADD COLUMN write_back TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN write_back_attempts INTEGER NOT NULL DEFAULT 0;
-- Unix milliseconds before which a pending write-back is not tried again.
ALTER TABLE tasks ADD COLUMN write_back_next_at INTEGER;
ALTER TABLE tasks ADD COLUMN write_back_error TEXT NOT NULL DEFAULT '';
-- The policies' combined decision as JSON ({"allowed":[…],"denied":[…]}); '' until decided.
ALTER TABLE tasks ADD COLUMN decision TEXT NOT NULL DEFAULT '';

-- The write-back scan: pending write-backs whose time has come.
CREATE INDEX tasks_write_back_due ON tasks (write_back, write_back_next_at) WHERE write_back = 'pending';
