//! Requests that change something on a BMC (actions, PATCH): the answer's status, `Location`
//! and body, and the BMC's own message when it refuses.

use reqwest::Method;
use serde_json::Value;

use super::error::{clip, RedfishError};
use super::session::Session;

/// What a BMC answered to a change.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status (2xx: any refusal is an error).
    pub status: u16,
    /// The `Location` header (a task monitor, a created resource).
    pub location: Option<String>,
    /// The `ETag` header.
    pub etag: Option<String>,
    /// The body as JSON (`Null` when empty or not JSON).
    pub body: Value,
}

/// The message of a Redfish error body: the first `@Message.ExtendedInfo` message, else
/// `error.message`.
pub(crate) fn error_message(body: &Value) -> Option<String> {
    let error = body.get("error")?;
    let extended = error
        .get("@Message.ExtendedInfo")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .find_map(|m| m.get("Message").and_then(Value::as_str))
        });
    extended
        .or_else(|| error.get("message").and_then(Value::as_str))
        .map(|m| clip(m, 300))
}

fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        _ => "GET",
    }
}

impl Session {
    /// Sends `body` with `method` to a resource of this BMC (path or same-origin URL). A
    /// non-2xx answer is [`RedfishError::Refused`] with the BMC's message when it gave one.
    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, RedfishError> {
        self.send_json_if(method, path, body, None).await
    }

    /// [`Session::send_json`] with an optional `If-Match` (the resource's ETag).
    pub async fn send_json_if(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<Reply, RedfishError> {
        let url = self.client().resolve(path)?;
        let response = match if_match {
            Some(tag) => {
                self.client()
                    .send_if_match(method.clone(), &url, self.auth(), body, tag)
                    .await?
            }
            None => {
                self.client()
                    .send(method.clone(), &url, self.auth(), body)
                    .await?
            }
        };
        let parsed: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        let status = response.status.as_u16();
        if !response.status.is_success() {
            return Err(match error_message(&parsed) {
                Some(message) => RedfishError::Refused {
                    method: method_name(&method),
                    path: url.path().to_string(),
                    status,
                    message,
                },
                None => RedfishError::Status {
                    method: method_name(&method),
                    path: url.path().to_string(),
                    status,
                },
            });
        }
        Ok(Reply {
            status,
            location: response.header("location").map(str::to_string),
            etag: response.header("etag").map(str::to_string),
            body: parsed,
        })
    }

    /// GET of a resource with its `ETag` header (for a conditional change afterwards).
    pub async fn get_with_etag(&self, path: &str) -> Result<Reply, RedfishError> {
        self.send_json(Method::GET, path, None).await
    }

    /// POST of a JSON body (an action).
    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Reply, RedfishError> {
        self.send_json(Method::POST, path, Some(body)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_redfish_error_messages() {
        let body = serde_json::json!({"error": {"code": "Base.1.8.GeneralError", "message": "short",
            "@Message.ExtendedInfo": [{"MessageId": "x", "Message": "The value 'Foo' is not in the list."}]}});
        assert_eq!(
            error_message(&body).as_deref(),
            Some("The value 'Foo' is not in the list.")
        );
        let body = serde_json::json!({"error": {"message": "short"}});
        assert_eq!(error_message(&body).as_deref(), Some("short"));
        assert_eq!(error_message(&Value::Null), None);
    }
}
