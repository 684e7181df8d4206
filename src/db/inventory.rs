//! The inventory write: [`upsert_from_inventory`] and its input types ([`ServerInventory`] and
//! the per-component inputs), which create or update a `servers` row and replace its hardware
//! rows (`server_processors`, `server_ethernet_interfaces`, `server_storages`,
//! `server_firmwares`).
//!
//! Everything here is re-exported from [`super::servers`], where callers find it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::servers::NAME_MAX;
use super::{insert_rows, now, update_columns, DbResult, Exec, Sql, Val};

/// A processor as read from the BMC.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessorInput {
    /// Socket label (`CPU.Socket.1`).
    pub socket: Option<String>,
    /// Vendor.
    pub manufacturer: Option<String>,
    /// Model string.
    pub model: Option<String>,
    /// Instruction set (`x86-64`).
    pub architecture: Option<String>,
    /// Cores.
    pub total_cores: Option<i64>,
    /// Threads.
    pub total_threads: Option<i64>,
    /// Highest speed in MHz.
    pub max_speed_mhz: Option<i64>,
}

/// An Ethernet interface as read from the BMC.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EthernetInput {
    /// Interface name or Redfish id.
    pub name: Option<String>,
    /// MAC address.
    pub mac_address: Option<String>,
    /// Link speed in Mbit/s.
    pub speed_mbps: Option<i64>,
    /// Redfish `LinkStatus` (`LinkUp`, `LinkDown`, `NoLink`).
    pub link_status: Option<String>,
    /// IPv4 addresses.
    pub ipv4_addresses: Vec<String>,
}

/// A storage subsystem as read from the BMC; its nested lists are kept as JSON objects.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StorageInput {
    /// Subsystem name.
    pub name: Option<String>,
    /// Controllers (JSON objects).
    pub controllers: Vec<Value>,
    /// Drives (JSON objects).
    pub drives: Vec<Value>,
    /// Volumes (JSON objects).
    pub volumes: Vec<Value>,
}

/// One firmware inventory item as read from the BMC.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FirmwareInput {
    /// Component name.
    pub name: Option<String>,
    /// Installed version.
    pub version: Option<String>,
    /// Redfish id of the item (or its `SoftwareId`).
    pub component_id: Option<String>,
    /// Whether the BMC can update it.
    pub updateable: bool,
    /// `BIOS`, `BMC`, `NIC`, `Storage`, `CPLD`, `PSU` or `Other` (the caller classifies;
    /// stored as `Other` when None).
    pub firmware_type: Option<String>,
}

/// Everything registration learns about one ComputerSystem.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerInventory {
    /// ComputerSystem `UUID` (the identity of a server).
    pub uuid: Option<String>,
    /// Serial number (the identity when no UUID is known).
    pub serial_number: Option<String>,
    /// Manufacturer.
    pub manufacturer: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// SKU.
    pub sku: Option<String>,
    /// BIOS version.
    pub bios_version: Option<String>,
    /// Redfish `PowerState` verbatim.
    pub power_state: Option<String>,
    /// Host name reported by the BMC.
    pub hostname: Option<String>,
    /// Total memory in GiB.
    pub memory_gib: Option<f64>,
    /// Number of processors.
    pub processor_count: Option<i64>,
    /// Redfish `Status.Health`.
    pub health: Option<String>,
    /// Processors.
    pub processors: Vec<ProcessorInput>,
    /// Ethernet interfaces.
    pub ethernet_interfaces: Vec<EthernetInput>,
    /// Storage subsystems.
    pub storages: Vec<StorageInput>,
    /// Firmware inventory.
    pub firmwares: Vec<FirmwareInput>,
}

/// The firmware category of an inventory item: the one given, else `Other`.
fn firmware_type_of(f: &FirmwareInput) -> String {
    clean(&f.firmware_type).unwrap_or("Other").to_string()
}

fn clean(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The name rule: the host name unless empty or `localhost*`, else the serial number, else
/// `server-<id>`.
pub fn default_name(inv: &ServerInventory, id: i64) -> String {
    let host = clean(&inv.hostname).filter(|h| !h.to_ascii_lowercase().starts_with("localhost"));
    let name = host
        .or_else(|| identity_serial(&inv.serial_number))
        .map(str::to_string)
        .unwrap_or_else(|| format!("server-{id}"));
    name.chars().take(NAME_MAX).collect()
}

/// Serial numbers that firmware reports when nobody filled the field in (compared trimmed and
/// case-insensitively): never an identity.
pub const PLACEHOLDER_SERIALS: &[&str] = &[
    "to be filled by o.e.m.",
    "to be filled by o.e.m",
    "default string",
    "system serial number",
    "0123456789",
    "123456789",
    "not specified",
    "not applicable",
    "n/a",
    "none",
    "null",
    "unknown",
];

/// A UUID some boards report in place of their own.
const PLACEHOLDER_UUID: &str = "03000200040005000006000700080009";

/// The UUID as an identity: None when empty or a placeholder (all zeros, all F, the well-known
/// `03000200-0400-0500-0006-000700080009`).
pub fn identity_uuid(uuid: &Option<String>) -> Option<&str> {
    let u = clean(uuid)?;
    let hex: String = u
        .chars()
        .filter(|c| *c != '-' && *c != '{' && *c != '}')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let placeholder =
        hex.chars().all(|c| c == '0') || hex.chars().all(|c| c == 'f') || hex == PLACEHOLDER_UUID;
    (!placeholder).then_some(u)
}

/// The serial number as an identity: None when empty or a placeholder
/// ([`PLACEHOLDER_SERIALS`]).
pub fn identity_serial(serial: &Option<String>) -> Option<&str> {
    let s = clean(serial)?;
    let lower = s.to_ascii_lowercase();
    (!PLACEHOLDER_SERIALS.contains(&lower.as_str())).then_some(s)
}

/// Why an inventory was not written.
#[derive(Debug, thiserror::Error)]
pub enum UpsertError {
    /// The identity (UUID and serial) is that of a server whose node is another registered node.
    #[error(
        "server {server} ({name}) with this identity belongs to node {node}, which is registered; \
         delete one of them first"
    )]
    Taken {
        /// The server.
        server: i64,
        /// Its name.
        name: String,
        /// The node it belongs to.
        node: i64,
    },
    /// A concurrent write recorded the same identity first.
    #[error("another registration recorded a server with this identity at the same time")]
    Raced,
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] super::DbError),
}

/// The unique index on (uuid, serial_number).
const IDENTITY_INDEX: &str = "servers_identity";

/// A server found by identity: id, custom name, name, node.
struct Found {
    id: i64,
    name_is_custom: bool,
    name: String,
    node: Option<i64>,
}

/// Finds the server an inventory describes. Identity is the (UUID, serial number) pair where
/// both are known (the same UUID with another serial is another machine; a server recorded
/// with only one of them matches on that one); with one known, that one; with neither known,
/// the identity-less server of the same node. Placeholder values count as unknown.
async fn find_existing(
    mut tx: impl Exec,
    node_id: i64,
    inv: &ServerInventory,
) -> DbResult<Option<Found>> {
    const COLS: &str = "SELECT id, name_is_custom, name, node_id FROM servers";
    let queries: Vec<Sql> = match (identity_uuid(&inv.uuid), identity_serial(&inv.serial_number))
    {
        (Some(uuid), Some(serial)) => vec![
            Sql::new(format!("{COLS} WHERE uuid = $1 AND serial_number = $2"))
                .arg(uuid)
                .arg(serial),
            Sql::new(format!(
                "{COLS} WHERE uuid = $1 AND serial_number IS NULL ORDER BY id LIMIT 1"
            ))
            .arg(uuid),
            Sql::new(format!(
                "{COLS} WHERE serial_number = $1 AND uuid IS NULL ORDER BY id LIMIT 1"
            ))
            .arg(serial),
        ],
        // One value known: it identifies, a server recorded without the other one first.
        (Some(uuid), None) => vec![Sql::new(format!(
            "{COLS} WHERE uuid = $1 \
             ORDER BY CASE WHEN serial_number IS NULL THEN 0 ELSE 1 END, id LIMIT 1"
        ))
        .arg(uuid)],
        (None, Some(serial)) => vec![Sql::new(format!(
            "{COLS} WHERE serial_number = $1 \
             ORDER BY CASE WHEN uuid IS NULL THEN 0 ELSE 1 END, id LIMIT 1"
        ))
        .arg(serial)],
        (None, None) => vec![Sql::new(format!(
            "{COLS} WHERE node_id = $1 AND uuid IS NULL AND serial_number IS NULL ORDER BY id LIMIT 1"
        ))
        .arg(node_id)],
    };
    for sql in queries {
        if let Some(r) = tx.fetch_optional(&sql).await? {
            return Ok(Some(Found {
                id: r.int("id")?,
                name_is_custom: r.bool("name_is_custom")?,
                name: r.text("name")?,
                node: r.opt_int("node_id")?,
            }));
        }
    }
    Ok(None)
}

/// True when node `id` exists and is registered (or being registered again after it was).
async fn node_is_registered(mut tx: impl Exec, id: i64) -> DbResult<bool> {
    let row = tx
        .fetch_optional(
            &Sql::new(
                "SELECT id FROM nodes WHERE id = $1 AND (status = 'registered' \
                 OR (status = 'registering' AND previous_status = 'registered'))",
            )
            .arg(id),
        )
        .await?;
    Ok(row.is_some())
}

/// Creates or updates the server that `inv` describes (see [`find_existing`] for identity), replaces
/// its hardware rows and sets `last_inventory_at`. Keeps the server's pool and a name a user
/// has set. A server of another node moves to this one only when that node is no longer
/// registered (unreachable, failed, gone: a re-addressed BMC); while it is registered the
/// write is refused ([`UpsertError::Taken`]). Returns the server id.
pub async fn upsert_from_inventory(
    mut tx: impl Exec,
    node_id: i64,
    bmc_url: &str,
    inv: &ServerInventory,
) -> Result<i64, UpsertError> {
    let t = now();
    let existing = find_existing(&mut tx, node_id, inv).await?;
    if let Some(found) = &existing {
        if let Some(other) = found.node.filter(|n| *n != node_id) {
            if node_is_registered(&mut tx, other).await? {
                return Err(UpsertError::Taken {
                    server: found.id,
                    name: found.name.clone(),
                    node: other,
                });
            }
            // The server moves: its old node no longer stands for it.
            tx.execute(
                &Sql::new("UPDATE nodes SET server_id = NULL WHERE server_id = $1 AND id <> $2")
                    .arg(found.id)
                    .arg(node_id),
            )
            .await?;
        }
    }
    let fields = [
        ("model", Val::from(clean(&inv.model))),
        (
            "serial_number",
            Val::from(identity_serial(&inv.serial_number)),
        ),
        ("manufacturer", Val::from(clean(&inv.manufacturer))),
        ("sku", Val::from(clean(&inv.sku))),
        ("bios_version", Val::from(clean(&inv.bios_version))),
        ("power_state", Val::from(clean(&inv.power_state))),
        ("node_id", Val::Int(node_id)),
        ("bmc_url", Val::from(bmc_url)),
        ("uuid", Val::from(identity_uuid(&inv.uuid))),
        ("hostname", Val::from(clean(&inv.hostname))),
        ("memory_gib", Val::from(inv.memory_gib)),
        ("processor_count", Val::from(inv.processor_count)),
        ("health", Val::from(clean(&inv.health))),
        ("last_inventory_at", Val::Time(t)),
        ("updated_at", Val::Time(t)),
    ];
    let raced = |e: super::DbError| {
        if e.violates(IDENTITY_INDEX) || e.violates("servers.uuid, servers.serial_number") {
            UpsertError::Raced
        } else {
            UpsertError::Db(e)
        }
    };
    let (id, keep_name) = match existing {
        Some(found) => {
            let cols = fields.iter().map(|(col, v)| (*col, Some(v.clone())));
            update_columns(&mut tx, "servers", found.id, cols)
                .await
                .map_err(raced)?;
            (found.id, found.name_is_custom)
        }
        None => {
            let mut sql = Sql::new("INSERT INTO servers (name, created_at");
            for (col, _) in &fields {
                sql.push(&format!(", {col}"));
            }
            sql.push(") VALUES ('', ");
            sql.bind(Val::Time(t));
            for (_, v) in &fields {
                sql.push(", ");
                sql.bind(v.clone());
            }
            sql.push(") RETURNING id");
            (tx.fetch_int(&sql).await.map_err(raced)?, false)
        }
    };
    if !keep_name {
        tx.execute(
            &Sql::new("UPDATE servers SET name = $1 WHERE id = $2")
                .arg(default_name(inv, id))
                .arg(id),
        )
        .await?;
    }
    replace_hardware(&mut tx, id, inv).await?;
    tracing::debug!(server_id = id, node_id, "inventory stored");
    Ok(id)
}

fn json_text<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// Replaces the hardware rows of a server.
async fn replace_hardware(mut tx: impl Exec, id: i64, inv: &ServerInventory) -> DbResult<()> {
    for table in [
        "server_processors",
        "server_ethernet_interfaces",
        "server_storages",
        "server_firmwares",
    ] {
        tx.execute(&Sql::new(format!("DELETE FROM {table} WHERE server_id = $1")).arg(id))
            .await?;
    }
    let procs = inv
        .processors
        .iter()
        .map(|p| {
            vec![
                Val::Int(id),
                clean(&p.socket).into(),
                clean(&p.manufacturer).into(),
                clean(&p.model).into(),
                clean(&p.architecture).into(),
                p.total_cores.into(),
                p.total_threads.into(),
                p.max_speed_mhz.into(),
            ]
        })
        .collect();
    insert_rows(
        &mut tx,
        "server_processors",
        &[
            "server_id",
            "socket",
            "manufacturer",
            "model",
            "architecture",
            "total_cores",
            "total_threads",
            "max_speed_mhz",
        ],
        procs,
    )
    .await?;
    let nics = inv
        .ethernet_interfaces
        .iter()
        .map(|e| {
            vec![
                Val::Int(id),
                clean(&e.name).into(),
                clean(&e.mac_address).into(),
                e.speed_mbps.into(),
                clean(&e.link_status).into(),
                Val::Text(json_text(&e.ipv4_addresses)),
            ]
        })
        .collect();
    insert_rows(
        &mut tx,
        "server_ethernet_interfaces",
        &[
            "server_id",
            "name",
            "mac_address",
            "speed_mbps",
            "link_status",
            "ipv4_addresses",
        ],
        nics,
    )
    .await?;
    let storages = inv
        .storages
        .iter()
        .map(|s| {
            vec![
                Val::Int(id),
                clean(&s.name).into(),
                Val::Text(json_text(&s.controllers)),
                Val::Text(json_text(&s.drives)),
                Val::Text(json_text(&s.volumes)),
            ]
        })
        .collect();
    insert_rows(
        &mut tx,
        "server_storages",
        &["server_id", "name", "controllers", "drives", "volumes"],
        storages,
    )
    .await?;
    let firmwares = inv
        .firmwares
        .iter()
        .map(|f| {
            let kind = firmware_type_of(f);
            vec![
                Val::Int(id),
                clean(&f.name).into(),
                clean(&f.version).into(),
                clean(&f.component_id).into(),
                Val::Bool(f.updateable),
                Val::Text(kind),
            ]
        })
        .collect();
    insert_rows(
        &mut tx,
        "server_firmwares",
        &[
            "server_id",
            "name",
            "version",
            "component_id",
            "updateable",
            "firmware_type",
        ],
        firmwares,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        let mut inv = ServerInventory {
            hostname: Some("web-01".into()),
            serial_number: Some("SN1".into()),
            ..Default::default()
        };
        assert_eq!(default_name(&inv, 7), "web-01");
        inv.hostname = Some("localhost.localdomain".into());
        assert_eq!(default_name(&inv, 7), "SN1");
        inv.serial_number = Some("  ".into());
        assert_eq!(default_name(&inv, 7), "server-7");
    }

    #[test]
    fn placeholders_are_no_identity() {
        let some = |s: &str| Some(s.to_string());
        for u in [
            "00000000-0000-0000-0000-000000000000",
            "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
            "03000200-0400-0500-0006-000700080009",
            " ",
        ] {
            assert_eq!(identity_uuid(&some(u)), None, "{u}");
        }
        assert_eq!(
            identity_uuid(&some("4c4c4544-0042-3510-8052-b4c04f4a4d32")),
            Some("4c4c4544-0042-3510-8052-b4c04f4a4d32")
        );
        for s in [
            "To be filled by O.E.M.",
            "Default string",
            "System Serial Number",
            "0123456789",
            "",
        ] {
            assert_eq!(identity_serial(&some(s)), None, "{s}");
        }
        assert_eq!(identity_serial(&some(" CN7475 ")), Some("CN7475"));
    }

    #[test]
    fn firmware_types_are_stored_as_given() {
        let item = |given: Option<&str>| FirmwareInput {
            name: Some("BIOS".into()),
            version: None,
            component_id: Some("x".into()),
            updateable: true,
            firmware_type: given.map(Into::into),
        };
        assert_eq!(firmware_type_of(&item(Some("CPLD"))), "CPLD");
        assert_eq!(firmware_type_of(&item(None)), "Other");
    }
}
