//! Processors and host Ethernet interfaces (NICs) of a ComputerSystem.

use serde_json::Value;

use super::{number_u32, plain_text, text};

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

pub(super) fn processor(doc: &Value) -> ProcessorInfo {
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

pub(super) fn ethernet_interface(doc: &Value) -> EthernetInterfaceInfo {
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
