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
        .or_else(|| clean(&inv.serial_number))
        .map(str::to_string)
        .unwrap_or_else(|| format!("server-{id}"));
    name.chars().take(NAME_MAX).collect()
}

/// Finds the server an inventory describes: by UUID, else by serial number, else (neither known)
/// the identity-less server of the same node.
async fn find_existing(
    mut tx: impl Exec,
    node_id: i64,
    inv: &ServerInventory,
) -> DbResult<Option<(i64, bool)>> {
    let sql = match (clean(&inv.uuid), clean(&inv.serial_number)) {
        (Some(uuid), serial) => {
            let found = tx
                .fetch_optional(
                    &Sql::new("SELECT id, name_is_custom FROM servers WHERE uuid = $1").arg(uuid),
                )
                .await?;
            if found.is_some() {
                return found
                    .map(|r| Ok((r.int("id")?, r.bool("name_is_custom")?)))
                    .transpose();
            }
            let Some(serial) = serial else {
                return Ok(None);
            };
            Sql::new(
                "SELECT id, name_is_custom FROM servers WHERE serial_number = $1 AND uuid IS NULL \
                 ORDER BY id LIMIT 1",
            )
            .arg(serial)
        }
        (None, Some(serial)) => Sql::new(
            "SELECT id, name_is_custom FROM servers WHERE serial_number = $1 ORDER BY id LIMIT 1",
        )
        .arg(serial),
        (None, None) => Sql::new(
            "SELECT id, name_is_custom FROM servers WHERE node_id = $1 AND uuid IS NULL \
             AND serial_number IS NULL ORDER BY id LIMIT 1",
        )
        .arg(node_id),
    };
    tx.fetch_optional(&sql)
        .await?
        .map(|r| Ok((r.int("id")?, r.bool("name_is_custom")?)))
        .transpose()
}

/// Creates or updates the server that `inv` describes (found by UUID, else serial number, so a
/// BMC whose address changed updates its server), replaces its hardware rows and sets
/// `last_inventory_at`. Keeps the server's pool and a name a user has set. Returns the server id.
pub async fn upsert_from_inventory(
    mut tx: impl Exec,
    node_id: i64,
    bmc_url: &str,
    inv: &ServerInventory,
) -> DbResult<i64> {
    let t = now();
    let existing = find_existing(&mut tx, node_id, inv).await?;
    let fields = [
        ("model", Val::from(clean(&inv.model))),
        ("serial_number", Val::from(clean(&inv.serial_number))),
        ("manufacturer", Val::from(clean(&inv.manufacturer))),
        ("sku", Val::from(clean(&inv.sku))),
        ("bios_version", Val::from(clean(&inv.bios_version))),
        ("power_state", Val::from(clean(&inv.power_state))),
        ("node_id", Val::Int(node_id)),
        ("bmc_url", Val::from(bmc_url)),
        ("uuid", Val::from(clean(&inv.uuid))),
        ("hostname", Val::from(clean(&inv.hostname))),
        ("memory_gib", Val::from(inv.memory_gib)),
        ("processor_count", Val::from(inv.processor_count)),
        ("health", Val::from(clean(&inv.health))),
        ("last_inventory_at", Val::Time(t)),
        ("updated_at", Val::Time(t)),
    ];
    let (id, keep_name) = match existing {
        Some((id, custom)) => {
            let cols = fields.iter().map(|(col, v)| (*col, Some(v.clone())));
            update_columns(&mut tx, "servers", id, cols).await?;
            (id, custom)
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
            (tx.fetch_int(&sql).await?, false)
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
