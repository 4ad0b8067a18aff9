-- Which daemon holds a dispatched task, and until when (unix milliseconds): a task is claimed
-- before it is sent, and its sender renews the lease while the worker works. A lease that runs
-- out (its daemon died or lost the database) is released by any daemon's sweep, which finds the
-- few dispatched tasks through tasks_state.
ALTER TABLE tasks ADD COLUMN lease_owner TEXT;
ALTER TABLE tasks ADD COLUMN lease_until INTEGER;
