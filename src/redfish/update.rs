//! Firmware updates through `UpdateService`: which method the BMC offers, starting an update
//! (`SimpleUpdate` with an image URL the BMC fetches, else a streamed multipart push to
//! `MultipartHttpPushUri`), and following the task it returns to its end.
//!
//! Every URI taken from the BMC (the actions' targets, the push URI, a task's `Location` or
//! `@odata.id`) must resolve to the BMC's own scheme://host:port (`BmcClient::resolve`).

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value};

use super::action::error_message;
use super::error::{clip, RedfishError};
use super::inventory::infer_firmware_type;
use super::session::Session;

/// Path of the update service.
const UPDATE_SERVICE: &str = "/redfish/v1/UpdateService";
/// How often a task is read while it runs.
pub const TASK_POLL: Duration = Duration::from_millis(500);
/// Chunk size of a pushed image.
const PUSH_CHUNK: usize = 64 * 1024;

/// What a BMC's `UpdateService` offers.
#[derive(Debug, Clone, Default)]
pub struct UpdateService {
    /// Target of the `UpdateService.SimpleUpdate` action.
    pub simple_update: Option<String>,
    /// `TransferProtocol@Redfish.AllowableValues` of that action (upper case).
    pub protocols: Vec<String>,
    /// `MultipartHttpPushUri`.
    pub multipart_push: Option<String>,
    /// The `FirmwareInventory` collection.
    pub firmware_inventory: Option<String>,
}

/// Reads `UpdateService` (None: the BMC has none).
pub async fn update_service(session: &Session) -> Result<Option<UpdateService>, RedfishError> {
    let doc = match session.get_json(UPDATE_SERVICE).await {
        Ok(doc) => doc,
        Err(RedfishError::Status { status: 404, .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let action = doc
        .get("Actions")
        .and_then(|a| a.get("#UpdateService.SimpleUpdate"));
    let simple_update = action.map(|a| {
        a.get("target")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("{UPDATE_SERVICE}/Actions/UpdateService.SimpleUpdate"))
    });
    let protocols = action
        .and_then(|a| a.get("TransferProtocol@Redfish.AllowableValues"))
        .and_then(Value::as_array)
        .map(|v| {
            v.iter()
                .filter_map(Value::as_str)
                .map(str::to_ascii_uppercase)
                .collect()
        })
        .unwrap_or_default();
    let link = |key: &str| {
        doc.get(key)
            .and_then(|v| v.get("@odata.id").and_then(Value::as_str).or(v.as_str()))
            .map(str::to_string)
    };
    Ok(Some(UpdateService {
        simple_update,
        protocols,
        multipart_push: doc
            .get("MultipartHttpPushUri")
            .and_then(Value::as_str)
            .map(str::to_string),
        firmware_inventory: link("FirmwareInventory"),
    }))
}

/// The `FirmwareInventory` entry of the given type (`BIOS`, `BMC`, ...; compared
/// case-insensitively with the type inferred from each entry), if the BMC lists one.
pub async fn firmware_target(
    session: &Session,
    service: &UpdateService,
    firmware_type: &str,
) -> Result<Option<String>, RedfishError> {
    let Some(collection) = &service.firmware_inventory else {
        return Ok(None);
    };
    let doc = session.get_json(collection).await?;
    let members: Vec<String> = doc
        .get("Members")
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(|v| v.get("@odata.id").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    for member in members {
        let Ok(entry) = session.get_json(&member).await else {
            continue;
        };
        let text = |k: &str| entry.get(k).and_then(Value::as_str).unwrap_or("");
        let inferred = infer_firmware_type(text("Id"), text("Name"), text("Description"));
        if inferred.as_str().eq_ignore_ascii_case(firmware_type.trim()) {
            // Resolving refuses an entry outside the BMC.
            session.client().resolve(&member)?;
            return Ok(Some(member));
        }
    }
    Ok(None)
}

/// The task URI of an update just started: the body's `@odata.id` when the body is a Task,
/// else `Location` (a task or a task monitor); checked to be on the BMC.
fn task_uri(
    session: &Session,
    location: Option<&str>,
    body: &Value,
) -> Result<String, RedfishError> {
    let from_body = body
        .get("TaskState")
        .and(body.get("@odata.id"))
        .and_then(Value::as_str);
    let uri = from_body.or(location).ok_or_else(|| {
        RedfishError::Unsupported("the BMC started the update but named no task".into())
    })?;
    let url = session.client().resolve(uri)?;
    Ok(url.path().to_string())
}

/// Starts `SimpleUpdate` of the image at `image_uri`, for `target` (a FirmwareInventory entry)
/// when given; returns the task URI.
pub async fn simple_update(
    session: &Session,
    service: &UpdateService,
    image_uri: &str,
    target: Option<&str>,
) -> Result<String, RedfishError> {
    let action = service
        .simple_update
        .as_deref()
        .ok_or_else(|| RedfishError::Unsupported("the BMC offers no SimpleUpdate".into()))?;
    let mut body = json!({ "ImageURI": image_uri });
    let scheme = image_uri
        .split_once("://")
        .map(|(s, _)| s.to_ascii_uppercase())
        .unwrap_or_default();
    if service.protocols.contains(&scheme) {
        body["TransferProtocol"] = json!(scheme);
    }
    if let Some(t) = target {
        body["Targets"] = json!([t]);
    }
    let reply = session.post_json(action, &body).await?;
    task_uri(session, reply.location.as_deref(), &reply.body)
}

/// Pushes the file at `path` (`size` bytes, sent as `file_name`) to `MultipartHttpPushUri`
/// as a multipart body streamed from disk with a `Content-Length`, for `target` when given;
/// returns the task URI. `limit` bounds the upload.
pub async fn multipart_push(
    session: &Session,
    service: &UpdateService,
    path: &Path,
    size: u64,
    file_name: &str,
    target: Option<&str>,
    limit: Duration,
) -> Result<String, RedfishError> {
    let push = service.multipart_push.as_deref().ok_or_else(|| {
        RedfishError::Unsupported("the BMC offers no MultipartHttpPushUri".into())
    })?;
    let url = session.client().resolve(push)?;
    let boundary = format!("mojo-{}", hex::encode(rand::random::<[u8; 12]>()));
    let params = match target {
        Some(t) => json!({ "Targets": [t] }),
        None => json!({}),
    };
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"UpdateParameters\"\r\n\
         Content-Type: application/json\r\n\r\n{params}\r\n--{boundary}\r\n\
         Content-Disposition: form-data; name=\"UpdateFile\"; filename=\"{file_name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let length = head.len() as u64 + size + tail.len() as u64;
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| RedfishError::Transport(format!("cannot open the image: {e}")))?;
    let body_stream = futures::stream::iter([Ok::<Bytes, std::io::Error>(Bytes::from(head))])
        .chain(tokio_util::io::ReaderStream::with_capacity(
            file, PUSH_CHUNK,
        ))
        .chain(futures::stream::iter([Ok(Bytes::from(tail))]));
    let response = session
        .client()
        .send_stream(
            &url,
            session.auth(),
            &format!("multipart/form-data; boundary={boundary}"),
            length,
            reqwest::Body::wrap_stream(body_stream),
            limit,
        )
        .await?;
    let parsed: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    if !response.status.is_success() {
        return Err(match error_message(&parsed) {
            Some(message) => RedfishError::Refused {
                method: "POST",
                path: url.path().to_string(),
                status: response.status.as_u16(),
                message,
            },
            None => RedfishError::Status {
                method: "POST",
                path: url.path().to_string(),
                status: response.status.as_u16(),
            },
        });
    }
    task_uri(session, response.header("location"), &parsed)
}

/// Where a task stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskProgress {
    /// Still running, with `PercentComplete` when the BMC gives it.
    Running(Option<u8>),
    /// `Completed`.
    Completed,
    /// `Exception`, `Killed`, `Cancelled` (or another end), with its `Messages`.
    Failed(String),
}

/// The messages of a task document, joined.
fn task_messages(doc: &Value) -> String {
    let messages: Vec<String> = doc
        .get("Messages")
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(|x| x.get("Message").and_then(Value::as_str))
                .map(|s| clip(s, 300))
                .collect()
        })
        .unwrap_or_default();
    messages.join(" ")
}

/// Reads a task (or task monitor) once.
pub async fn task_progress(session: &Session, uri: &str) -> Result<TaskProgress, RedfishError> {
    let doc = session.get_json(uri).await?;
    let Some(state) = doc.get("TaskState").and_then(Value::as_str) else {
        // A task monitor answers the finished operation's resource once done.
        return Ok(TaskProgress::Completed);
    };
    let percent = doc
        .get("PercentComplete")
        .and_then(Value::as_u64)
        .map(|p| p.min(100) as u8);
    Ok(match state {
        "Completed" => TaskProgress::Completed,
        "New" | "Starting" | "Running" | "Pending" | "Stopping" | "Suspended" | "Interrupted"
        | "Service" => TaskProgress::Running(percent),
        other => {
            let messages = task_messages(&doc);
            TaskProgress::Failed(if messages.is_empty() {
                format!("the update task ended {other}")
            } else {
                messages
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_task_messages() {
        let doc = json!({"Messages": [{"Message": "a."}, {"MessageId": "x"}, {"Message": "b."}]});
        assert_eq!(task_messages(&doc), "a. b.");
        assert_eq!(task_messages(&json!({})), "");
    }
}
