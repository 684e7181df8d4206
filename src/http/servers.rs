//! `/api/server/`: registered servers, their hardware inventory and pool membership.
//! Servers are created by node registration only (`POST /api/server/` is 405).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::CurrentUser;
use super::error::{ApiError, ApiResult};
use super::extract::{Fields, Ids};
use super::list::{self, Filter, FilterKind, ListQuery, ListSpec, Shape};
use super::pools::{can_see_pool, MAX_IDS};
use super::routes::{Api, Op};
use super::validate::{invalid_pk, validate, validate_into, Errors, Field, Kind, Mode};
use super::wire::render_time;
use super::AppState;
use crate::db::servers::{
    self, EthernetInterface, Processor, Server, ServerFirmware, Storage, SERVER_COLUMNS,
    SERVER_FROM,
};
use crate::service::{self, servers::ChangeError};

/// Redfish `PowerState` values.
pub const POWER_STATES: &[&str] = &["On", "Off", "PoweringOn", "PoweringOff", "Paused"];

/// A server.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerOut {
    /// Id.
    #[schema(read_only)]
    pub id: i64,
    /// Name (255 characters at most; not unique).
    pub name: String,
    /// Model.
    #[schema(read_only)]
    pub model: Option<String>,
    /// Serial number.
    #[schema(read_only)]
    pub serial_number: Option<String>,
    /// Manufacturer.
    #[schema(read_only)]
    pub manufacturer: Option<String>,
    /// SKU.
    #[schema(read_only)]
    pub sku: Option<String>,
    /// BIOS version.
    #[schema(read_only)]
    pub bios_version: Option<String>,
    /// Redfish `PowerState`: On, Off, PoweringOn, PoweringOff, Paused.
    #[schema(read_only)]
    pub power_state: Option<String>,
    /// Pool id (null: unassigned).
    pub resource_pool: Option<i64>,
    /// Pool name.
    #[schema(read_only)]
    pub resource_pool_name: Option<String>,
    /// Node (BMC endpoint) id.
    #[schema(read_only)]
    pub node: Option<i64>,
    /// BMC URL.
    #[schema(read_only)]
    pub bmc_url: String,
    /// ComputerSystem UUID.
    #[schema(read_only)]
    pub uuid: Option<String>,
    /// Host name reported by the BMC.
    #[schema(read_only)]
    pub hostname: Option<String>,
    /// Memory in GiB.
    #[schema(read_only)]
    pub memory_gib: Option<f64>,
    /// Number of processors.
    #[schema(read_only)]
    pub processor_count: Option<i64>,
    /// Redfish `Status.Health`.
    #[schema(read_only)]
    pub health: Option<String>,
    /// Last inventory read.
    #[schema(read_only)]
    pub last_inventory_at: Option<String>,
    /// Creation time.
    #[schema(read_only)]
    pub created_at: String,
    /// Last change.
    #[schema(read_only)]
    pub updated_at: String,
}

impl From<Server> for ServerOut {
    fn from(s: Server) -> Self {
        ServerOut {
            id: s.id,
            name: s.name,
            model: s.model,
            serial_number: s.serial_number,
            manufacturer: s.manufacturer,
            sku: s.sku,
            bios_version: s.bios_version,
            power_state: s.power_state,
            resource_pool: s.resource_pool,
            resource_pool_name: s.resource_pool_name,
            node: s.node,
            bmc_url: s.bmc_url,
            uuid: s.uuid,
            hostname: s.hostname,
            memory_gib: s.memory_gib,
            processor_count: s.processor_count,
            health: s.health,
            last_inventory_at: s.last_inventory_at.as_ref().map(render_time),
            created_at: render_time(&s.created_at),
            updated_at: render_time(&s.updated_at),
        }
    }
}

/// Body of a server update.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerRequest {
    /// Name (kept by later inventory reads once set).
    pub name: String,
    /// Pool id, or null to unassign.
    pub resource_pool: Option<i64>,
}

/// Body of `remove_from_pool`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RemoveFromPoolRequest {
    /// Server ids.
    pub servers: Vec<i64>,
}

/// Answer of `remove_from_pool`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RemoveFromPoolOut {
    /// Ids of the servers that are now unassigned.
    pub servers: Vec<i64>,
}

/// The list declaration of servers.
pub static SERVER_LIST: ListSpec = ListSpec {
    model: "Server",
    from: SERVER_FROM,
    columns: SERVER_COLUMNS,
    search: &[
        ("name", "s.name"),
        ("model", "s.model"),
        ("serial_number", "s.serial_number"),
        ("manufacturer", "s.manufacturer"),
        ("sku", "s.sku"),
        ("bmc_url", "s.bmc_url"),
    ],
    filters: &[
        Filter {
            param: "resource_pool",
            column: "s.resource_pool_id",
            kind: FilterKind::ForeignKey {
                table: "pools",
                nullable: true,
                visible: Some(crate::db::pools::pool_visible),
            },
        },
        Filter {
            param: "power_state",
            column: "s.power_state",
            kind: FilterKind::Choice(POWER_STATES),
        },
        Filter {
            param: "manufacturer",
            column: "s.manufacturer",
            kind: FilterKind::Exact,
        },
        Filter {
            param: "model",
            column: "s.model",
            kind: FilterKind::Exact,
        },
    ],
    ordering: &[
        ("name", "s.name"),
        ("model", "s.model"),
        ("serial_number", "s.serial_number"),
        ("manufacturer", "s.manufacturer"),
        ("sku", "s.sku"),
        ("bios_version", "s.bios_version"),
        ("power_state", "s.power_state"),
        ("resource_pool__name", "rp.name"),
        ("id", "s.id"),
    ],
    id_column: "s.id",
    shape: Shape::Envelope,
    scope: Some(crate::db::pools::server_list_scope),
};

const SERVER_FIELDS: &[Field] = &[
    Field::text("name", servers::NAME_MAX),
    Field::new("resource_pool", Kind::Pk).optional().nullable(),
];

/// Routes of this resource.
pub fn routes() -> Api {
    Api::new()
        .route(
            "/api/server/",
            get(list_servers),
            [Op::get("server_list", "List servers").list::<ServerOut>(&SERVER_LIST)],
        )
        .route(
            "/api/server/remove_from_pool/",
            post(remove_from_pool),
            [Op::post(
                "server_remove_from_pool_create",
                "Unassign servers from their pools",
            )
            .body::<RemoveFromPoolRequest>()
            .ok::<RemoveFromPoolOut>()],
        )
        .route(
            "/api/server/{id}/",
            get(get_server)
                .put(update)
                .patch(update)
                .delete(delete_server),
            [
                Op::get("server_retrieve", "A server").ok::<ServerOut>(),
                Op::put("server_update", "Replace the writable fields of a server")
                    .body::<ServerRequest>()
                    .ok::<ServerOut>(),
                Op::patch(
                    "server_partial_update",
                    "Change the name or pool of a server",
                )
                .body::<ServerRequest>()
                .ok::<ServerOut>(),
                Op::delete("server_destroy", "Delete a server (superusers)"),
            ],
        )
        .route(
            "/api/server/{id}/processors/",
            get(processors),
            [Op::get("server_processors_list", "Processors of a server").array::<Processor>()],
        )
        .route(
            "/api/server/{id}/ethernet_interfaces/",
            get(ethernet_interfaces),
            [Op::get(
                "server_ethernet_interfaces_list",
                "Ethernet interfaces of a server",
            )
            .array::<EthernetInterface>()],
        )
        .route(
            "/api/server/{id}/storages/",
            get(storages),
            [Op::get(
                "server_storages_list",
                "Storage of a server (controllers, drives, volumes)",
            )
            .array::<Storage>()],
        )
        .route(
            "/api/server/{id}/firmwares/",
            get(firmwares),
            [
                Op::get("server_firmwares_list", "Firmware inventory of a server")
                    .array::<ServerFirmware>(),
            ],
        )
}

/// The server if the caller may see it, else 404.
async fn visible_server(state: &AppState, user: &CurrentUser, id: i64) -> ApiResult<Server> {
    list::fetch_one(&state.db, &SERVER_LIST, user, id, Server::from_row).await
}

/// A server's inventory rows as the answer, or the 404 of a server the caller cannot see.
fn of_visible_server<T>(rows: Option<T>) -> ApiResult<Json<T>> {
    rows.map(Json).ok_or(ApiError::NoMatch(SERVER_LIST.model))
}

async fn list_servers(
    State(state): State<AppState>,
    user: CurrentUser,
    q: ListQuery,
) -> ApiResult<axum::response::Response> {
    list::respond(&state.db, &SERVER_LIST, &q, &user, |r| {
        Server::from_row(r).map(ServerOut::from)
    })
    .await
}

async fn get_server(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
) -> ApiResult<Json<ServerOut>> {
    Ok(Json(
        visible_server(&state, &user, ids.first()).await?.into(),
    ))
}

/// The answer to a server change that changed nothing.
fn refused(e: ChangeError) -> ApiError {
    match e {
        ChangeError::InvalidPk(id) => ApiError::field("servers", invalid_pk(id)),
        e @ ChangeError::Locked(..) => ApiError::bad_request(e.to_string()),
        ChangeError::Db(e) => e.into(),
    }
}

async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
    mode: Mode,
    body: Fields,
) -> ApiResult<Json<ServerOut>> {
    let id = ids.first();
    let server = visible_server(&state, &user, id).await?;
    let mut errors = Errors::default();
    let v = validate_into(&body, SERVER_FIELDS, mode, &mut errors)?;
    // Only a change of pool counts (a PUT repeating the current pool is none).
    let pool = if v.has("resource_pool") {
        Some(v.int("resource_pool")).filter(|p| *p != server.resource_pool)
    } else {
        None
    };
    if pool.is_some() {
        // The deployment lock comes before every other rule.
        service::servers::refuse_locked(&state.db, &[server.id])
            .await
            .map_err(refused)?;
    }
    if let Some(Some(p)) = pool {
        if !can_see_pool(&state.db, &user, p).await? {
            errors.add("resource_pool", invalid_pk(p));
        }
    }
    errors.check()?;
    let name = v.str("name");
    service::servers::update(&state.db, &user.viewer(), server.id, name.as_deref(), pool)
        .await
        .map_err(refused)?;
    let s = servers::get(&state.db, server.id)
        .await?
        .ok_or(ApiError::NoMatch("Server"))?;
    Ok(Json(s.into()))
}

async fn delete_server(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
) -> ApiResult<StatusCode> {
    let server = visible_server(&state, &user, ids.first()).await?;
    if !user.is_superuser {
        return Err(ApiError::Forbidden);
    }
    service::servers::delete(&state.db, &user.viewer(), server.id)
        .await
        .map_err(refused)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_from_pool(
    State(state): State<AppState>,
    user: CurrentUser,
    body: Fields,
) -> ApiResult<Json<RemoveFromPoolOut>> {
    let fields = [Field::new(
        "servers",
        Kind::IntList {
            min: None,
            max: None,
            allow_empty: false,
            max_items: Some(MAX_IDS),
        },
    )];
    let v = validate(&body, &fields, Mode::Full)?;
    let sent = v.ints("servers").unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    let wanted: Vec<i64> = sent.into_iter().filter(|i| seen.insert(*i)).collect();
    service::servers::remove_from_pool(&state.db, &user.viewer(), &wanted)
        .await
        .map_err(refused)?;
    Ok(Json(RemoveFromPoolOut { servers: wanted }))
}

async fn processors(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
) -> ApiResult<Json<Vec<Processor>>> {
    of_visible_server(servers::processors(&state.db, ids.first(), user.viewer().scope()).await?)
}

async fn ethernet_interfaces(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
) -> ApiResult<Json<Vec<EthernetInterface>>> {
    of_visible_server(
        servers::ethernet_interfaces(&state.db, ids.first(), user.viewer().scope()).await?,
    )
}

async fn storages(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
) -> ApiResult<Json<Vec<Storage>>> {
    of_visible_server(servers::storages(&state.db, ids.first(), user.viewer().scope()).await?)
}

async fn firmwares(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
) -> ApiResult<Json<Vec<ServerFirmware>>> {
    of_visible_server(servers::firmwares(&state.db, ids.first(), user.viewer().scope()).await?)
}
