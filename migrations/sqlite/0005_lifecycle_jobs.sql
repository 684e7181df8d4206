-- Lifecycle jobs (power, inventory refresh, firmware updates, deployments): what a job was
-- asked to do, one result per server, which servers it targets, and which servers are busy.
ALTER TABLE jobs ADD COLUMN params TEXT NOT NULL DEFAULT '{}';
ALTER TABLE jobs ADD COLUMN results TEXT NOT NULL DEFAULT '[]';

-- The servers a lifecycle job works on (the `server` filter of /api/job/); kept after the
-- server is deleted, as the job's history.
CREATE TABLE job_servers (
    job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    server_id INTEGER NOT NULL,
    PRIMARY KEY (job_id, server_id)
);
CREATE INDEX job_servers_server ON job_servers (server_id, job_id);

-- One active lifecycle job per server: inserted with the job, deleted in the transaction that
-- ends it. The primary key is the busy rule.
CREATE TABLE server_busy (
    server_id INTEGER PRIMARY KEY REFERENCES servers (id) ON DELETE CASCADE,
    job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    kind TEXT NOT NULL
);
CREATE INDEX server_busy_job ON server_busy (job_id);

-- Periodic work that one process of many does per round (the power poll): the process that
-- moves `due_at` forward owns the round.
CREATE TABLE periodic_rounds (
    name TEXT PRIMARY KEY,
    owner TEXT,
    due_at TEXT NOT NULL
);
INSERT INTO periodic_rounds (name, owner, due_at) VALUES ('power_poll', NULL, '1970-01-01T00:00:00.000000Z');
