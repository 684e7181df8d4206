//! Pool membership and compliance: `assign_servers`, `assign_switches` (each answers the
//! pool's detail) and `/api/pool/{id}/compliance/`. The pool resource itself (list, detail,
//! create, update, delete) is in the parent module.

use std::collections::HashSet;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Map};

use super::super::auth::CurrentUser;
use super::super::error::{ApiError, ApiResult};
use super::super::extract::{Fields, Ids};
use super::super::validate::{invalid_pk, validate, Field, Kind, Mode};
use super::super::AppState;
use super::{detail, visible_pool, PoolDetail};
use crate::service;
use crate::service::pools::{AssignError, Members};

/// Most ids one assignment or removal may name (keeps every statement within the engines'
/// bind-parameter limits).
pub const MAX_IDS: usize = 10_000;

async fn assign(
    state: AppState,
    user: CurrentUser,
    id: i64,
    body: Fields,
    kind: Members,
) -> ApiResult<Json<PoolDetail>> {
    let pool = visible_pool(&state, &user, id).await?;
    let fields = [Field::new(
        kind.field(),
        Kind::IntList {
            min: None,
            max: None,
            allow_empty: false,
            max_items: Some(MAX_IDS),
        },
    )];
    let v = validate(&body, &fields, Mode::Full)?;
    let sent = v.ints(kind.field()).unwrap_or_default();
    let mut seen = HashSet::new();
    let requested: Vec<i64> = sent.into_iter().filter(|i| seen.insert(*i)).collect();
    match service::pools::assign(&state.db, &user.viewer(), pool.id, kind, &requested).await {
        Ok(_) => Ok(Json(detail(&state, pool.id).await?)),
        Err(AssignError::InvalidPk(r)) => Err(ApiError::field(kind.field(), invalid_pk(r))),
        Err(e @ AssignError::Locked(..)) => Err(ApiError::bad_request(e.to_string())),
        Err(AssignError::Conflicts(msgs)) => {
            let mut m = Map::new();
            m.insert(kind.field().to_string(), json!(msgs));
            Err(ApiError::Validation(m))
        }
        Err(AssignError::Db(e)) => Err(e.into()),
    }
}

pub(super) async fn assign_servers(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
    body: Fields,
) -> ApiResult<Json<PoolDetail>> {
    assign(state, user, ids.first(), body, Members::Servers).await
}

pub(super) async fn assign_switches(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
    body: Fields,
) -> ApiResult<Json<PoolDetail>> {
    assign(state, user, ids.first(), body, Members::Switches).await
}

pub(super) async fn pool_compliance(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
) -> ApiResult<Json<super::super::baselines::FirmwareBaselineCompliance>> {
    use service::baselines::PoolComplianceError as E;
    match service::baselines::pool_compliance(&state.ctx, user.viewer(), ids.first()).await {
        Ok(report) => Ok(Json(super::super::baselines::render_report(report))),
        Err(E::NoPool(_)) => Err(ApiError::NoMatch("Pool")),
        Err(e @ E::NoBaseline(_)) => Err(ApiError::bad_request(e.to_string())),
        Err(E::Baseline(service::baselines::BaselineError::Db(e)) | E::Db(e)) => Err(e.into()),
        Err(E::Baseline(_)) => Err(ApiError::NoMatch("Pool")),
    }
}
