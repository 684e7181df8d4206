//! Hardware inventory read over an authenticated session.
//!
//! Vendors differ in which properties they fill and how; every field here is optional and an
//! odd or missing one becomes `None`, never a failed registration. Only errors that mean the BMC
//! cannot be worked with (unreachable, TLS, deadline) fail the whole read. Requests run
//! concurrently under a small bound so that many registrations at once stay gentle on BMCs.
//!
//! Layout: this file holds [`read_inventory`], the bounded `Fetcher` and the JSON value helpers
//! shared by the submodules; `systems.rs` ([`SystemInventory`]), `processors.rs` (processors and
//! Ethernet interfaces), `storage.rs` (Storage / SimpleStorage), `firmware.rs`
//! (`UpdateService/FirmwareInventory`) and `firmware_type.rs` (the [`FirmwareType`] classifier).

use std::sync::Arc;

use futures::future::join_all;
use serde_json::Value;
use tokio::sync::Semaphore;

use super::error::RedfishError;
use super::session::Session;

mod firmware;
mod firmware_type;
mod processors;
mod storage;
mod systems;

pub use firmware::FirmwareInfo;
pub use firmware_type::{infer_firmware_type, FirmwareType};
pub use processors::{EthernetInterfaceInfo, ProcessorInfo};
pub use storage::{DriveInfo, StorageControllerInfo, StorageInfo, VolumeInfo};
pub use systems::SystemInventory;

use firmware::read_firmware;
use systems::read_system;

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
    use super::processors::{ethernet_interface, processor};
    use super::storage::simple_storage;
    use serde_json::json;

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
