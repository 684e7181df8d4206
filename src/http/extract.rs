//! Request extractors. Every rejection is mapped to the DRF table of `ApiError`; no axum
//! rejection text ever reaches a client.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use serde_json::{Map, Value};

use super::error::ApiError;
use super::AppState;

/// A request body as DRF's parsers see it: JSON, form or multipart, all as one value.
/// An empty body, or one without a Content-Type, is an empty object.
#[derive(Debug, Clone)]
pub struct Fields {
    /// The parsed body.
    pub data: Value,
    /// True for form and multipart bodies, where a repeated key is a list of values: a
    /// single-value field takes the last one (as Django's `QueryDict.get`), a list field all.
    pub form: bool,
}

impl Fields {
    /// A JSON body.
    pub fn json(data: Value) -> Fields {
        Fields { data, form: false }
    }

    /// The top-level object, or DRF's `non_field_errors` complaint about another type.
    pub fn object(&self) -> Result<&Map<String, Value>, ApiError> {
        match &self.data {
            Value::Object(m) => Ok(m),
            other => Err(ApiError::field(
                "non_field_errors",
                format!(
                    "Invalid data. Expected a dictionary, but got {}.",
                    python_type_name(other)
                ),
            )),
        }
    }
}

/// Python's name for the type of a JSON value, as DRF prints it in messages.
pub fn python_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

fn media_type(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(ct.to_string())
}

/// True for the content types that carry form data (their single-valued fields take the last
/// of repeated keys, as Django's QueryDict does).
pub(super) fn is_form(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|c| {
        let c = c.trim_start().to_ascii_lowercase();
        c.starts_with("application/x-www-form-urlencoded") || c.starts_with("multipart/form-data")
    })
}

/// DRF's 400 for a multipart body that cannot be parsed.
pub(super) fn multipart_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Multipart form parse error - {e}"))
}

/// Inserts a form value, turning repeated keys into a list (as a QueryDict's `getlist`).
pub(super) fn insert_multi(map: &mut Map<String, Value>, key: String, val: String) {
    match map.get_mut(&key) {
        Some(Value::Array(items)) => items.push(Value::String(val)),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, Value::String(val)]);
        }
        None => {
            map.insert(key, Value::String(val));
        }
    }
}

/// Parses a body of the given content type into a field map.
pub async fn parse_body(content_type: Option<&str>, bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let Some(ct) = content_type else {
        return Ok(Value::Object(Map::new()));
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        return serde_json::from_slice(bytes)
            .map_err(|e| ApiError::bad_request(format!("JSON parse error - {e}")));
    }
    if essence == "application/x-www-form-urlencoded" {
        let mut map = Map::new();
        for (k, v) in form_urlencoded::parse(bytes) {
            insert_multi(&mut map, k.into_owned(), v.into_owned());
        }
        return Ok(Value::Object(map));
    }
    if essence == "multipart/form-data" {
        let boundary = multer::parse_boundary(ct).map_err(multipart_error)?;
        let data = bytes::Bytes::copy_from_slice(bytes);
        let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(data) });
        let mut mp = multer::Multipart::new(stream, boundary);
        let mut map = Map::new();
        loop {
            let field = mp.next_field().await.map_err(multipart_error)?;
            let Some(field) = field else { break };
            let is_file = field.file_name().is_some();
            let name = field.name().unwrap_or("").to_string();
            let text = field.text().await.map_err(multipart_error)?;
            if !is_file {
                insert_multi(&mut map, name, text);
            }
        }
        return Ok(Value::Object(map));
    }
    Err(ApiError::UnsupportedMediaType(ct.to_string()))
}

impl FromRequest<AppState> for Fields {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let ct = media_type(req.headers());
        let limit = usize::try_from(state.config.max_body).unwrap_or(usize::MAX);
        let bytes = read_body(req.into_body(), limit).await?;
        let form = is_form(ct.as_deref());
        Ok(Fields {
            data: parse_body(ct.as_deref(), &bytes).await?,
            form,
        })
    }
}

/// True when a body error is the body-progress deadline.
pub fn stalled(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<super::conn::BodyStalled>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Reads a whole body up to `limit` bytes (413 beyond).
pub async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .map(|s| s.is::<http_body_util::LengthLimitError>())
            .unwrap_or(false);
        if too_large {
            ApiError::TooLarge(format!(
                "Request body exceeds the limit of {limit} bytes (MOJO_MAX_BODY)."
            ))
        } else if stalled(&e) {
            ApiError::bad_request("The request body stopped arriving before it was complete.")
        } else {
            ApiError::bad_request("The request body could not be read.")
        }
    })
}

/// The integer ids in the URL path, in order (`/api/x/{id}/y/{cid}/`). A segment that is not an
/// integer answers 404 `Not found.`, as DRF's lookup does.
#[derive(Debug, Clone)]
pub struct Ids(pub Vec<i64>);

impl Ids {
    /// The first id.
    pub fn first(&self) -> i64 {
        self.0.first().copied().unwrap_or_default()
    }

    /// The second id.
    pub fn second(&self) -> i64 {
        self.0.get(1).copied().unwrap_or_default()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ids {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound("Not found."))?;
        let mut ids = Vec::new();
        for (_, v) in params.iter() {
            let id: i64 = v.parse().map_err(|_| ApiError::NotFound("Not found."))?;
            ids.push(id);
        }
        Ok(Ids(ids))
    }
}
