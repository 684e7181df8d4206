//! `/api/node_discovery/scan_range/` (superusers) and `POST /api/node_discovery/run_scan/`.

use std::net::IpAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Superuser;
use super::error::{ApiError, ApiResult};
use super::extract::{Fields, Ids};
use super::list::{self, Filter, FilterKind, ListQuery, ListSpec, Shape};
use super::routes::{Api, Op};
use super::validate::{check_pks, validate, validate_into, Errors, Field, Kind, Mode};
use super::wire::render_time;
use super::AppState;
use crate::db::scan_ranges::{self, ScanRange, ScanRangeWrite, SCAN_RANGE_COLUMNS};
use crate::discovery::{address_count, range_allowed};
use crate::service;

/// Live or last progress of a scan.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanProgress {
    /// Probes done.
    pub scanned: u64,
    /// Probes planned (addresses x ports).
    pub total: u64,
    /// Redfish services found.
    pub found: u64,
    /// Nodes registered by zero-touch onboarding after the scan (ranges that onboard).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered: Option<u64>,
    /// Nodes whose registration by onboarding failed (the cause is on the node).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_failed: Option<u64>,
}

/// A scan range.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanRangeOut {
    /// Id.
    #[schema(read_only)]
    pub id: i64,
    /// Name (255 characters at most, not unique).
    pub name: String,
    /// First address (IPv4 or IPv6).
    pub ip_from: String,
    /// Last address (same family, not below `ip_from`).
    pub ip_to: String,
    /// Ports probed on every address (1-16 unique values; default `[443]`).
    pub ports: Vec<u16>,
    /// `ready` | `scanning` | `error`.
    #[schema(read_only)]
    pub status: String,
    /// When the last scan ended.
    #[schema(read_only)]
    pub last_scan_at: Option<String>,
    /// Why the last scan failed.
    #[schema(read_only)]
    pub last_error: Option<String>,
    /// Progress of the current or last scan.
    #[schema(read_only)]
    pub progress: ScanProgress,
    /// Seconds between scheduled scans (at least 300); null: scanned only when asked.
    pub rescan_interval: Option<i64>,
    /// When the scheduler scans the range next (null without `rescan_interval`).
    #[schema(read_only)]
    pub next_scan_at: Option<String>,
    /// Auth profile that zero-touch onboarding registers the range's nodes with.
    pub auth_profile: Option<i64>,
    /// After each scan, register the nodes found (needs `auth_profile`).
    pub auto_register: bool,
    /// Pool that servers registered through this range join.
    pub resource_pool: Option<i64>,
    /// Created.
    #[schema(read_only)]
    pub created_at: String,
    /// Last changed.
    #[schema(read_only)]
    pub updated_at: String,
}

impl From<ScanRange> for ScanRangeOut {
    fn from(r: ScanRange) -> Self {
        let n = |k: &str| {
            r.progress
                .get(k)
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0)
        };
        let progress = ScanProgress {
            scanned: n("scanned"),
            total: n("total"),
            found: n("found"),
            registered: r
                .progress
                .get("registered")
                .and_then(serde_json::Value::as_u64),
            registration_failed: r
                .progress
                .get("registration_failed")
                .and_then(serde_json::Value::as_u64),
        };
        ScanRangeOut {
            id: r.id,
            name: r.name,
            ip_from: r.ip_from,
            ip_to: r.ip_to,
            ports: r.ports,
            status: r.status.to_string(),
            last_scan_at: r.last_scan_at.as_ref().map(render_time),
            last_error: r.last_error,
            progress,
            rescan_interval: r.rescan_interval,
            next_scan_at: r.next_scan_at.as_ref().map(render_time),
            auth_profile: r.auth_profile,
            auto_register: r.auto_register,
            resource_pool: r.resource_pool,
            created_at: render_time(&r.created_at),
            updated_at: render_time(&r.updated_at),
        }
    }
}

/// Body of a scan range create or update.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanRangeRequest {
    /// Name.
    pub name: String,
    /// First address.
    pub ip_from: String,
    /// Last address.
    pub ip_to: String,
    /// Ports (default `[443]`).
    pub ports: Option<Vec<u16>>,
    /// Seconds between scheduled scans (300 at least, a year at most); null (default): only
    /// when asked. A range given an interval is due at once.
    pub rescan_interval: Option<i64>,
    /// Auth profile for zero-touch onboarding (default null).
    pub auth_profile: Option<i64>,
    /// Register what each scan finds with `auth_profile` (default false).
    pub auto_register: Option<bool>,
    /// Pool that onboarded servers join (default null).
    pub resource_pool: Option<i64>,
}

/// Body of `run_scan`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunScanRequest {
    /// Scan range ids.
    pub scan_ranges: Vec<i64>,
}

/// Answer of `run_scan`: the job to poll and the ranges, already `scanning`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunScanOut {
    /// Job id.
    pub job: i64,
    /// The ranges.
    pub scan_ranges: Vec<ScanRangeOut>,
}

/// The list declaration of scan ranges.
pub static SCAN_RANGE_LIST: ListSpec = ListSpec {
    model: "ScanRange",
    from: "scan_ranges r",
    columns: SCAN_RANGE_COLUMNS,
    search: &[
        ("name", "r.name"),
        ("ip_from", "r.ip_from"),
        ("ip_to", "r.ip_to"),
        ("status", "r.status"),
    ],
    filters: &[Filter {
        param: "status",
        column: "r.status",
        kind: FilterKind::Choice(scan_ranges::STATUSES),
    }],
    ordering: &[
        ("id", "r.id"),
        ("name", "r.name"),
        ("status", "r.status"),
        ("last_scan_at", "r.last_scan_at"),
    ],
    id_column: "r.id",
    shape: Shape::Envelope,
    scope: None,
};

const PORTS: Kind = Kind::IntList {
    min: Some(1),
    max: Some(65535),
    allow_empty: false,
    max_items: Some(16),
};

const FIELDS: &[Field] = &[
    Field::text("name", 255),
    Field::new("ip_from", Kind::Ip),
    Field::new("ip_to", Kind::Ip),
    Field::new("ports", PORTS).optional(),
    Field::new(
        "rescan_interval",
        Kind::Int {
            min: Some(MIN_RESCAN_INTERVAL),
            max: Some(MAX_RESCAN_INTERVAL),
        },
    )
    .optional()
    .nullable(),
    Field::new("auth_profile", Kind::Pk).optional().nullable(),
    Field::new("auto_register", Kind::Bool).optional(),
    Field::new("resource_pool", Kind::Pk).optional().nullable(),
];

/// Shortest `rescan_interval`: five minutes.
const MIN_RESCAN_INTERVAL: i64 = 300;
/// Longest `rescan_interval`: a year.
const MAX_RESCAN_INTERVAL: i64 = 365 * 86400;

const RUN_FIELDS: &[Field] = &[Field::new(
    "scan_ranges",
    Kind::IntList {
        min: None,
        max: None,
        allow_empty: false,
        max_items: Some(1000),
    },
)];

/// Routes of this resource.
pub fn routes() -> Api {
    Api::new()
        .route(
            "/api/node_discovery/scan_range/",
            get(list_ranges).post(create_range),
            [
                Op::get("node_discovery_scan_range_list", "List scan ranges")
                    .list::<ScanRangeOut>(&SCAN_RANGE_LIST),
                Op::post("node_discovery_scan_range_create", "Create a scan range")
                    .body::<ScanRangeRequest>()
                    .created::<ScanRangeOut>(),
            ],
        )
        .route(
            "/api/node_discovery/scan_range/{id}/",
            get(get_range)
                .put(update)
                .patch(update)
                .delete(delete_range),
            [
                Op::get("node_discovery_scan_range_retrieve", "A scan range").ok::<ScanRangeOut>(),
                Op::put("node_discovery_scan_range_update", "Replace a scan range")
                    .body::<ScanRangeRequest>()
                    .ok::<ScanRangeOut>(),
                Op::patch(
                    "node_discovery_scan_range_partial_update",
                    "Change some fields of a scan range",
                )
                .body::<ScanRangeRequest>()
                .ok::<ScanRangeOut>(),
                Op::delete(
                    "node_discovery_scan_range_destroy",
                    "Delete a scan range (cancels its scan; nodes stay)",
                ),
            ],
        )
        .route(
            "/api/node_discovery/run_scan/",
            post(run_scan),
            [Op::post(
                "node_discovery_run_scan_create",
                "Scan ranges for Redfish BMCs (asynchronous)",
            )
            .body::<RunScanRequest>()
            .accepted::<RunScanOut>()],
        )
}

async fn list_ranges(
    State(state): State<AppState>,
    Superuser(user): Superuser,
    q: ListQuery,
) -> ApiResult<Response> {
    list::respond(&state.db, &SCAN_RANGE_LIST, &q, &user, |r| {
        ScanRange::from_row(r).map(ScanRangeOut::from)
    })
    .await
}

async fn get_range(
    State(state): State<AppState>,
    _: Superuser,
    ids: Ids,
) -> ApiResult<Json<ScanRangeOut>> {
    let r = scan_ranges::get(&state.db, ids.first())
        .await?
        .ok_or(ApiError::NoMatch("ScanRange"))?;
    Ok(Json(r.into()))
}

/// Validates a body; `current` holds the stored values for the cross-field checks of a PATCH.
async fn check(
    state: &AppState,
    body: &Fields,
    mode: Mode,
    current: Option<&ScanRange>,
) -> ApiResult<ScanRangeWrite> {
    let mut errors = Errors::default();
    let v = validate_into(body, FIELDS, mode, &mut errors)?;
    let ports: Option<Vec<u16>> = v.ints("ports").map(|p| {
        p.into_iter()
            .filter_map(|n| u16::try_from(n).ok())
            .collect()
    });
    if let Some(p) = &ports {
        let mut sorted = p.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != p.len() {
            errors.add("ports", "Duplicate ports are not allowed.");
        }
    }
    let auth_profile = v.has("auth_profile").then(|| v.int("auth_profile"));
    if let Some(Some(p)) = auth_profile {
        check_pks(
            &state.db,
            "auth_profiles",
            "auth_profile",
            &[p],
            &mut errors,
        )
        .await?;
    }
    let resource_pool = v.has("resource_pool").then(|| v.int("resource_pool"));
    if let Some(Some(p)) = resource_pool {
        check_pks(&state.db, "pools", "resource_pool", &[p], &mut errors).await?;
    }
    // Cross-field rules run once every field is valid, as DRF's `validate()` does.
    errors.check()?;
    let mut errors = Errors::default();
    let ip_from = v
        .str("ip_from")
        .or_else(|| current.map(|c| c.ip_from.clone()));
    let ip_to = v.str("ip_to").or_else(|| current.map(|c| c.ip_to.clone()));
    let port_count = ports
        .as_ref()
        .map(Vec::len)
        .or_else(|| current.map(|c| c.ports.len()))
        .unwrap_or(1) as u128;
    if let (Some(a), Some(b)) = (
        ip_from.as_deref().and_then(|s| s.parse::<IpAddr>().ok()),
        ip_to.as_deref().and_then(|s| s.parse::<IpAddr>().ok()),
    ) {
        let max = u128::from(state.config.scan_max_probes);
        if a.is_ipv4() != b.is_ipv4() {
            errors.add(
                "ip_to",
                "ip_from and ip_to must be of the same address family.",
            );
        } else if address_count(a, b) == 0 {
            errors.add("ip_to", "ip_to must not be lower than ip_from.");
        } else if address_count(a, b).saturating_mul(port_count) > max {
            errors.add(
                "non_field_errors",
                format!(
                    "The range holds {} probes (addresses x ports); at most {max} are allowed (MOJO_SCAN_MAX_PROBES).",
                    address_count(a, b).saturating_mul(port_count)
                ),
            );
        } else if !range_allowed(&state.config.discovery_allowed_networks, a, b) {
            errors.add(
                "non_field_errors",
                format!("{a}-{b} is not inside the networks discovery may scan (MOJO_DISCOVERY_ALLOWED_NETWORKS)."),
            );
        }
    }
    errors.check()?;
    let mut w = ScanRangeWrite {
        name: v.str("name"),
        ip_from: v.str("ip_from"),
        ip_to: v.str("ip_to"),
        ports,
        rescan_interval: v.has("rescan_interval").then(|| v.int("rescan_interval")),
        next_scan_at: None,
        auth_profile,
        auto_register: v.bool("auto_register"),
        resource_pool,
    };
    w.next_scan_at = next_scan_at(&w, current);
    Ok(w)
}

/// The `next_scan_at` a write sets: a range created or changed with an interval is due at
/// once, one left without an interval has none; a write that changes nothing the schedule
/// depends on keeps it (None).
fn next_scan_at(
    w: &ScanRangeWrite,
    current: Option<&ScanRange>,
) -> Option<Option<chrono::DateTime<chrono::Utc>>> {
    let Some(c) = current else {
        return Some(w.rescan_interval.flatten().map(|_| crate::db::now()));
    };
    let interval = w.rescan_interval.unwrap_or(c.rescan_interval);
    if interval.is_none() {
        return w.rescan_interval.map(|_| None);
    }
    fn differs<T: PartialEq>(new: &Option<T>, old: &T) -> bool {
        new.as_ref().is_some_and(|n| n != old)
    }
    let changed = differs(&w.rescan_interval, &c.rescan_interval)
        || differs(&w.ip_from, &c.ip_from)
        || differs(&w.ip_to, &c.ip_to)
        || differs(&w.ports, &c.ports)
        || differs(&w.auth_profile, &c.auth_profile)
        || differs(&w.auto_register, &c.auto_register)
        || differs(&w.resource_pool, &c.resource_pool)
        || c.next_scan_at.is_none();
    changed.then(|| Some(crate::db::now()))
}

async fn create_range(
    State(state): State<AppState>,
    _: Superuser,
    body: Fields,
) -> ApiResult<Response> {
    let w = check(&state, &body, Mode::Full, None).await?;
    let mut tx = state.db.begin().await?;
    let id = scan_ranges::insert(&mut tx, &w).await?;
    tx.commit().await?;
    let r = scan_ranges::get(&state.db, id)
        .await?
        .ok_or(ApiError::NoMatch("ScanRange"))?;
    Ok((StatusCode::CREATED, Json(ScanRangeOut::from(r))).into_response())
}

async fn update(
    State(state): State<AppState>,
    _: Superuser,
    ids: Ids,
    mode: Mode,
    body: Fields,
) -> ApiResult<Json<ScanRangeOut>> {
    let id = ids.first();
    let current = scan_ranges::get(&state.db, id)
        .await?
        .ok_or(ApiError::NoMatch("ScanRange"))?;
    let w = check(&state, &body, mode, Some(&current)).await?;
    let mut tx = state.db.begin().await?;
    scan_ranges::update(&mut tx, id, &w).await?;
    tx.commit().await?;
    let r = scan_ranges::get(&state.db, id)
        .await?
        .ok_or(ApiError::NoMatch("ScanRange"))?;
    Ok(Json(r.into()))
}

async fn delete_range(
    State(state): State<AppState>,
    _: Superuser,
    ids: Ids,
) -> ApiResult<StatusCode> {
    if !service::scans::delete_range(&state, ids.first()).await? {
        return Err(ApiError::NoMatch("ScanRange"));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn run_scan(
    State(state): State<AppState>,
    Superuser(user): Superuser,
    body: Fields,
) -> ApiResult<Response> {
    let v = validate(&body, RUN_FIELDS, Mode::Full)?;
    let mut ids = v.ints("scan_ranges").unwrap_or_default();
    ids.sort_unstable();
    ids.dedup();
    let mut errors = Errors::default();
    check_pks(&state.db, "scan_ranges", "scan_ranges", &ids, &mut errors).await?;
    errors.check()?;
    let started = service::scans::start(&state, user.id, &ids).await?;
    let job = started
        .job
        .ok_or_else(|| ApiError::Internal("scan ranges without a job".into()))?;
    let ranges = started.ranges;
    let out = RunScanOut {
        job,
        scan_ranges: ranges.into_iter().map(ScanRangeOut::from).collect(),
    };
    Ok((StatusCode::ACCEPTED, Json(out)).into_response())
}
