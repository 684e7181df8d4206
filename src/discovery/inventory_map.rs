//! From what the Redfish module read to what the servers table stores: one
//! [`ServerInventory`] per ComputerSystem (the BMC-wide firmware goes with each).

use serde_json::{json, Value};

use crate::db::servers::{
    EthernetInput, FirmwareInput, ProcessorInput, ServerInventory, StorageInput,
};
use crate::redfish::{Inventory, StorageInfo, SystemInventory};

fn storage(s: &StorageInfo) -> StorageInput {
    StorageInput {
        name: s.name.clone().or_else(|| s.id.clone()),
        controllers: s
            .controllers
            .iter()
            .map(|c| {
                json!({"name": c.name, "manufacturer": c.manufacturer, "model": c.model,
                       "serial_number": c.serial_number, "firmware_version": c.firmware_version,
                       "speed_gbps": c.speed_gbps, "protocols": c.protocols, "health": c.health})
            })
            .collect(),
        drives: s
            .drives
            .iter()
            .map(|d| {
                json!({"name": d.name, "manufacturer": d.manufacturer, "model": d.model,
                       "serial_number": d.serial_number, "capacity_bytes": d.capacity_bytes,
                       "media_type": d.media_type, "protocol": d.protocol, "health": d.health})
            })
            .collect(),
        volumes: s
            .volumes
            .iter()
            .map(|v| json!({"name": v.name, "capacity_bytes": v.capacity_bytes, "raid_type": v.raid_type, "health": v.health}))
            .collect::<Vec<Value>>(),
    }
}

fn system(sys: &SystemInventory, inv: &Inventory) -> ServerInventory {
    ServerInventory {
        uuid: sys.uuid.clone(),
        serial_number: sys.serial_number.clone(),
        manufacturer: sys.manufacturer.clone(),
        model: sys.model.clone(),
        sku: sys.sku.clone(),
        bios_version: sys.bios_version.clone(),
        power_state: sys.power_state.clone(),
        hostname: sys.host_name.clone(),
        memory_gib: sys.memory_gib,
        processor_count: sys.processor_count.map(i64::from),
        health: sys.health.clone(),
        processors: sys
            .processors
            .iter()
            .map(|p| ProcessorInput {
                socket: p.socket.clone().or_else(|| p.id.clone()),
                manufacturer: p.manufacturer.clone(),
                model: p.model.clone(),
                architecture: p.architecture.clone(),
                total_cores: p.total_cores.map(i64::from),
                total_threads: p.total_threads.map(i64::from),
                max_speed_mhz: p.max_speed_mhz.map(i64::from),
            })
            .collect(),
        ethernet_interfaces: sys
            .ethernet_interfaces
            .iter()
            .map(|e| EthernetInput {
                name: e.id.clone().or_else(|| e.name.clone()),
                mac_address: e.mac_address.clone(),
                speed_mbps: e.speed_mbps.map(i64::from),
                link_status: e.link_status.clone(),
                ipv4_addresses: e.ipv4_addresses.clone(),
            })
            .collect(),
        storages: sys.storages.iter().map(storage).collect(),
        firmwares: inv
            .firmwares
            .iter()
            .map(|f| FirmwareInput {
                name: f.name.clone(),
                version: f.version.clone(),
                component_id: f.component_id.clone(),
                updateable: f.updateable.unwrap_or(false),
                firmware_type: Some(f.firmware_type.as_str().to_string()),
            })
            .collect(),
    }
}

/// One server inventory per ComputerSystem, in the BMC's order.
pub fn servers_of(inv: &Inventory) -> Vec<ServerInventory> {
    inv.systems.iter().map(|s| system(s, inv)).collect()
}
