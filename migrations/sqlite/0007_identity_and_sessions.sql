-- Issue 9. Server identity is the (UUID, serial number) pair: the same UUID with another serial
-- is another machine. Placeholder values are no identity and are stored as NULL.
--
-- SQLite cannot drop the table constraint `servers_uuid_key` without rebuilding `servers`
-- (whose rebuild would cascade into its hardware rows and drop columns later migrations add),
-- so the constrained column is renamed to `uuid_retired` (kept, always NULL) and `uuid` is a new,
-- unconstrained column.
ALTER TABLE servers RENAME COLUMN uuid TO uuid_retired;
ALTER TABLE servers ADD COLUMN uuid TEXT;
UPDATE servers SET uuid = uuid_retired, uuid_retired = NULL;
UPDATE servers SET uuid = NULL
 WHERE trim(uuid) = ''
    OR lower(replace(uuid, '-', '')) IN ('00000000000000000000000000000000',
                                         'ffffffffffffffffffffffffffffffff',
                                         '03000200040005000006000700080009');
UPDATE servers SET serial_number = NULL
 WHERE lower(trim(serial_number)) IN ('', 'to be filled by o.e.m.', 'to be filled by o.e.m',
       'default string', 'system serial number', '0123456789', '123456789', 'not specified',
       'not applicable', 'n/a', 'none', 'null', 'unknown');
CREATE UNIQUE INDEX servers_identity ON servers (uuid, serial_number);
CREATE INDEX servers_uuid ON servers (uuid);

-- The journal of open Redfish sessions: written before a session is used, deleted once its
-- DELETE succeeded. Rows left by a process that died are logged out by any replica once
-- `expires_at` passed (or when the job that owned them is taken over).
-- token = 96-bit nonce || AES-256-GCM ciphertext under the credential key, the session URL
-- as associated data.
CREATE TABLE bmc_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bmc_url TEXT NOT NULL,
    session_url TEXT NOT NULL,
    token BLOB NOT NULL,
    cert_sha256 TEXT,
    job_id INTEGER,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    CONSTRAINT bmc_sessions_url_key UNIQUE (session_url)
);
CREATE INDEX bmc_sessions_expires ON bmc_sessions (expires_at);
CREATE INDEX bmc_sessions_job ON bmc_sessions (job_id);
