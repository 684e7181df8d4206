-- The uploaded file's original name (media URLs end with it), a lookup of catalogue entries by
-- content, firmware baselines and the firmware inventory index compliance reads.
ALTER TABLE firmware_images ADD COLUMN file_name TEXT NOT NULL DEFAULT '';
ALTER TABLE os_images ADD COLUMN file_name TEXT NOT NULL DEFAULT '';
CREATE INDEX firmware_images_sha256 ON firmware_images (sha256);
CREATE INDEX os_images_sha256 ON os_images (sha256);

CREATE TABLE firmware_baselines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    -- JSON array of firmware ids in the baseline's order (the rows below guard integrity).
    firmware_binaries TEXT NOT NULL DEFAULT '[]',
    created_by INTEGER REFERENCES auth_user (id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CONSTRAINT firmware_baselines_name_key UNIQUE (name)
);

CREATE TABLE firmware_baseline_binaries (
    baseline_id INTEGER NOT NULL REFERENCES firmware_baselines (id) ON DELETE CASCADE,
    firmware_id INTEGER NOT NULL REFERENCES firmware_images (id),
    position INTEGER NOT NULL,
    PRIMARY KEY (baseline_id, firmware_id)
);
CREATE INDEX firmware_baseline_binaries_firmware ON firmware_baseline_binaries (firmware_id);

-- Compliance groups one firmware type's entries by server: a covering index.
CREATE INDEX server_firmwares_type_server ON server_firmwares (firmware_type, server_id, version);
