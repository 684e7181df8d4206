//! `/media/<kind>/<id>/<expires>/<signature>/<file name>`: catalogue files for BMCs, behind a
//! signed URL instead of a token (see `crate::media`), and the streaming of a file from disk
//! with `HEAD` and single byte ranges, shared with the authenticated downloads.
//!
//! A wrong, expired or malformed URL gets the plain 404 of an unknown path: nothing about the
//! file is revealed. Files stream in 64 KiB chunks, so memory stays flat however large they are.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::error::ApiError;
use super::AppState;
use crate::media::{sanitize_file_name, MediaError, ServedFile};

/// Chunk size of a streamed file.
const CHUNK: usize = 64 * 1024;

/// The router of `/media/` (its own, so that it can also be served alone by the plain-HTTP
/// media listener, and stays outside response compression, which would break ranges).
pub fn router(state: AppState) -> Router {
    routes(state).fallback(|| async { ApiError::NotFound("Not found.") })
}

/// The `/media/` route alone (merged into the main router).
pub fn routes(state: AppState) -> Router {
    Router::new()
        .route(
            "/media/{kind}/{id}/{expires}/{signature}/{name}",
            get(signed_media),
        )
        // The installer's callback is on the media base too (the plain-HTTP media listener
        // serves it as well).
        .route(
            "/media/callback/{token}/",
            axum::routing::post(super::deployments::callback),
        )
        .with_state(state)
}

async fn signed_media(
    State(state): State<AppState>,
    Path((kind, id, expires, signature, _name)): Path<(String, String, String, String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    match crate::service::catalogue::open_signed(&state.ctx, &kind, &id, &expires, &signature).await
    {
        Ok(file) => serve_file(&file, &method, &headers, None).await,
        Err(MediaError::Refused) => ApiError::NotFound("Not found.").into_response(),
        Err(e) => ApiError::Internal(e.to_string()).into_response(),
    }
}

/// What a `Range` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// The whole file (no header, several ranges, or a unit other than bytes).
    Whole,
    /// Bytes `start..=end`.
    Part(u64, u64),
    /// Nothing of the file (416).
    Unsatisfiable,
}

/// The byte range a `Range` header asks for within `size` bytes.
pub fn parse_range(value: Option<&str>, size: u64) -> ByteRange {
    match range_of(value, size) {
        Ok(None) => ByteRange::Whole,
        Ok(Some((s, e))) => ByteRange::Part(s, e),
        Err(Unsatisfiable) => ByteRange::Unsatisfiable,
    }
}

/// A range outside the file.
struct Unsatisfiable;

fn range_of(value: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(value) = value else {
        return Ok(None);
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (start, end) = spec.split_once('-').ok_or(Unsatisfiable)?;
    let (start, end) = (start.trim(), end.trim());
    let range = if start.is_empty() {
        // The last `end` bytes.
        let n: u64 = end.parse().map_err(|_| Unsatisfiable)?;
        if n == 0 || size == 0 {
            return Err(Unsatisfiable);
        }
        (size.saturating_sub(n), size - 1)
    } else {
        let s: u64 = start.parse().map_err(|_| Unsatisfiable)?;
        let e: u64 = if end.is_empty() {
            size.saturating_sub(1)
        } else {
            end.parse::<u64>()
                .map_err(|_| Unsatisfiable)?
                .min(size.saturating_sub(1))
        };
        if s >= size || e < s {
            return Err(Unsatisfiable);
        }
        (s, e)
    };
    Ok(Some(range))
}

/// Streams a stored file: 200 with the whole file, 206 with one range, 416 for a range outside
/// it; HEAD answers the same headers without a body. `attachment` adds a
/// `Content-Disposition` naming the file.
pub async fn serve_file(
    file: &ServedFile,
    method: &Method,
    headers: &HeaderMap,
    attachment: Option<&str>,
) -> Response {
    let mut f = match tokio::fs::File::open(&file.path).await {
        Ok(f) => f,
        Err(e) => {
            return ApiError::Internal(format!("cannot open {}: {e}", file.path.display()))
                .into_response()
        }
    };
    let size = match f.metadata().await {
        Ok(m) => m.len(),
        Err(e) => return ApiError::Internal(e.to_string()).into_response(),
    };
    let range = parse_range(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        size,
    );
    let mut out = HeaderMap::new();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Sent as stored: the API's response compression skips a response that names its
    // encoding, so lengths and ranges stay true.
    out.insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    if let Some(name) = attachment {
        let name = sanitize_file_name(name);
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            out.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    let (status, start, len) = match range {
        ByteRange::Whole => (StatusCode::OK, 0, size),
        ByteRange::Part(s, e) => {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {s}-{e}/{size}")) {
                out.insert(header::CONTENT_RANGE, v);
            }
            (StatusCode::PARTIAL_CONTENT, s, e - s + 1)
        }
        ByteRange::Unsatisfiable => {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                out.insert(header::CONTENT_RANGE, v);
            }
            return (StatusCode::RANGE_NOT_SATISFIABLE, out).into_response();
        }
    };
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if method == Method::HEAD {
        return (status, out).into_response();
    }
    if start > 0 {
        if let Err(e) = f.seek(std::io::SeekFrom::Start(start)).await {
            return ApiError::Internal(e.to_string()).into_response();
        }
    }
    let body = Body::from_stream(ReaderStream::with_capacity(f.take(len), CHUNK));
    (status, out, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        use super::ByteRange::*;
        assert_eq!(parse_range(None, 10), Whole);
        assert_eq!(parse_range(Some("bytes=0-3"), 10), Part(0, 3));
        assert_eq!(parse_range(Some("bytes=5-"), 10), Part(5, 9));
        assert_eq!(parse_range(Some("bytes=-4"), 10), Part(6, 9));
        assert_eq!(parse_range(Some("bytes=8-100"), 10), Part(8, 9));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=4-2"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Whole);
        assert_eq!(parse_range(Some("items=0-1"), 10), Whole);
        assert_eq!(parse_range(Some("bytes=x-1"), 10), Unsatisfiable);
    }
}
