//! Hardware inventory read over an authenticated session.
//!
//! Vendors differ in which properties they fill and how; every field here is optional and an
//! odd or missing one becomes `None`, never a failed registration. Only errors that mean the BMC
//! cannot be worked with (unreachable, TLS, deadline) fail the whole read. Requests run
//! concurrently under a small bound so that many registrations at once stay gentle on BMCs.

use std::sync::Arc;

use futures::future::join_all;
use serde_json::Value;
use tokio::sync::Semaphore;

use super::error::RedfishError;
use super::session::Session;

/// Concurrent requests per BMC while reading inventory.
pub const INVENTORY_CONCURRENCY: usize = 8;
/// Pages followed in one collection (`Members@odata.nextLink`).
const MAX_PAGES: usize = 50;
/// Members taken from one collection.
const MAX_MEMBERS: usize = 1024;

/// Everything read from one BMC.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inventory {
    /// One entry per ComputerSystem in `Systems`.
    pub systems: Vec<SystemInventory>,
    /// `UpdateService/FirmwareInventory` (BMC-wide; empty when there is no UpdateService).
    pub firmwares: Vec<FirmwareInfo>,
}

/// One ComputerSystem and its components.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SystemInventory {
    /// `@odata.id` of the system, e.g. `/redfish/v1/Systems/1`.
    pub odata_id: String,
    /// `Id`.
    pub id: Option<String>,
    /// `Manufacturer`.
    pub manufacturer: Option<String>,
    /// `Model`.
    pub model: Option<String>,
    /// `SerialNumber`.
    pub serial_number: Option<String>,
    /// `SKU`.
    pub sku: Option<String>,
    /// `BiosVersion`.
    pub bios_version: Option<String>,
    /// `PowerState` verbatim (`On`, `Off`, ...).
    pub power_state: Option<String>,
    /// `UUID`.
    pub uuid: Option<String>,
    /// `HostName`.
    pub host_name: Option<String>,
    /// `MemorySummary.TotalSystemMemoryGiB`.
    pub memory_gib: Option<f64>,
    /// `ProcessorSummary.Count`.
    pub processor_count: Option<u32>,
    /// `Status.Health`.
    pub health: Option<String>,
    /// `Processors` members.
    pub processors: Vec<ProcessorInfo>,
    /// `EthernetInterfaces` members.
    pub ethernet_interfaces: Vec<EthernetInterfaceInfo>,
    /// `Storage` members, or `SimpleStorage` where that is all there is.
    pub storages: Vec<StorageInfo>,
}

/// One processor (CPU, GPU, FPGA...).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessorInfo {
    /// `Id`.
    pub id: Option<String>,
    /// `Socket`.
    pub socket: Option<String>,
    /// `ProcessorType` (`CPU`, `GPU`, `FPGA`...).
    pub processor_type: Option<String>,
    /// `Manufacturer`.
    pub manufacturer: Option<String>,
    /// `Model`.
    pub model: Option<String>,
    /// `ProcessorArchitecture`, else `InstructionSet`.
    pub architecture: Option<String>,
    /// `TotalCores`.
    pub total_cores: Option<u32>,
    /// `TotalThreads`.
    pub total_threads: Option<u32>,
    /// `MaxSpeedMHz`.
    pub max_speed_mhz: Option<u32>,
}

/// One host Ethernet interface.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EthernetInterfaceInfo {
    /// `Id` (often the more telling name, e.g. `NIC.Integrated.1-1-1`).
    pub id: Option<String>,
    /// `Name`.
    pub name: Option<String>,
    /// `MACAddress`, else `PermanentMACAddress`.
    pub mac_address: Option<String>,
    /// `SpeedMbps`.
    pub speed_mbps: Option<u32>,
    /// `LinkStatus`.
    pub link_status: Option<String>,
    /// `IPv4Addresses[].Address`.
    pub ipv4_addresses: Vec<String>,
}

/// One storage subsystem (or SimpleStorage controller).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StorageInfo {
    /// `Id`.
    pub id: Option<String>,
    /// `Name`.
    pub name: Option<String>,
    /// True when read from the legacy `SimpleStorage` resource.
    pub simple: bool,
    /// Controllers.
    pub controllers: Vec<StorageControllerInfo>,
    /// Drives.
    pub drives: Vec<DriveInfo>,
    /// Volumes.
    pub volumes: Vec<VolumeInfo>,
}

/// One storage controller.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StorageControllerInfo {
    /// `Name`.
    pub name: Option<String>,
    /// `Manufacturer`.
    pub manufacturer: Option<String>,
    /// `Model`.
    pub model: Option<String>,
    /// `SerialNumber`.
    pub serial_number: Option<String>,
    /// `FirmwareVersion`.
    pub firmware_version: Option<String>,
    /// `SpeedGbps`.
    pub speed_gbps: Option<f64>,
    /// `SupportedDeviceProtocols`.
    pub protocols: Vec<String>,
    /// `Status.Health`.
    pub health: Option<String>,
}

/// One drive.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DriveInfo {
    /// `Name`.
    pub name: Option<String>,
    /// `Manufacturer`.
    pub manufacturer: Option<String>,
    /// `Model`.
    pub model: Option<String>,
    /// `SerialNumber`.
    pub serial_number: Option<String>,
    /// `CapacityBytes`.
    pub capacity_bytes: Option<u64>,
    /// `MediaType` (`HDD`, `SSD`, `SMR`).
    pub media_type: Option<String>,
    /// `Protocol` (`SAS`, `SATA`, `NVMe`...).
    pub protocol: Option<String>,
    /// `Status.Health`.
    pub health: Option<String>,
}

/// One volume.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VolumeInfo {
    /// `Name`.
    pub name: Option<String>,
    /// `CapacityBytes`.
    pub capacity_bytes: Option<u64>,
    /// `RAIDType`, else `VolumeType`.
    pub raid_type: Option<String>,
    /// `Status.Health`.
    pub health: Option<String>,
}

/// One firmware component from `FirmwareInventory`.
#[derive(Clone, Debug, PartialEq)]
pub struct FirmwareInfo {
    /// `Name`.
    pub name: Option<String>,
    /// `Version`.
    pub version: Option<String>,
    /// `Id`.
    pub component_id: Option<String>,
    /// `Updateable`.
    pub updateable: Option<bool>,
    /// Inferred from Id, Name and Description.
    pub firmware_type: FirmwareType,
}

/// Kind of firmware component, as the API reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FirmwareType {
    /// System firmware (BIOS/UEFI/System ROM).
    Bios,
    /// Management controller (BMC, iDRAC, iLO, XCC...).
    Bmc,
    /// Network adapter.
    Nic,
    /// RAID/HBA controller, drive, backplane.
    Storage,
    /// CPLD/FPGA/programmable logic.
    Cpld,
    /// Power supply.
    Psu,
    /// Anything else.
    Other,
}

impl FirmwareType {
    /// The API spelling: `BIOS`, `BMC`, `NIC`, `Storage`, `CPLD`, `PSU`, `Other`.
    pub fn as_str(self) -> &'static str {
        match self {
            FirmwareType::Bios => "BIOS",
            FirmwareType::Bmc => "BMC",
            FirmwareType::Nic => "NIC",
            FirmwareType::Storage => "Storage",
            FirmwareType::Cpld => "CPLD",
            FirmwareType::Psu => "PSU",
            FirmwareType::Other => "Other",
        }
    }
}

impl std::fmt::Display for FirmwareType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Infers the kind of a firmware component from its `Id`, `Name` and `Description`.
///
/// Matching is on whole words (so `ilo` does not match `silo`), with trailing digits ignored
/// (`PSU1`, `NIC2`), plus a few multi-word phrases. The first matching kind wins, in the order
/// BMC, BIOS, CPLD, PSU, Storage, NIC.
pub fn infer_firmware_type(id: &str, name: &str, description: &str) -> FirmwareType {
    const RULES: &[(FirmwareType, &[&str], &[&str])] = &[
        (
            FirmwareType::Bmc,
            &[
                "bmc", "idrac", "ilo", "xcc", "imm", "ibmc", "irmc", "openbmc", "ipmi",
            ],
            &[
                "baseboard management controller",
                "remote access controller",
                "lifecycle controller",
                "integrated lights out",
                "xclarity controller",
            ],
        ),
        (
            FirmwareType::Bios,
            &["bios", "uefi", "systemrom"],
            &["system rom"],
        ),
        (
            FirmwareType::Cpld,
            &["cpld", "fpga"],
            &["programmable logic"],
        ),
        (
            FirmwareType::Psu,
            &["psu", "powersupply", "powersupplies", "psus"],
            &["power supply", "power supplies"],
        ),
        (
            FirmwareType::Storage,
            &[
                "raid",
                "perc",
                "storage",
                "drive",
                "drives",
                "disk",
                "disks",
                "ssd",
                "hdd",
                "nvme",
                "sas",
                "sata",
                "hba",
                "megaraid",
                "boss",
                "backplane",
                "expander",
                "smartarray",
                "lsi",
            ],
            &[
                "smart array",
                "fibre channel",
                "fiber channel",
                "simple storage",
            ],
        ),
        (
            FirmwareType::Nic,
            &[
                "nic",
                "ethernet",
                "network",
                "lom",
                "netxtreme",
                "connectx",
                "mellanox",
                "infiniband",
                "ocp",
            ],
            &["network adapter", "converged network"],
        ),
    ];
    let text = format!("{id} {name} {description}").to_ascii_lowercase();
    let words: Vec<&str> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let phrase_text = format!(" {} ", words.join(" "));
    for (kind, keywords, phrases) in RULES {
        let word_hit = words.iter().any(|word| {
            let stem = word.trim_end_matches(|c: char| c.is_ascii_digit());
            keywords.contains(word) || (!stem.is_empty() && keywords.contains(&stem))
        });
        let phrase_hit = phrases
            .iter()
            .any(|phrase| phrase_text.contains(&format!(" {phrase} ")));
        if word_hit || phrase_hit {
            return *kind;
        }
    }
    FirmwareType::Other
}

/// Fetches with a shared bound on concurrent requests.
struct Fetcher<'a> {
    session: &'a Session,
    permits: Arc<Semaphore>,
}

impl Fetcher<'_> {
    async fn get(&self, path: &str) -> Result<Value, RedfishError> {
        // The semaphore is never closed, so acquire only fails if it were; treat as a transport
        // problem rather than panicking.
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| RedfishError::Transport("inventory cancelled".into()))?;
        self.session.get_json(path).await
    }

    /// A resource whose absence or oddity is tolerated: `None` unless the BMC is unusable.
    async fn get_optional(&self, path: &str) -> Result<Option<Value>, RedfishError> {
        match self.get(path).await {
            Ok(value) => Ok(Some(value)),
            Err(error) if error.is_fatal() => Err(error),
            Err(error) => {
                tracing::debug!(bmc = self.session.client().base_url(), path, %error, "redfish resource skipped");
                Ok(None)
            }
        }
    }

    /// `@odata.id`s of a collection's members, following `Members@odata.nextLink`.
    async fn members(&self, path: &str) -> Result<Vec<String>, RedfishError> {
        match self.get_optional(path).await? {
            Some(first) => self.members_from(first).await,
            None => Ok(Vec::new()),
        }
    }

    /// [`Fetcher::members`] from a first page already read.
    async fn members_from(&self, first: Value) -> Result<Vec<String>, RedfishError> {
        let mut ids = Vec::new();
        let mut page = first;
        let mut pages = 1;
        loop {
            if let Some(members) = page.get("Members").and_then(Value::as_array) {
                ids.extend(members.iter().filter_map(link).map(str::to_string));
            }
            let Some(next) = page.get("Members@odata.nextLink").and_then(Value::as_str) else {
                break;
            };
            if pages >= MAX_PAGES || ids.len() >= MAX_MEMBERS {
                break;
            }
            let Some(next_page) = self.get_optional(next).await? else {
                break;
            };
            page = next_page;
            pages += 1;
        }
        ids.truncate(MAX_MEMBERS);
        Ok(ids)
    }

    /// Every member document of a collection that could be read.
    async fn member_documents(&self, path: &str) -> Result<Vec<Value>, RedfishError> {
        let ids = self.members(path).await?;
        self.documents(&ids).await
    }

    /// The documents behind some links, concurrently, skipping unreadable ones.
    async fn documents(&self, ids: &[String]) -> Result<Vec<Value>, RedfishError> {
        let results = join_all(ids.iter().map(|id| self.get_optional(id))).await;
        let mut documents = Vec::with_capacity(results.len());
        for result in results {
            if let Some(document) = result? {
                documents.push(document);
            }
        }
        Ok(documents)
    }
}

/// Reads the inventory of every ComputerSystem of the BMC, plus its firmware inventory.
pub async fn read_inventory(session: &Session) -> Result<Inventory, RedfishError> {
    let fetcher = Fetcher {
        session,
        permits: Arc::new(Semaphore::new(INVENTORY_CONCURRENCY)),
    };
    // The root read at login serves when it names the systems; some BMCs show an anonymous
    // caller less, and then it is read again with the session.
    let root = match session.service_root() {
        Some(root) if link_of(root, "Systems").is_some() => root.clone(),
        _ => fetcher
            .get_optional("/redfish/v1/")
            .await?
            .unwrap_or(Value::Null),
    };
    let systems_path = link_of(&root, "Systems").unwrap_or("/redfish/v1/Systems");
    let update_path = link_of(&root, "UpdateService").unwrap_or("/redfish/v1/UpdateService");

    // The systems collection is the point of registration: failing to read it is an error.
    let system_ids = fetcher
        .members_from(fetcher.get(systems_path).await?)
        .await?;

    let (systems, firmwares) = tokio::join!(
        join_all(system_ids.iter().map(|id| read_system(&fetcher, id))),
        read_firmware(&fetcher, update_path),
    );
    let mut inventory = Inventory {
        systems: Vec::with_capacity(systems.len()),
        firmwares: firmwares?,
    };
    for system in systems {
        if let Some(system) = system? {
            inventory.systems.push(system);
        }
    }
    tracing::debug!(
        bmc = session.client().base_url(),
        systems = inventory.systems.len(),
        firmwares = inventory.firmwares.len(),
        "redfish inventory read"
    );
    Ok(inventory)
}

async fn read_system(
    fetcher: &Fetcher<'_>,
    id: &str,
) -> Result<Option<SystemInventory>, RedfishError> {
    let Some(doc) = fetcher.get_optional(id).await? else {
        return Ok(None);
    };
    let mut system = SystemInventory {
        odata_id: text(&doc, "@odata.id").unwrap_or_else(|| id.to_string()),
        id: text(&doc, "Id"),
        manufacturer: text(&doc, "Manufacturer"),
        model: text(&doc, "Model"),
        serial_number: text(&doc, "SerialNumber"),
        sku: text(&doc, "SKU"),
        bios_version: text(&doc, "BiosVersion"),
        power_state: text(&doc, "PowerState"),
        uuid: text(&doc, "UUID"),
        host_name: text(&doc, "HostName"),
        memory_gib: doc
            .pointer("/MemorySummary/TotalSystemMemoryGiB")
            .and_then(number_f64),
        processor_count: doc.pointer("/ProcessorSummary/Count").and_then(number_u32),
        health: doc.pointer("/Status/Health").and_then(plain_text),
        ..SystemInventory::default()
    };
    let (processors, interfaces, storages) = tokio::join!(
        async {
            match link_of(&doc, "Processors") {
                Some(path) => fetcher.member_documents(path).await,
                None => Ok(Vec::new()),
            }
        },
        async {
            match link_of(&doc, "EthernetInterfaces") {
                Some(path) => fetcher.member_documents(path).await,
                None => Ok(Vec::new()),
            }
        },
        read_storages(fetcher, &doc),
    );
    system.processors = processors?.iter().map(processor).collect();
    system.ethernet_interfaces = interfaces?.iter().map(ethernet_interface).collect();
    system.storages = storages?;
    Ok(Some(system))
}

async fn read_storages(
    fetcher: &Fetcher<'_>,
    system: &Value,
) -> Result<Vec<StorageInfo>, RedfishError> {
    if let Some(path) = link_of(system, "Storage") {
        let documents = fetcher.member_documents(path).await?;
        if !documents.is_empty() {
            let storages = join_all(documents.iter().map(|doc| storage(fetcher, doc))).await;
            return storages.into_iter().collect();
        }
    }
    // Older services (and the rackmount1 mockup) only describe SimpleStorage.
    if let Some(path) = link_of(system, "SimpleStorage") {
        let documents = fetcher.member_documents(path).await?;
        return Ok(documents.iter().map(simple_storage).collect());
    }
    Ok(Vec::new())
}

async fn storage(fetcher: &Fetcher<'_>, doc: &Value) -> Result<StorageInfo, RedfishError> {
    let inline_controllers: Vec<Value> = doc
        .get("StorageControllers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let drive_ids: Vec<String> = doc
        .get("Drives")
        .and_then(Value::as_array)
        .map(|links| links.iter().filter_map(link).map(str::to_string).collect())
        .unwrap_or_default();
    let (controllers, drives, volumes) = tokio::join!(
        async {
            // `StorageControllers` (inline, older schema) or the `Controllers` collection (newer).
            if !inline_controllers.is_empty() {
                Ok(inline_controllers)
            } else if let Some(path) = link_of(doc, "Controllers") {
                fetcher.member_documents(path).await
            } else {
                Ok(Vec::new())
            }
        },
        fetcher.documents(&drive_ids),
        async {
            match link_of(doc, "Volumes") {
                Some(path) => fetcher.member_documents(path).await,
                None => Ok(Vec::new()),
            }
        },
    );
    Ok(StorageInfo {
        id: text(doc, "Id"),
        name: text(doc, "Name"),
        simple: false,
        controllers: controllers?.iter().map(controller).collect(),
        drives: drives?
            .iter()
            .filter(|d| !is_absent(d))
            .map(drive)
            .collect(),
        volumes: volumes?.iter().map(volume).collect(),
    })
}

fn simple_storage(doc: &Value) -> StorageInfo {
    let drives = doc
        .get("Devices")
        .and_then(Value::as_array)
        .map(|devices| {
            devices
                .iter()
                .filter(|d| !is_absent(d))
                .map(drive)
                .collect()
        })
        .unwrap_or_default();
    StorageInfo {
        id: text(doc, "Id"),
        name: text(doc, "Name"),
        simple: true,
        controllers: vec![StorageControllerInfo {
            name: text(doc, "Name"),
            health: doc.pointer("/Status/Health").and_then(plain_text),
            ..StorageControllerInfo::default()
        }],
        drives,
        volumes: Vec::new(),
    }
}

async fn read_firmware(
    fetcher: &Fetcher<'_>,
    update_path: &str,
) -> Result<Vec<FirmwareInfo>, RedfishError> {
    // No UpdateService (404) is normal for some BMCs: no firmware list, no error.
    let Some(update) = fetcher.get_optional(update_path).await? else {
        return Ok(Vec::new());
    };
    let Some(path) = link_of(&update, "FirmwareInventory") else {
        return Ok(Vec::new());
    };
    let documents = fetcher.member_documents(path).await?;
    Ok(documents.iter().map(firmware).collect())
}

fn processor(doc: &Value) -> ProcessorInfo {
    ProcessorInfo {
        id: text(doc, "Id"),
        socket: text(doc, "Socket"),
        processor_type: text(doc, "ProcessorType"),
        manufacturer: text(doc, "Manufacturer"),
        model: text(doc, "Model"),
        architecture: text(doc, "ProcessorArchitecture").or_else(|| text(doc, "InstructionSet")),
        total_cores: doc.get("TotalCores").and_then(number_u32),
        total_threads: doc.get("TotalThreads").and_then(number_u32),
        max_speed_mhz: doc.get("MaxSpeedMHz").and_then(number_u32),
    }
}

fn ethernet_interface(doc: &Value) -> EthernetInterfaceInfo {
    let ipv4_addresses = doc
        .get("IPv4Addresses")
        .and_then(Value::as_array)
        .map(|addresses| {
            addresses
                .iter()
                .filter_map(|a| a.get("Address").and_then(plain_text))
                .collect()
        })
        .unwrap_or_default();
    EthernetInterfaceInfo {
        id: text(doc, "Id"),
        name: text(doc, "Name"),
        mac_address: text(doc, "MACAddress").or_else(|| text(doc, "PermanentMACAddress")),
        speed_mbps: doc.get("SpeedMbps").and_then(number_u32),
        link_status: text(doc, "LinkStatus"),
        ipv4_addresses,
    }
}

fn controller(doc: &Value) -> StorageControllerInfo {
    StorageControllerInfo {
        name: text(doc, "Name"),
        manufacturer: text(doc, "Manufacturer"),
        model: text(doc, "Model"),
        serial_number: text(doc, "SerialNumber"),
        firmware_version: text(doc, "FirmwareVersion"),
        speed_gbps: doc.get("SpeedGbps").and_then(number_f64),
        protocols: doc
            .get("SupportedDeviceProtocols")
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(plain_text).collect())
            .unwrap_or_default(),
        health: doc.pointer("/Status/Health").and_then(plain_text),
    }
}

fn drive(doc: &Value) -> DriveInfo {
    DriveInfo {
        name: text(doc, "Name"),
        manufacturer: text(doc, "Manufacturer"),
        model: text(doc, "Model"),
        serial_number: text(doc, "SerialNumber"),
        capacity_bytes: doc.get("CapacityBytes").and_then(number_u64),
        media_type: text(doc, "MediaType"),
        protocol: text(doc, "Protocol"),
        health: doc.pointer("/Status/Health").and_then(plain_text),
    }
}

fn volume(doc: &Value) -> VolumeInfo {
    VolumeInfo {
        name: text(doc, "Name"),
        capacity_bytes: doc.get("CapacityBytes").and_then(number_u64),
        raid_type: text(doc, "RAIDType").or_else(|| text(doc, "VolumeType")),
        health: doc.pointer("/Status/Health").and_then(plain_text),
    }
}

fn firmware(doc: &Value) -> FirmwareInfo {
    let id = text(doc, "Id");
    let name = text(doc, "Name");
    let description = text(doc, "Description");
    FirmwareInfo {
        firmware_type: infer_firmware_type(
            id.as_deref().unwrap_or(""),
            name.as_deref().unwrap_or(""),
            description.as_deref().unwrap_or(""),
        ),
        name,
        version: text(doc, "Version"),
        component_id: id,
        updateable: doc.get("Updateable").and_then(Value::as_bool),
    }
}

/// An empty bay: listed by the BMC, but not a device.
fn is_absent(doc: &Value) -> bool {
    doc.pointer("/Status/State").and_then(Value::as_str) == Some("Absent")
}

/// A non-empty, trimmed string property.
pub(super) fn text(doc: &Value, key: &str) -> Option<String> {
    doc.get(key).and_then(plain_text)
}

/// A non-empty, trimmed string value.
fn plain_text(value: &Value) -> Option<String> {
    value
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `{"@odata.id": "..."}` -> the id.
fn link(value: &Value) -> Option<&str> {
    value.get("@odata.id").and_then(Value::as_str)
}

/// `doc[key]["@odata.id"]`.
fn link_of<'a>(doc: &'a Value, key: &str) -> Option<&'a str> {
    doc.get(key).and_then(link)
}

/// A non-negative whole number, also from a float or a numeric string (some firmware sends those).
fn number_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && *f < u64::MAX as f64)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn number_u32(value: &Value) -> Option<u32> {
    number_u64(value).and_then(|n| u32::try_from(n).ok())
}

fn number_f64(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
        Value::String(s) => s.trim().parse().ok().filter(|f: &f64| f.is_finite()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn firmware_type_inference() {
        use FirmwareType::*;
        let cases: &[(&str, &str, &str, FirmwareType)] = &[
            ("BIOS", "Contoso BIOS Firmware", "", Bios),
            ("BMC", "Contoso BMC Firmware", "", Bmc),
            ("SS", "Contoso Simple Storage Firmware", "", Storage),
            ("AC-RoT0", "AC-RoT0 firmware", "", Other),
            (
                "Installed-25227-7.00.00.172__iDRAC.Embedded.1-1",
                "Integrated Dell Remote Access Controller",
                "",
                Bmc,
            ),
            ("Installed-159-1.13.2__BIOS.Setup.1-1", "BIOS", "", Bios),
            (
                "Installed-0-22.5.7__NIC.Integrated.1-1-1",
                "Broadcom Gigabit Ethernet BCM5720",
                "",
                Nic,
            ),
            (
                "Installed-0-52.26.0-5179__RAID.SL.3-1",
                "PERC H755 Front",
                "",
                Storage,
            ),
            (
                "Installed-0-A02__Disk.Bay.0:Enclosure.Internal.0-1",
                "Disk 0 in Backplane 1",
                "",
                Storage,
            ),
            ("Installed-0-00.3D.58__PSU.Slot.1", "PSU.Slot.1", "", Psu),
            (
                "Installed-0-1.0.6__CPLD.Embedded.1",
                "System CPLD",
                "",
                Cpld,
            ),
            ("1", "iLO 5", "", Bmc),
            ("2", "System ROM", "", Bios),
            ("3", "Redundant System ROM", "", Bios),
            ("4", "System Programmable Logic Device", "", Cpld),
            ("5", "Power Supply Firmware", "", Psu),
            ("6", "HPE Smart Array P408i-a SR Gen10", "", Storage),
            ("7", "HPE Ethernet 10Gb 2-port 562SFP+ Adapter", "", Nic),
            ("8", "Power Management Controller Firmware", "", Other),
            (
                "BMC-Primary",
                "Primary XClarity Controller Firmware",
                "",
                Bmc,
            ),
            ("UEFI", "UEFI Firmware", "", Bios),
            ("PSU1", "Power Supply 1", "", Psu),
            ("LXPM", "Lenovo XClarity Provisioning Manager", "", Other),
            ("Slot_3", "Mellanox ConnectX-6 Dx", "", Nic),
            ("x", "Silo controller", "", Other),
            ("", "", "Network adapter firmware", Nic),
            ("", "", "", Other),
        ];
        for (id, name, description, expected) in cases {
            assert_eq!(
                infer_firmware_type(id, name, description),
                *expected,
                "id={id:?} name={name:?} description={description:?}"
            );
        }
        assert_eq!(FirmwareType::Storage.to_string(), "Storage");
        assert_eq!(FirmwareType::Bios.as_str(), "BIOS");
    }

    #[test]
    fn odd_fields_degrade_to_none() {
        let p = processor(
            &json!({"TotalCores": "16", "TotalThreads": -1, "MaxSpeedMHz": 2300.0,
                                  "Model": "  ", "InstructionSet": "x86-64"}),
        );
        assert_eq!(p.total_cores, Some(16));
        assert_eq!(p.total_threads, None);
        assert_eq!(p.max_speed_mhz, Some(2300));
        assert_eq!(p.model, None);
        assert_eq!(p.architecture.as_deref(), Some("x86-64"));
        let e = ethernet_interface(&json!({"PermanentMACAddress": "aa:bb:cc:dd:ee:ff",
            "SpeedMbps": null, "IPv4Addresses": [{"Address": "10.0.0.1"}, {"Address": ""}, {}]}));
        assert_eq!(e.mac_address.as_deref(), Some("aa:bb:cc:dd:ee:ff"));
        assert_eq!(e.speed_mbps, None);
        assert_eq!(e.ipv4_addresses, vec!["10.0.0.1".to_string()]);
        let s = simple_storage(&json!({"Name": "S", "Devices": [
            {"Name": "Bay 1", "CapacityBytes": 8000000000000u64, "Status": {"State": "Enabled", "Health": "OK"}},
            {"Name": "Bay 2", "Status": {"State": "Absent"}}]}));
        assert_eq!(s.drives.len(), 1);
        assert_eq!(s.drives[0].capacity_bytes, Some(8_000_000_000_000));
        assert!(s.simple);
    }
}
