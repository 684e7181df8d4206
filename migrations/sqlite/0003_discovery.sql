-- Jobs, scan ranges, discovered nodes, BMC auth profiles and their sealed credentials.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued',
    progress TEXT NOT NULL DEFAULT '{}',
    targets TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires_at TEXT,
    created_by INTEGER REFERENCES auth_user (id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT
);
CREATE INDEX jobs_claim ON jobs (status, lease_expires_at);

CREATE TABLE scan_ranges (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    ip_from TEXT NOT NULL,
    ip_to TEXT NOT NULL,
    ports TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'ready',
    last_scan_at TEXT,
    last_error TEXT,
    progress TEXT NOT NULL DEFAULT '{"scanned":0,"total":0,"found":0}',
    job_id INTEGER REFERENCES jobs (id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE auth_profiles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    node_classification TEXT NOT NULL,
    bmc TEXT NOT NULL DEFAULT 'redfish',
    created_at TEXT NOT NULL,
    CONSTRAINT auth_profiles_node_classification_key UNIQUE (node_classification)
);

-- secret = 96-bit nonce || AES-256-GCM ciphertext, sealed with the row id as associated data.
CREATE TABLE credentials (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    auth_profile_id INTEGER NOT NULL REFERENCES auth_profiles (id) ON DELETE CASCADE,
    username TEXT NOT NULL,
    secret BLOB,
    created_at TEXT NOT NULL
);
CREATE INDEX credentials_profile ON credentials (auth_profile_id);

CREATE TABLE nodes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL,
    ip_address TEXT NOT NULL,
    port INTEGER NOT NULL,
    vendor TEXT,
    product TEXT,
    uuid TEXT,
    redfish_version TEXT,
    cert_sha256 TEXT,
    status TEXT NOT NULL DEFAULT 'discovered',
    previous_status TEXT,
    scan_range_id INTEGER REFERENCES scan_ranges (id) ON DELETE SET NULL,
    auth_profile_id INTEGER REFERENCES auth_profiles (id),
    credential_id INTEGER REFERENCES credentials (id) ON DELETE SET NULL,
    server_id INTEGER,
    last_error TEXT,
    registering_until TEXT,
    last_seen_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CONSTRAINT nodes_endpoint_key UNIQUE (ip_address, port)
);
CREATE INDEX nodes_scan_range ON nodes (scan_range_id);
CREATE INDEX nodes_status ON nodes (status);

-- Deleting a server (DELETE /api/server/{id}/) sets its node back to `discovered`.
CREATE TRIGGER servers_release_node AFTER DELETE ON servers
BEGIN
    UPDATE nodes SET server_id = NULL,
        status = CASE WHEN status = 'registered' THEN 'discovered' ELSE status END,
        previous_status = CASE WHEN previous_status = 'registered' THEN 'discovered' ELSE previous_status END
    WHERE server_id = OLD.id;
END;
