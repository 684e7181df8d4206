-- Continuous discovery and zero-touch onboarding.
-- A range with `rescan_interval` (seconds) is due at `next_scan_at`; the scheduler claims a due
-- range with one conditional UPDATE, so one process starts each scan.
ALTER TABLE scan_ranges ADD COLUMN rescan_interval INTEGER;
ALTER TABLE scan_ranges ADD COLUMN next_scan_at TEXT;
ALTER TABLE scan_ranges ADD COLUMN auth_profile_id INTEGER REFERENCES auth_profiles (id) ON DELETE SET NULL;
ALTER TABLE scan_ranges ADD COLUMN auto_register INTEGER NOT NULL DEFAULT 0;
ALTER TABLE scan_ranges ADD COLUMN resource_pool_id INTEGER REFERENCES pools (id) ON DELETE SET NULL;
CREATE INDEX scan_ranges_next_scan ON scan_ranges (next_scan_at);

-- Bumped by every change to a profile's credentials: a node refused with an older version is
-- tried again, one with the current version is not (lockout safety).
ALTER TABLE auth_profiles ADD COLUMN credentials_version INTEGER NOT NULL DEFAULT 0;

-- The (profile, credentials version) onboarding last tried a node with.
ALTER TABLE nodes ADD COLUMN onboard_profile_id INTEGER REFERENCES auth_profiles (id) ON DELETE SET NULL;
ALTER TABLE nodes ADD COLUMN onboard_credentials_version INTEGER;

CREATE TRIGGER credentials_version_insert AFTER INSERT ON credentials
BEGIN
    UPDATE auth_profiles SET credentials_version = credentials_version + 1 WHERE id = NEW.auth_profile_id;
END;
CREATE TRIGGER credentials_version_delete AFTER DELETE ON credentials
BEGIN
    UPDATE auth_profiles SET credentials_version = credentials_version + 1 WHERE id = OLD.auth_profile_id;
END;
-- A re-sealed password (key rotation) is the same credential; a changed username or owner is not.
CREATE TRIGGER credentials_version_update AFTER UPDATE OF username, auth_profile_id ON credentials
BEGIN
    UPDATE auth_profiles SET credentials_version = credentials_version + 1
    WHERE id IN (OLD.auth_profile_id, NEW.auth_profile_id);
END;
