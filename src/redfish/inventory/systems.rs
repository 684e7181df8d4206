//! One ComputerSystem: its own properties, and the reads of its processors, Ethernet interfaces
//! and storage.

use super::processors::{ethernet_interface, processor};
use super::storage::read_storages;
use super::{link_of, number_f64, number_u32, plain_text, text, Fetcher};
use super::{EthernetInterfaceInfo, ProcessorInfo, StorageInfo};
use crate::redfish::RedfishError;

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

pub(super) async fn read_system(
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
