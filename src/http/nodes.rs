//! `/api/node/` (superusers): BMC endpoints found by discovery, and their registration.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Superuser;
use super::error::{ApiError, ApiResult};
use super::extract::{Fields, Ids};
use super::list::{self, Filter, FilterKind, ListQuery, ListSpec, Shape};
use super::routes::{Api, Op};
use super::validate::{invalid_pk, validate, Field, Kind, Mode};
use super::wire::render_time;
use super::AppState;
use crate::db::nodes::{self, Node, NODE_COLUMNS};
use crate::discovery::register::RegisterError;
use crate::service::registration::RegistrationError;
use crate::service::{self, nodes::DeleteError};

/// A node: one BMC endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeOut {
    /// Id.
    pub id: i64,
    /// Base URL of the BMC (`https://10.0.0.5:443`).
    pub url: String,
    /// Address.
    pub ip_address: String,
    /// Port.
    pub port: i64,
    /// Vendor from the Redfish service root.
    pub vendor: Option<String>,
    /// Product from the Redfish service root.
    pub product: Option<String>,
    /// Service root UUID.
    pub uuid: Option<String>,
    /// Redfish version.
    pub redfish_version: Option<String>,
    /// `discovered` | `registering` | `registered` | `unreachable` | `error`.
    pub status: String,
    /// Scan range that found it (null once the range is deleted).
    pub scan_range: Option<i64>,
    /// Auth profile it was registered with.
    pub auth_profile: Option<i64>,
    /// Server created by registration.
    pub server: Option<i64>,
    /// Last failure (scan or registration).
    pub last_error: Option<String>,
    /// Last time a scan saw it.
    pub last_seen_at: Option<String>,
    /// First seen.
    pub created_at: String,
}

impl From<Node> for NodeOut {
    fn from(n: Node) -> Self {
        NodeOut {
            id: n.id,
            url: n.url,
            ip_address: n.ip_address,
            port: n.port,
            vendor: n.vendor,
            product: n.product,
            uuid: n.uuid,
            redfish_version: n.redfish_version,
            status: n.status.to_string(),
            scan_range: n.scan_range,
            auth_profile: n.auth_profile,
            server: n.server,
            last_error: n.last_error,
            last_seen_at: n.last_seen_at.as_ref().map(render_time),
            created_at: render_time(&n.created_at),
        }
    }
}

/// Body of a registration.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegisterRequest {
    /// Auth profile whose credentials are tried in order.
    pub auth_profile: i64,
}

/// The list declaration of nodes.
pub static NODE_LIST: ListSpec = ListSpec {
    model: "Node",
    from: "nodes n",
    columns: NODE_COLUMNS,
    search: &[
        ("vendor", "n.vendor"),
        ("product", "n.product"),
        ("status", "n.status"),
        ("url", "n.url"),
    ],
    filters: &[
        Filter {
            param: "status",
            column: "n.status",
            kind: FilterKind::Choice(nodes::STATUSES),
        },
        Filter {
            param: "scan_range",
            column: "n.scan_range_id",
            kind: FilterKind::ForeignKey {
                table: "scan_ranges",
                nullable: true,
                visible: None,
            },
        },
        Filter {
            param: "vendor",
            column: "n.vendor",
            kind: FilterKind::Exact,
        },
    ],
    ordering: &[
        ("id", "n.id"),
        ("ip_address", "n.ip_address"),
        ("status", "n.status"),
        ("vendor", "n.vendor"),
        ("last_seen_at", "n.last_seen_at"),
    ],
    id_column: "n.id",
    shape: Shape::Envelope,
    scope: None,
};

const REGISTER_FIELDS: &[Field] = &[Field::new("auth_profile", Kind::Pk)];

/// Routes of this resource.
pub fn routes() -> Api {
    Api::new()
        .route(
            "/api/node/",
            get(list_nodes),
            [Op::get("node_list", "List nodes").list::<NodeOut>(&NODE_LIST)],
        )
        .route(
            "/api/node/{id}/",
            get(get_node).delete(delete_node),
            [
                Op::get("node_retrieve", "A node").ok::<NodeOut>(),
                Op::delete(
                    "node_destroy",
                    "Forget a node (refused while it has a server)",
                ),
            ],
        )
        .route(
            "/api/node/{id}/register/",
            post(register),
            [Op::post(
                "node_register_create",
                "Register a node: log in, read the inventory, create its server",
            )
            .body::<RegisterRequest>()
            .ok::<NodeOut>()],
        )
}

async fn list_nodes(
    State(state): State<AppState>,
    Superuser(user): Superuser,
    q: ListQuery,
) -> ApiResult<Response> {
    list::respond(&state.db, &NODE_LIST, &q, &user, |r| {
        Node::from_row(r).map(NodeOut::from)
    })
    .await
}

async fn get_node(
    State(state): State<AppState>,
    _: Superuser,
    ids: Ids,
) -> ApiResult<Json<NodeOut>> {
    let n = service::nodes::get(&state, ids.first())
        .await?
        .ok_or(ApiError::NoMatch("Node"))?;
    Ok(Json(n.into()))
}

async fn delete_node(
    State(state): State<AppState>,
    _: Superuser,
    ids: Ids,
) -> ApiResult<StatusCode> {
    match service::nodes::delete(&state, ids.first()).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(DeleteError::Missing) => Err(ApiError::NoMatch("Node")),
        Err(DeleteError::HasServer { node, server, name }) => {
            Err(ApiError::bad_request(match name {
                Some(name) => {
                    format!("Node {node} has server {server} ({name}); delete the server first.")
                }
                None => format!("Node {node} has server {server}; delete the server first."),
            }))
        }
        Err(DeleteError::Registering(node)) => Err(ApiError::bad_request(format!(
            "Node {node} is being registered."
        ))),
        Err(DeleteError::Db(e)) => Err(e.into()),
    }
}

async fn register(
    State(state): State<AppState>,
    _: Superuser,
    ids: Ids,
    body: Fields,
) -> ApiResult<Json<NodeOut>> {
    let v = validate(&body, REGISTER_FIELDS, Mode::Full)?;
    let profile = v.int("auth_profile").unwrap_or_default();
    match service::registration::register(&state, ids.first(), profile).await {
        Ok(n) => Ok(Json(n.into())),
        Err(RegistrationError::MissingNode) => Err(ApiError::NoMatch("Node")),
        Err(RegistrationError::MissingProfile(p)) => {
            Err(ApiError::field("auth_profile", invalid_pk(p)))
        }
        Err(e @ RegistrationError::NotAllowed { .. }) => Err(ApiError::bad_request(e.to_string())),
        Err(RegistrationError::Register(e)) => Err(match e {
            RegisterError::Missing => ApiError::NoMatch("Node"),
            RegisterError::Busy(_) | RegisterError::Bmc(..) | RegisterError::Identity(..) => {
                ApiError::bad_request(e.to_string())
            }
            RegisterError::Interrupted => {
                ApiError::Unavailable("The registration was interrupted.".into())
            }
            RegisterError::Db(e) => e.into(),
        }),
        Err(RegistrationError::Db(e)) => Err(e.into()),
    }
}
