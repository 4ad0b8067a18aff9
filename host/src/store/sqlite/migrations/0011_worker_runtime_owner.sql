-- Which daemon runs a managed worker's container (its daemon id, see Home::daemon_id): among
-- daemons sharing a database, only that one checks, restarts and stops the container. Empty
-- for workers without a container, and for containers started before this column existed
-- (taken as the one daemon's).
ALTER TABLE workers ADD COLUMN runtime_owner TEXT NOT NULL DEFAULT '';
