-- Users, groups, revoked tokens and installation settings.
CREATE TABLE auth_group (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    CONSTRAINT auth_group_name_key UNIQUE (name)
);
-- Group 1 is the one the guide's examples use; AUTOINCREMENT never reuses it.
INSERT INTO auth_group (id, name) VALUES (1, 'Default');

CREATE TABLE auth_user (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL,
    password TEXT NOT NULL,
    email TEXT NOT NULL DEFAULT '',
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    is_superuser INTEGER NOT NULL DEFAULT 0,
    is_active INTEGER NOT NULL DEFAULT 1,
    last_login TEXT,
    date_joined TEXT NOT NULL,
    CONSTRAINT auth_user_username_key UNIQUE (username)
);

CREATE TABLE auth_user_groups (
    user_id INTEGER NOT NULL REFERENCES auth_user (id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL REFERENCES auth_group (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, group_id)
);
CREATE INDEX auth_user_groups_group ON auth_user_groups (group_id);

CREATE TABLE token_blacklist (
    jti TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL
);

CREATE TABLE installation (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
