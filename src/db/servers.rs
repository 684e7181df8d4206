//! `servers` and their hardware inventory (`server_processors`, `server_ethernet_interfaces`,
//! `server_storages`, `server_firmwares`).
//!
//! Servers are created by registration only: [`upsert_from_inventory`] is the one way in. That
//! write and its input types live in [`super::inventory`] and are re-exported here; this file
//! holds the `servers` rows, their user-writable fields and the reads of the hardware rows.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{in_list, now, update_columns, DbResult, Exec, Row, Sql, Val};

pub use super::inventory::{
    default_name, identity_serial, identity_uuid, upsert_from_inventory, EthernetInput,
    FirmwareInput, ProcessorInput, ServerInventory, StorageInput, UpsertError, PLACEHOLDER_SERIALS,
};

/// Longest server name stored (the API validates the same bound).
pub const NAME_MAX: usize = 255;

/// A server row.
#[derive(Debug, Clone)]
pub struct Server {
    /// Id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Model.
    pub model: Option<String>,
    /// Serial number.
    pub serial_number: Option<String>,
    /// Manufacturer.
    pub manufacturer: Option<String>,
    /// SKU.
    pub sku: Option<String>,
    /// BIOS version.
    pub bios_version: Option<String>,
    /// Redfish power state.
    pub power_state: Option<String>,
    /// Pool id.
    pub resource_pool: Option<i64>,
    /// Pool name.
    pub resource_pool_name: Option<String>,
    /// Node (BMC endpoint) id.
    pub node: Option<i64>,
    /// BMC URL.
    pub bmc_url: String,
    /// ComputerSystem UUID.
    pub uuid: Option<String>,
    /// Host name.
    pub hostname: Option<String>,
    /// Memory in GiB.
    pub memory_gib: Option<f64>,
    /// Processor count.
    pub processor_count: Option<i64>,
    /// Health.
    pub health: Option<String>,
    /// Last inventory read.
    pub last_inventory_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// The `FROM` clause matching [`SERVER_COLUMNS`].
pub const SERVER_FROM: &str = "servers s LEFT JOIN pools rp ON rp.id = s.resource_pool_id";

/// Columns selected for [`Server::from_row`] (with [`SERVER_FROM`]).
pub const SERVER_COLUMNS: &str = "s.id, s.name, s.model, s.serial_number, s.manufacturer, s.sku, \
     s.bios_version, s.power_state, s.resource_pool_id, rp.name AS resource_pool_name, s.node_id, \
     s.bmc_url, s.uuid, s.hostname, s.memory_gib, s.processor_count, s.health, \
     s.last_inventory_at, s.created_at, s.updated_at";

impl Server {
    /// Decodes a row selected with [`SERVER_COLUMNS`].
    pub fn from_row(r: &Row) -> DbResult<Server> {
        Ok(Server {
            id: r.int("id")?,
            name: r.text("name")?,
            model: r.opt_text("model")?,
            serial_number: r.opt_text("serial_number")?,
            manufacturer: r.opt_text("manufacturer")?,
            sku: r.opt_text("sku")?,
            bios_version: r.opt_text("bios_version")?,
            power_state: r.opt_text("power_state")?,
            resource_pool: r.opt_int("resource_pool_id")?,
            resource_pool_name: r.opt_text("resource_pool_name")?,
            node: r.opt_int("node_id")?,
            bmc_url: r.text("bmc_url")?,
            uuid: r.opt_text("uuid")?,
            hostname: r.opt_text("hostname")?,
            memory_gib: r.opt_float("memory_gib")?,
            processor_count: r.opt_int("processor_count")?,
            health: r.opt_text("health")?,
            last_inventory_at: r.opt_time("last_inventory_at")?,
            created_at: r.time("created_at")?,
            updated_at: r.time("updated_at")?,
        })
    }
}

/// One server by id, unrestricted (callers apply visibility).
pub async fn get(mut db: impl Exec, id: i64) -> DbResult<Option<Server>> {
    let sql = Sql::new(format!(
        "SELECT {SERVER_COLUMNS} FROM {SERVER_FROM} WHERE s.id = $1"
    ))
    .arg(id);
    db.fetch_optional(&sql)
        .await?
        .as_ref()
        .map(Server::from_row)
        .transpose()
}

/// The first of `ids` (in their order) locked by an active deployment: (server, deployment).
pub async fn first_locked(db: impl Exec, ids: &[i64]) -> DbResult<Option<(i64, i64)>> {
    super::deployments::first_locked(db, ids).await
}

/// [`first_locked`] for the servers of a pool, without listing them first.
pub async fn first_locked_in_pool(db: impl Exec, pool: i64) -> DbResult<Option<(i64, i64)>> {
    super::deployments::first_locked_in_pool(db, pool).await
}

/// The 400 text for a server locked by a deployment: `Server 7 is locked by deployment 12.`
pub fn locked_message(server: i64, deployment: i64) -> String {
    format!("Server {server} is locked by deployment {deployment}.")
}

/// Which of the servers `ids` a member of `groups` sees (None: a superuser, every existing one).
pub async fn visible_ids(
    mut tx: impl Exec,
    ids: &[i64],
    groups: Option<&[i64]>,
) -> DbResult<std::collections::HashSet<i64>> {
    let mut sql = Sql::new("SELECT s.id FROM servers s WHERE s.id IN ");
    in_list(&mut sql, ids);
    super::pools::server_scope(groups, &mut sql);
    tx.fetch_all(&sql)
        .await?
        .iter()
        .map(|r| r.int("id"))
        .collect()
}

/// Sets the pool of servers (None: unassigned).
pub async fn set_pool(mut tx: impl Exec, ids: &[i64], pool: Option<i64>) -> DbResult<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let mut sql =
        Sql::new("UPDATE servers SET resource_pool_id = $1, updated_at = $2 WHERE id IN ")
            .arg(pool)
            .arg(now());
    in_list(&mut sql, ids);
    tx.execute(&sql).await
}

/// Changes the user-writable fields of a server; a new name is kept by later inventory reads.
pub async fn update(
    tx: impl Exec,
    id: i64,
    name: Option<&str>,
    pool: Option<Option<i64>>,
) -> DbResult<()> {
    let cols = [
        ("updated_at", Some(Val::from(now()))),
        ("name_is_custom", name.map(|_| Val::Bool(true))),
        ("name", name.map(Val::from)),
        ("resource_pool_id", pool.map(Val::from)),
    ];
    update_columns(tx, "servers", id, cols.into_iter()).await?;
    Ok(())
}

/// Deletes a server and its hardware rows.
pub async fn delete(mut tx: impl Exec, id: i64) -> DbResult<u64> {
    tx.execute(&Sql::new("DELETE FROM servers WHERE id = $1").arg(id))
        .await
}

/// A processor row.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Processor {
    /// Id.
    pub id: i64,
    /// Socket label.
    pub socket: Option<String>,
    /// Vendor.
    pub manufacturer: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Instruction set.
    pub architecture: Option<String>,
    /// Cores.
    pub total_cores: Option<i64>,
    /// Threads.
    pub total_threads: Option<i64>,
    /// Highest speed in MHz.
    pub max_speed_mhz: Option<i64>,
}

/// An Ethernet interface row.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EthernetInterface {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: Option<String>,
    /// MAC address.
    pub mac_address: Option<String>,
    /// Link speed in Mbit/s.
    pub speed_mbps: Option<i64>,
    /// Link status.
    pub link_status: Option<String>,
    /// IPv4 addresses.
    pub ipv4_addresses: Vec<String>,
}

/// A storage subsystem row.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Storage {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: Option<String>,
    /// Controllers.
    pub controllers: Vec<Value>,
    /// Drives.
    pub drives: Vec<Value>,
    /// Volumes.
    pub volumes: Vec<Value>,
}

/// A firmware inventory row.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ServerFirmware {
    /// Id.
    pub id: i64,
    /// Component name.
    pub name: Option<String>,
    /// Installed version.
    pub version: Option<String>,
    /// Redfish component id.
    pub component_id: Option<String>,
    /// Whether the BMC can update it.
    pub updateable: bool,
    /// `BIOS`, `BMC`, `NIC`, `Storage`, `CPLD`, `PSU` or `Other`.
    pub firmware_type: String,
}

fn json_list<T: for<'de> Deserialize<'de>>(r: &Row, col: &str) -> DbResult<Vec<T>> {
    Ok(r.opt_text(col)?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default())
}

/// The rows of a server's inventory table `table`, in id order, in one statement with the check
/// that the server exists and is visible to `scope` (the caller's groups; None: every server, for
/// a superuser or the server's own lifecycle work). None: no such server, or one the caller may
/// not see.
async fn rows_of(
    mut db: impl Exec,
    cols: &str,
    table: &str,
    server: i64,
    scope: Option<&[i64]>,
) -> DbResult<Option<Vec<Row>>> {
    let mut sql = Sql::new(
        "SELECT h.__found, c.* FROM (SELECT COUNT(*) AS __found FROM servers s WHERE s.id = $1",
    )
    .arg(server);
    super::pools::server_scope(scope, &mut sql);
    sql.push(&format!(
        ") h LEFT JOIN (SELECT {cols} FROM {table} WHERE server_id = $1) c ON h.__found > 0 \
         ORDER BY c.id"
    ));
    let rows = db.fetch_all(&sql).await?;
    match rows.first() {
        Some(head) if head.int("__found")? > 0 => {}
        _ => return Ok(None),
    }
    // The id is never NULL in a real row: NULL marks the head joined to no row.
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        if r.opt_int("id")?.is_some() {
            out.push(r);
        }
    }
    Ok(Some(out))
}

/// Decodes each row of [`rows_of`]'s answer.
fn decoded<T>(
    rows: Option<Vec<Row>>,
    decode: impl Fn(&Row) -> DbResult<T>,
) -> DbResult<Option<Vec<T>>> {
    rows.map(|rows| rows.iter().map(decode).collect())
        .transpose()
}

/// Processors of a server.
pub async fn processors(
    db: impl Exec,
    server: i64,
    scope: Option<&[i64]>,
) -> DbResult<Option<Vec<Processor>>> {
    let rows = rows_of(
        db,
        "id, socket, manufacturer, model, architecture, total_cores, total_threads, max_speed_mhz",
        "server_processors",
        server,
        scope,
    )
    .await?;
    decoded(rows, |r| {
        Ok(Processor {
            id: r.int("id")?,
            socket: r.opt_text("socket")?,
            manufacturer: r.opt_text("manufacturer")?,
            model: r.opt_text("model")?,
            architecture: r.opt_text("architecture")?,
            total_cores: r.opt_int("total_cores")?,
            total_threads: r.opt_int("total_threads")?,
            max_speed_mhz: r.opt_int("max_speed_mhz")?,
        })
    })
}

/// Ethernet interfaces of a server.
pub async fn ethernet_interfaces(
    db: impl Exec,
    server: i64,
    scope: Option<&[i64]>,
) -> DbResult<Option<Vec<EthernetInterface>>> {
    let rows = rows_of(
        db,
        "id, name, mac_address, speed_mbps, link_status, ipv4_addresses",
        "server_ethernet_interfaces",
        server,
        scope,
    )
    .await?;
    decoded(rows, |r| {
        Ok(EthernetInterface {
            id: r.int("id")?,
            name: r.opt_text("name")?,
            mac_address: r.opt_text("mac_address")?,
            speed_mbps: r.opt_int("speed_mbps")?,
            link_status: r.opt_text("link_status")?,
            ipv4_addresses: json_list(r, "ipv4_addresses")?,
        })
    })
}

/// Storage subsystems of a server.
pub async fn storages(
    db: impl Exec,
    server: i64,
    scope: Option<&[i64]>,
) -> DbResult<Option<Vec<Storage>>> {
    let rows = rows_of(
        db,
        "id, name, controllers, drives, volumes",
        "server_storages",
        server,
        scope,
    )
    .await?;
    decoded(rows, |r| {
        Ok(Storage {
            id: r.int("id")?,
            name: r.opt_text("name")?,
            controllers: json_list(r, "controllers")?,
            drives: json_list(r, "drives")?,
            volumes: json_list(r, "volumes")?,
        })
    })
}

/// Firmware inventory of a server.
pub async fn firmwares(
    db: impl Exec,
    server: i64,
    scope: Option<&[i64]>,
) -> DbResult<Option<Vec<ServerFirmware>>> {
    let rows = rows_of(
        db,
        "id, name, version, component_id, updateable, firmware_type",
        "server_firmwares",
        server,
        scope,
    )
    .await?;
    decoded(rows, |r| {
        Ok(ServerFirmware {
            id: r.int("id")?,
            name: r.opt_text("name")?,
            version: r.opt_text("version")?,
            component_id: r.opt_text("component_id")?,
            updateable: r.bool("updateable")?,
            firmware_type: r.text("firmware_type")?,
        })
    })
}
