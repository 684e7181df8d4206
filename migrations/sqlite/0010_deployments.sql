-- OS deployments over virtual media, and a pool's firmware baseline.
CREATE TABLE deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Kept after the server or image is deleted, as history (an active deployment locks its
    -- server against deletion).
    server_id INTEGER REFERENCES servers (id) ON DELETE SET NULL,
    os_id INTEGER REFERENCES os_images (id) ON DELETE SET NULL,
    status TEXT NOT NULL DEFAULT 'queued',
    step TEXT NOT NULL DEFAULT 'insert_media',
    progress INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    job_id INTEGER REFERENCES jobs (id) ON DELETE SET NULL,
    -- SHA-256 (hex) of the callback token; the token itself is never stored.
    callback_hash TEXT NOT NULL,
    -- The virtual media slot the image went into (to eject it).
    media_path TEXT,
    created_by INTEGER REFERENCES auth_user (id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX deployments_server ON deployments (server_id, status);
CREATE INDEX deployments_job ON deployments (job_id);
CREATE UNIQUE INDEX deployments_callback ON deployments (callback_hash);

ALTER TABLE pools ADD COLUMN firmware_baseline_id INTEGER REFERENCES firmware_baselines (id) ON DELETE SET NULL;
