-- A job parked by its handler (waiting for an event or a deadline) holds no worker and no
-- lease: `wait_until` is set while it waits (its `lease_expires_at` is then the time it is
-- claimable again), and `wakes` counts explicit wake-ups (a wake that comes while the job still
-- runs makes its park claimable at once).
ALTER TABLE jobs ADD COLUMN wait_until TEXT;
ALTER TABLE jobs ADD COLUMN wakes INTEGER NOT NULL DEFAULT 0;
