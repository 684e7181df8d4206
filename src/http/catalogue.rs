//! `/api/firmware/` and `/api/os/`: uploaded firmware packages and OS images.
//!
//! Uploads are multipart with a `file` part that is handed as a stream to
//! `service::catalogue`, which stores it under `<data dir>/firmware/` or `<data dir>/os/` and
//! checksums it on the way (never held in memory), bounded by `MOJO_MAX_UPLOAD` rather than
//! `MOJO_MAX_BODY`; its SQL is in `db::catalogue`. Reads are open to every user; writes are for
//! superusers.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use futures::TryStreamExt;
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::auth::{CurrentUser, Superuser};
use super::error::{ApiError, ApiResult};
use super::extract::{insert_multi, is_form, multipart_error, parse_body, read_body, Fields, Ids};
use super::list::{self, Filter, FilterKind, ListQuery, ListSpec, Shape};
use super::routes::{Api, Op};
use super::validate::{validate, validate_into, Errors, Field, Kind, Mode, Valid};
use super::wire::render_time;
use super::AppState;
use crate::db::catalogue::{CatalogueWrite, Kind as Which};
use crate::db::{DbResult, Row, Val};
use crate::service::catalogue::{self as service, CatalogueError, Received};

/// An uploaded firmware package.
#[derive(Debug, Serialize, ToSchema)]
pub struct FirmwareOut {
    /// Id.
    #[schema(read_only)]
    pub id: i64,
    /// Name.
    pub name: String,
    /// `BIOS`, `BMC` or a vendor type (`lsi_3108`).
    pub firmware_type: String,
    /// Version.
    pub version: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Models it applies to.
    pub models: Vec<String>,
    /// Size in bytes.
    #[schema(read_only)]
    pub size: i64,
    /// SHA-256 of the file (hex).
    #[schema(read_only)]
    pub sha256: String,
    /// Upload time.
    #[schema(read_only)]
    pub created_at: String,
}

/// Multipart body of a firmware upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct FirmwareUpload {
    /// The package.
    #[schema(value_type = String, format = Binary)]
    pub file: String,
    /// Name.
    pub name: String,
    /// Type.
    pub firmware_type: Option<String>,
    /// Version.
    pub version: Option<String>,
    /// Manufacturer.
    pub manufacturer: Option<String>,
    /// Models (repeat the part for several).
    pub models: Option<Vec<String>>,
}

/// Body of a firmware metadata change.
#[derive(Debug, Serialize, ToSchema)]
pub struct FirmwareRequest {
    /// Name.
    pub name: Option<String>,
    /// Type.
    pub firmware_type: Option<String>,
    /// Version.
    pub version: Option<String>,
    /// Manufacturer.
    pub manufacturer: Option<String>,
    /// Models.
    pub models: Option<Vec<String>>,
}

/// An uploaded OS image.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperatingSystemOut {
    /// Id.
    #[schema(read_only)]
    pub id: i64,
    /// Name.
    pub name: String,
    /// Family (`linux`, `windows`, `esxi`).
    pub os_family: String,
    /// Version.
    pub version: String,
    /// Architecture (`x86_64`, `aarch64`).
    pub arch: String,
    /// Size in bytes.
    #[schema(read_only)]
    pub size: i64,
    /// SHA-256 of the file (hex).
    #[schema(read_only)]
    pub sha256: String,
    /// Upload time.
    #[schema(read_only)]
    pub created_at: String,
}

/// Multipart body of an OS image upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperatingSystemUpload {
    /// The image.
    #[schema(value_type = String, format = Binary)]
    pub file: String,
    /// Name.
    pub name: String,
    /// Family.
    pub os_family: Option<String>,
    /// Version.
    pub version: Option<String>,
    /// Architecture.
    pub arch: Option<String>,
}

/// Body of an OS image metadata change.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperatingSystemRequest {
    /// Name.
    pub name: Option<String>,
    /// Family.
    pub os_family: Option<String>,
    /// Version.
    pub version: Option<String>,
    /// Architecture.
    pub arch: Option<String>,
}

/// One catalogue: which one, its writable fields and how it is listed.
struct Catalogue {
    /// Which catalogue (its table and upload directory).
    which: Which,
    /// Writable fields (each maps to the column of the same name).
    fields: &'static [Field],
    /// The list declaration (its `from` aliases the table as `c`).
    list: &'static ListSpec,
    /// Renders a row selected with the list's columns.
    render: fn(&Row) -> DbResult<Value>,
}

const TEXT_255: Field = Field {
    max_len: Some(255),
    ..Field::new("", Kind::Str).optional().blank()
};

const FIRMWARE_FIELDS: &[Field] = &[
    Field::text("name", 255),
    Field {
        name: "firmware_type",
        ..TEXT_255
    },
    Field {
        name: "version",
        ..TEXT_255
    },
    Field {
        name: "manufacturer",
        ..TEXT_255
    },
    Field {
        max_len: Some(255),
        ..Field::new("models", Kind::StrList).optional()
    },
];

const OS_FIELDS: &[Field] = &[
    Field::text("name", 255),
    Field {
        name: "os_family",
        ..TEXT_255
    },
    Field {
        name: "version",
        ..TEXT_255
    },
    Field {
        name: "arch",
        ..TEXT_255
    },
];

/// The list declaration of firmware packages (unpaginated: a bare array).
pub static FIRMWARE_LIST: ListSpec = ListSpec {
    model: "Firmware",
    from: "firmware_images c",
    columns: "c.id, c.name, c.firmware_type, c.version, c.manufacturer, c.models, c.size, c.sha256, c.created_at",
    search: &[
        ("name", "c.name"),
        ("firmware_type", "c.firmware_type"),
        ("version", "c.version"),
        ("manufacturer", "c.manufacturer"),
    ],
    filters: &[
        Filter { param: "firmware_type", column: "c.firmware_type", kind: FilterKind::Exact },
        Filter { param: "manufacturer", column: "c.manufacturer", kind: FilterKind::Exact },
    ],
    ordering: &[
        ("name", "c.name"),
        ("version", "c.version"),
        ("firmware_type", "c.firmware_type"),
        ("created_at", "c.created_at"),
        ("id", "c.id"),
    ],
    id_column: "c.id",
    shape: Shape::BareArray,
    scope: None,
};

/// The list declaration of OS images.
pub static OS_LIST: ListSpec = ListSpec {
    model: "OperatingSystem",
    from: "os_images c",
    columns: "c.id, c.name, c.os_family, c.version, c.arch, c.size, c.sha256, c.created_at",
    search: &[
        ("name", "c.name"),
        ("os_family", "c.os_family"),
        ("version", "c.version"),
    ],
    filters: &[
        Filter {
            param: "arch",
            column: "c.arch",
            kind: FilterKind::Exact,
        },
        Filter {
            param: "os_family",
            column: "c.os_family",
            kind: FilterKind::Exact,
        },
    ],
    ordering: &[
        ("name", "c.name"),
        ("version", "c.version"),
        ("created_at", "c.created_at"),
        ("id", "c.id"),
    ],
    id_column: "c.id",
    shape: Shape::Envelope,
    scope: None,
};

fn render_firmware(r: &Row) -> DbResult<Value> {
    let models: Vec<String> = r
        .opt_text("models")?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let out = FirmwareOut {
        id: r.int("id")?,
        name: r.text("name")?,
        firmware_type: r.text("firmware_type")?,
        version: r.text("version")?,
        manufacturer: r.text("manufacturer")?,
        models,
        size: r.int("size")?,
        sha256: r.text("sha256")?,
        created_at: render_time(&r.time("created_at")?),
    };
    Ok(serde_json::to_value(out).unwrap_or(Value::Null))
}

fn render_os(r: &Row) -> DbResult<Value> {
    let out = OperatingSystemOut {
        id: r.int("id")?,
        name: r.text("name")?,
        os_family: r.text("os_family")?,
        version: r.text("version")?,
        arch: r.text("arch")?,
        size: r.int("size")?,
        sha256: r.text("sha256")?,
        created_at: render_time(&r.time("created_at")?),
    };
    Ok(serde_json::to_value(out).unwrap_or(Value::Null))
}

static FIRMWARE: Catalogue = Catalogue {
    which: Which::Firmware,
    fields: FIRMWARE_FIELDS,
    list: &FIRMWARE_LIST,
    render: render_firmware,
};

static OS: Catalogue = Catalogue {
    which: Which::Os,
    fields: OS_FIELDS,
    list: &OS_LIST,
    render: render_os,
};

/// Routes of both catalogues.
pub fn routes() -> Api {
    Api::new()
        .route(
            "/api/firmware/",
            get(|s: State<AppState>, u: CurrentUser, q: ListQuery| list_items(s, u, q, &FIRMWARE))
                .post(|s: State<AppState>, u: Superuser, r: Request| upload(s, u, r, &FIRMWARE)),
            [
                Op::get("firmware_list", "List firmware packages")
                    .list::<FirmwareOut>(&FIRMWARE_LIST),
                Op::post("firmware_create", "Upload a firmware package")
                    .multipart::<FirmwareUpload>()
                    .created::<FirmwareOut>(),
            ],
        )
        .route(
            "/api/firmware/{id}/",
            get(|s: State<AppState>, u: CurrentUser, i: Ids| get_item(s, u, i, &FIRMWARE))
                .patch(|s: State<AppState>, u: Superuser, i: Ids, b: Fields| {
                    patch_item(s, u, i, b, &FIRMWARE)
                })
                .delete(|s: State<AppState>, u: Superuser, i: Ids| delete_item(s, u, i, &FIRMWARE)),
            [
                Op::get("firmware_retrieve", "A firmware package").ok::<FirmwareOut>(),
                Op::patch(
                    "firmware_partial_update",
                    "Change the metadata of a firmware package",
                )
                .body::<FirmwareRequest>()
                .ok::<FirmwareOut>(),
                Op::delete("firmware_destroy", "Delete a firmware package and its file"),
            ],
        )
        .route(
            "/api/firmware/{id}/download/",
            get(|s: State<AppState>, u: CurrentUser, i: Ids, r: Request| {
                download(s, u, i, r, &FIRMWARE)
            }),
            [Op::get(
                "firmware_download_retrieve",
                "Download the file of a firmware package",
            )
            .binary()],
        )
        .route(
            "/api/os/{id}/download/",
            get(|s: State<AppState>, u: CurrentUser, i: Ids, r: Request| download(s, u, i, r, &OS)),
            [Op::get("os_download_retrieve", "Download the file of an OS image").binary()],
        )
        .route(
            "/api/os/",
            get(|s: State<AppState>, u: CurrentUser, q: ListQuery| list_items(s, u, q, &OS))
                .post(|s: State<AppState>, u: Superuser, r: Request| upload(s, u, r, &OS)),
            [
                Op::get("os_list", "List OS images").list::<OperatingSystemOut>(&OS_LIST),
                Op::post("os_create", "Upload an OS image")
                    .multipart::<OperatingSystemUpload>()
                    .created::<OperatingSystemOut>(),
            ],
        )
        .route(
            "/api/os/{id}/",
            get(|s: State<AppState>, u: CurrentUser, i: Ids| get_item(s, u, i, &OS))
                .patch(|s: State<AppState>, u: Superuser, i: Ids, b: Fields| {
                    patch_item(s, u, i, b, &OS)
                })
                .delete(|s: State<AppState>, u: Superuser, i: Ids| delete_item(s, u, i, &OS)),
            [
                Op::get("os_retrieve", "An OS image").ok::<OperatingSystemOut>(),
                Op::patch("os_partial_update", "Change the metadata of an OS image")
                    .body::<OperatingSystemRequest>()
                    .ok::<OperatingSystemOut>(),
                Op::delete("os_destroy", "Delete an OS image and its file"),
            ],
        )
}

/// Streams an entry's file to an authenticated user (ranges and HEAD as for media URLs).
async fn download(
    State(state): State<AppState>,
    _user: CurrentUser,
    ids: Ids,
    req: Request,
    cat: &'static Catalogue,
) -> ApiResult<Response> {
    let file = service::stored(&state.ctx, cat.which, ids.first())
        .await
        .map_err(|e| match e {
            crate::media::MediaError::Db(e) => ApiError::Db(e),
            other => ApiError::Internal(other.to_string()),
        })?
        .ok_or(ApiError::NoMatch(cat.list.model))?;
    let name = if file.file.file_name.is_empty() {
        format!("{}-{}", cat.list.model.to_ascii_lowercase(), ids.first())
    } else {
        file.file.file_name.clone()
    };
    Ok(super::media::serve_file(&file, req.method(), req.headers(), Some(&name)).await)
}

async fn list_items(
    State(state): State<AppState>,
    user: CurrentUser,
    q: ListQuery,
    cat: &'static Catalogue,
) -> ApiResult<Response> {
    list::respond(&state.db, cat.list, &q, &user, cat.render).await
}

async fn fetch(state: &AppState, cat: &Catalogue, user: &CurrentUser, id: i64) -> ApiResult<Value> {
    list::fetch_one(&state.db, cat.list, user, id, cat.render).await
}

async fn get_item(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
    cat: &'static Catalogue,
) -> ApiResult<Json<Value>> {
    Ok(Json(fetch(&state, cat, &user, ids.first()).await?))
}

/// Column values of the validated writable fields that were sent.
fn columns_of(cat: &Catalogue, v: &Valid) -> CatalogueWrite {
    cat.fields
        .iter()
        .map(|f| {
            let val = match f.kind {
                Kind::StrList => v.strs(f.name).map(|l| Val::Text(json!(l).to_string())),
                _ => v.str(f.name).map(Val::Text),
            };
            (f.name, val)
        })
        .collect()
}

/// The answer to a failed catalogue operation.
fn api_error(cat: &Catalogue, e: CatalogueError) -> ApiError {
    match e {
        CatalogueError::TooLarge { .. } => ApiError::TooLarge(e.to_string()),
        CatalogueError::Invalid { field, msg } => ApiError::field(field, msg),
        CatalogueError::NotFound => ApiError::NoMatch(cat.list.model),
        CatalogueError::Duplicate(msg) => ApiError::field("file", msg),
        CatalogueError::InUse(msg) => ApiError::bad_request(msg),
        CatalogueError::Read(e) => multipart_error(e),
        CatalogueError::Io(_) => ApiError::Internal(e.to_string()),
        CatalogueError::Db(e) => ApiError::Db(e),
    }
}

async fn patch_item(
    State(state): State<AppState>,
    Superuser(user): Superuser,
    ids: Ids,
    body: Fields,
    cat: &'static Catalogue,
) -> ApiResult<Json<Value>> {
    let id = ids.first();
    fetch(&state, cat, &user, id).await?;
    let cols = columns_of(cat, &validate(&body, cat.fields, Mode::Partial)?);
    service::update(&state.ctx, cat.which, id, cols)
        .await
        .map_err(|e| api_error(cat, e))?;
    Ok(Json(fetch(&state, cat, &user, id).await?))
}

async fn delete_item(
    State(state): State<AppState>,
    Superuser(user): Superuser,
    ids: Ids,
    cat: &'static Catalogue,
) -> ApiResult<StatusCode> {
    service::delete(&state.ctx, cat.which, ids.first(), &user.username)
        .await
        .map_err(|e| api_error(cat, e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Parses the body, handing the first `file` part to the service as a stream (stored and
/// checksummed on the way), and collects the text parts.
async fn receive(
    state: &AppState,
    req: Request,
    cat: &Catalogue,
) -> ApiResult<(Map<String, Value>, Option<Received>)> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let is_multipart = ct.as_deref().is_some_and(|c| {
        c.trim_start()
            .to_ascii_lowercase()
            .starts_with("multipart/form-data")
    });
    let text_limit = usize::try_from(state.config.max_body).unwrap_or(usize::MAX);
    if !is_multipart {
        // No file can come this way; parse it as DRF would, so field errors are reported too.
        let bytes = read_body(req.into_body(), text_limit).await?;
        return match parse_body(ct.as_deref(), &bytes).await? {
            Value::Object(m) => Ok((m, None)),
            other => Err(Fields::json(other)
                .object()
                .err()
                .unwrap_or(ApiError::bad_request("Invalid body."))),
        };
    }
    let boundary = multer::parse_boundary(ct.as_deref().unwrap_or("")).map_err(multipart_error)?;
    let stream = req
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other);
    let mut mp = multer::Multipart::new(stream, boundary);
    let mut fields = Map::new();
    let mut received: Option<Received> = None;
    let mut text_bytes = 0usize;
    while let Some(mut field) = mp.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or("").to_string();
        if name == "file" && field.file_name().is_some() && received.is_none() {
            let file_name = field.file_name().unwrap_or("").to_string();
            let chunks = field.map_err(std::io::Error::other);
            let file = service::receive(&state.ctx, cat.which, &file_name, chunks)
                .await
                .map_err(|e| api_error(cat, e))?;
            received = Some(file);
            continue;
        }
        if field.file_name().is_some() {
            continue;
        }
        let mut text = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            text_bytes += chunk.len();
            if text_bytes > text_limit {
                return Err(ApiError::TooLarge(format!(
                    "Request body exceeds the limit of {text_limit} bytes (MOJO_MAX_BODY)."
                )));
            }
            text.extend_from_slice(&chunk);
        }
        insert_multi(
            &mut fields,
            name,
            String::from_utf8_lossy(&text).into_owned(),
        );
    }
    Ok((fields, received))
}

async fn upload(
    State(state): State<AppState>,
    Superuser(user): Superuser,
    req: Request,
    cat: &'static Catalogue,
) -> ApiResult<Response> {
    let form = is_form(
        req.headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    let (fields, received) = receive(&state, req, cat).await?;
    let body = Fields {
        data: Value::Object(fields),
        form,
    };
    let mut errors = Errors::default();
    let valid = validate_into(&body, cat.fields, Mode::Full, &mut errors)?;
    if received.is_none() {
        errors.add("file", service::NO_FILE);
    }
    errors.check()?;
    let cols = columns_of(cat, &valid);
    let id = service::create(&state.ctx, cat.which, received, cols, &user.username)
        .await
        .map_err(|e| api_error(cat, e))?;
    Ok((
        StatusCode::CREATED,
        Json(fetch(&state, cat, &user, id).await?),
    )
        .into_response())
}
