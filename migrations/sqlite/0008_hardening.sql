-- Tokens issued before this time (a password change, a deactivation) are refused.
ALTER TABLE auth_user ADD COLUMN tokens_valid_after TEXT;

-- Login attempts in the throttle windows, shared by every process on this database. `key` is
-- a digest of (client address, username) or of the username alone.
CREATE TABLE login_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX login_attempts_key_at ON login_attempts (key, at);

-- Every successful write through the API.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    user_id INTEGER,
    username TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    object_kind TEXT NOT NULL DEFAULT '',
    object_id TEXT,
    summary TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_created ON audit_log (created_at);
CREATE INDEX audit_log_object ON audit_log (object_kind, object_id);
