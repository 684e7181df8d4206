//! Storage subsystems (`Storage`, or legacy `SimpleStorage`): controllers, drives, volumes.

use futures::future::join_all;
use serde_json::Value;

use super::{link, link_of, number_f64, number_u64, plain_text, text, Fetcher};
use crate::redfish::RedfishError;

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

pub(super) async fn read_storages(
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

pub(super) fn simple_storage(doc: &Value) -> StorageInfo {
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

/// An empty bay: listed by the BMC, but not a device.
fn is_absent(doc: &Value) -> bool {
    doc.pointer("/Status/State").and_then(Value::as_str) == Some("Absent")
}
