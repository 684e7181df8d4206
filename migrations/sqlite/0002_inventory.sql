-- Pools, servers with their hardware inventory, switches, firmware and OS image catalogues.
CREATE TABLE pools (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    group_id INTEGER NOT NULL REFERENCES auth_group (id) ON DELETE RESTRICT,
    parent_id INTEGER REFERENCES pools (id) ON DELETE RESTRICT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- Names are unique among siblings; top-level pools are siblings of each other.
CREATE UNIQUE INDEX pools_sibling_name ON pools (COALESCE(parent_id, 0), name);
CREATE INDEX pools_parent ON pools (parent_id);
CREATE INDEX pools_group ON pools (group_id);
CREATE INDEX pools_name ON pools (name);

CREATE TABLE servers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    -- True once a user set the name: inventory refreshes then keep it.
    name_is_custom INTEGER NOT NULL DEFAULT 0,
    model TEXT,
    serial_number TEXT,
    manufacturer TEXT,
    sku TEXT,
    bios_version TEXT,
    power_state TEXT,
    -- One column: a server is in at most one pool.
    resource_pool_id INTEGER REFERENCES pools (id) ON DELETE SET NULL,
    -- The BMC endpoint (nodes table); linked by the discovery migration.
    node_id INTEGER,
    bmc_url TEXT NOT NULL DEFAULT '',
    uuid TEXT,
    hostname TEXT,
    memory_gib REAL,
    processor_count INTEGER,
    health TEXT,
    last_inventory_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CONSTRAINT servers_uuid_key UNIQUE (uuid)
);
CREATE INDEX servers_pool_name ON servers (resource_pool_id, name);
CREATE INDEX servers_name ON servers (name);
CREATE INDEX servers_serial ON servers (serial_number);
CREATE INDEX servers_node ON servers (node_id);
CREATE INDEX servers_bmc_url ON servers (bmc_url);
CREATE INDEX servers_manufacturer ON servers (manufacturer);
CREATE INDEX servers_model ON servers (model);
CREATE INDEX servers_power_state ON servers (power_state);

CREATE TABLE server_processors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id INTEGER NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    socket TEXT,
    manufacturer TEXT,
    model TEXT,
    architecture TEXT,
    total_cores INTEGER,
    total_threads INTEGER,
    max_speed_mhz INTEGER
);
CREATE INDEX server_processors_server ON server_processors (server_id);

CREATE TABLE server_ethernet_interfaces (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id INTEGER NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name TEXT,
    mac_address TEXT,
    speed_mbps INTEGER,
    link_status TEXT,
    -- JSON array of strings.
    ipv4_addresses TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX server_ethernet_interfaces_server ON server_ethernet_interfaces (server_id);

CREATE TABLE server_storages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id INTEGER NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name TEXT,
    -- JSON arrays of objects, as read from the BMC.
    controllers TEXT NOT NULL DEFAULT '[]',
    drives TEXT NOT NULL DEFAULT '[]',
    volumes TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX server_storages_server ON server_storages (server_id);

CREATE TABLE server_firmwares (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id INTEGER NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name TEXT,
    version TEXT,
    component_id TEXT,
    updateable INTEGER NOT NULL DEFAULT 0,
    firmware_type TEXT NOT NULL DEFAULT 'Other'
);
CREATE INDEX server_firmwares_server ON server_firmwares (server_id);

CREATE TABLE switches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    manufacturer TEXT NOT NULL DEFAULT '',
    serial_number TEXT NOT NULL DEFAULT '',
    management_ip TEXT,
    resource_pool_id INTEGER REFERENCES pools (id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX switches_pool ON switches (resource_pool_id);
CREATE INDEX switches_name ON switches (name);

CREATE TABLE firmware_images (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    firmware_type TEXT NOT NULL DEFAULT '',
    version TEXT NOT NULL DEFAULT '',
    manufacturer TEXT NOT NULL DEFAULT '',
    -- JSON array of model names.
    models TEXT NOT NULL DEFAULT '[]',
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    -- File name inside <data dir>/firmware/.
    stored_name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX firmware_images_type ON firmware_images (firmware_type);
CREATE INDEX firmware_images_manufacturer ON firmware_images (manufacturer);

CREATE TABLE os_images (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    os_family TEXT NOT NULL DEFAULT '',
    version TEXT NOT NULL DEFAULT '',
    arch TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    -- File name inside <data dir>/os/.
    stored_name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX os_images_arch ON os_images (arch);
CREATE INDEX os_images_family ON os_images (os_family);
