//! Firmware components from `UpdateService/FirmwareInventory`.

use serde_json::Value;

use super::firmware_type::infer_firmware_type;
use super::{link_of, text, Fetcher, FirmwareType};
use crate::redfish::RedfishError;

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

pub(super) async fn read_firmware(
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
