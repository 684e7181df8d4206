//! Booting a server from an ISO over virtual media: finding the CD/DVD slot (under the
//! ComputerSystem, else under its manager), ejecting and inserting media, and the one-time boot
//! override to `Cd` (a conditional PATCH with the system's ETag where the BMC asks for one).

use reqwest::Method;
use serde_json::{json, Value};

use super::error::RedfishError;
use super::power::SystemPower;
use super::session::Session;

/// A virtual media slot that takes CDs or DVDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdSlot {
    /// Its `@odata.id`.
    pub path: String,
    /// `Inserted` as read.
    pub inserted: bool,
    /// `Image` as read.
    pub image: Option<String>,
    /// Target of `#VirtualMedia.InsertMedia`.
    pub insert_target: String,
    /// Target of `#VirtualMedia.EjectMedia`.
    pub eject_target: String,
}

fn odata_id(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn members(list: &Value) -> Vec<String> {
    list.get("Members")
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(|x| x.get("@odata.id").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// True when the slot's `MediaTypes` include `CD` or `DVD`.
fn takes_cd(doc: &Value) -> bool {
    doc.get("MediaTypes")
        .and_then(Value::as_array)
        .is_some_and(|t| {
            t.iter()
                .filter_map(Value::as_str)
                .any(|t| t.eq_ignore_ascii_case("CD") || t.eq_ignore_ascii_case("DVD"))
        })
}

/// The slot described by `doc` at `path`.
pub fn cd_slot(path: &str, doc: &Value) -> CdSlot {
    let target = |action: &str| {
        doc.pointer(&format!("/Actions/#VirtualMedia.{action}/target"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("{path}/Actions/VirtualMedia.{action}"))
    };
    CdSlot {
        path: path.to_string(),
        inserted: doc
            .get("Inserted")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        image: doc
            .get("Image")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        insert_target: target("InsertMedia"),
        eject_target: target("EjectMedia"),
    }
}

/// The first CD/DVD slot of a VirtualMedia collection.
async fn cd_in(session: &Session, collection: &str) -> Result<Option<CdSlot>, RedfishError> {
    let list = session.get_json(collection).await?;
    for path in members(&list) {
        let doc = session.get_json(&path).await?;
        if takes_cd(&doc) {
            return Ok(Some(cd_slot(&path, &doc)));
        }
    }
    Ok(None)
}

/// The CD/DVD slot that boots `system`: the system's own VirtualMedia when it has one that
/// takes CDs, else that of the managers managing it (`Links.ManagedBy`), else of any manager.
pub async fn find_cd(session: &Session, system: &SystemPower) -> Result<CdSlot, RedfishError> {
    let doc = session.get_json(&system.path).await?;
    if let Some(coll) = odata_id(&doc, "/VirtualMedia/@odata.id") {
        if let Some(slot) = cd_in(session, &coll).await? {
            return Ok(slot);
        }
    }
    let mut managers: Vec<String> = doc
        .pointer("/Links/ManagedBy")
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(|x| x.get("@odata.id").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if managers.is_empty() {
        let root = session.service_root().cloned();
        let coll = root
            .as_ref()
            .and_then(|r| odata_id(r, "/Managers/@odata.id"))
            .unwrap_or_else(|| "/redfish/v1/Managers".into());
        managers = members(&session.get_json(&coll).await?);
    }
    for m in managers {
        let mdoc = session.get_json(&m).await?;
        if let Some(coll) = odata_id(&mdoc, "/VirtualMedia/@odata.id") {
            if let Some(slot) = cd_in(session, &coll).await? {
                return Ok(slot);
            }
        }
    }
    Err(RedfishError::Unsupported(
        "the BMC offers no virtual media slot for CD or DVD".into(),
    ))
}

/// The slot as it reads now.
pub async fn read_slot(session: &Session, path: &str) -> Result<CdSlot, RedfishError> {
    Ok(cd_slot(path, &session.get_json(path).await?))
}

/// Ejects whatever the slot holds (nothing sent when it reads ejected).
pub async fn eject(session: &Session, slot: &CdSlot) -> Result<(), RedfishError> {
    let now = read_slot(session, &slot.path).await?;
    if !now.inserted && now.image.is_none() {
        return Ok(());
    }
    session
        .post_json(&slot.eject_target, &json!({}))
        .await
        .map(|_| ())
}

/// Inserts the image at `url` (read-only, the BMC fetches it itself).
pub async fn insert(session: &Session, slot: &CdSlot, url: &str) -> Result<(), RedfishError> {
    let protocol = if url.starts_with("https://") {
        "HTTPS"
    } else {
        "HTTP"
    };
    session
        .post_json(
            &slot.insert_target,
            &json!({"Image": url, "Inserted": true, "WriteProtected": true,
                    "TransferProtocolType": protocol}),
        )
        .await
        .map(|_| ())
}

/// Sets the one-time boot override to `Cd`. The PATCH carries the system's ETag when the BMC
/// gives one (some refuse a PATCH without `If-Match`).
pub async fn boot_once_from_cd(
    session: &Session,
    system: &SystemPower,
) -> Result<(), RedfishError> {
    let body = json!({"Boot": {"BootSourceOverrideTarget": "Cd",
                               "BootSourceOverrideEnabled": "Once"}});
    let read = session.get_with_etag(&system.path).await?;
    let etag = read.etag.clone().or_else(|| {
        read.body
            .get("@odata.etag")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    match session
        .send_json_if(Method::PATCH, &system.path, Some(&body), etag.as_deref())
        .await
    {
        Ok(_) => Ok(()),
        // The ETag went stale between the read and the PATCH: read it again once.
        Err(
            RedfishError::Refused { status: 412, .. } | RedfishError::Status { status: 412, .. },
        ) => {
            let again = session.get_with_etag(&system.path).await?;
            session
                .send_json_if(
                    Method::PATCH,
                    &system.path,
                    Some(&body),
                    again.etag.as_deref(),
                )
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cd_slots() {
        let doc = json!({"MediaTypes": ["CD", "DVD"], "Inserted": true, "Image": "http://x/a.iso",
            "Actions": {"#VirtualMedia.InsertMedia": {"target": "/vm/CD1/Ins"}}});
        assert!(takes_cd(&doc));
        assert!(!takes_cd(&json!({"MediaTypes": ["Floppy", "USBStick"]})));
        let s = cd_slot("/vm/CD1", &doc);
        assert!(s.inserted);
        assert_eq!(s.insert_target, "/vm/CD1/Ins");
        assert_eq!(s.eject_target, "/vm/CD1/Actions/VirtualMedia.EjectMedia");
        assert_eq!(s.image.as_deref(), Some("http://x/a.iso"));
    }
}
