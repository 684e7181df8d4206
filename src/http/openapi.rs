//! The OpenAPI 3.0.3 document, built from the route registry, and the offline docs UI.

use std::collections::BTreeSet;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::list::{FilterKind, ListSpec, Shape};
use super::routes::{Components, Op, Reply};
use super::AppState;

/// Token pair request/response (simplejwt's TokenObtainPair).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenObtainPair {
    /// User name.
    #[schema(write_only)]
    pub username: String,
    /// Password.
    #[schema(write_only)]
    pub password: String,
    /// Access token (24 h).
    #[schema(read_only)]
    pub access: String,
    /// Refresh token (7 days).
    #[schema(read_only)]
    pub refresh: String,
}

/// Refresh request/response.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenRefresh {
    /// New access token.
    #[schema(read_only)]
    pub access: String,
    /// The refresh token.
    pub refresh: String,
}

/// Verify request.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenVerify {
    /// Any token.
    #[schema(write_only)]
    pub token: String,
}

/// Blacklist request.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenBlacklist {
    /// The refresh token to revoke.
    #[schema(write_only)]
    pub refresh: String,
}

/// Paths served by the docs router (for the trailing-slash rule).
pub const DOC_PATHS: &[&str] = &[
    "/api/schema/",
    "/api/schema/swagger-ui/",
    "/api/schema/redoc/",
];

fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter(|s| s.starts_with('{') && s.ends_with('}'))
        .map(|s| {
            json!({"in": "path", "name": &s[1..s.len() - 1], "required": true,
                   "schema": {"type": "integer"}})
        })
        .collect()
}

fn list_params(spec: &ListSpec) -> Vec<Value> {
    let mut params = Vec::new();
    for f in spec.filters {
        let schema = match f.kind {
            FilterKind::Exact => json!({"type": "string"}),
            FilterKind::Choice(c) => json!({"type": "string", "enum": c}),
            FilterKind::Number => json!({"type": "integer"}),
            FilterKind::Bool => json!({"type": "boolean"}),
            FilterKind::ForeignKey { nullable: true, .. } => json!({"type": "string",
                "description": "An id, or `null` for none"}),
            FilterKind::ForeignKey { .. } => json!({"type": "integer"}),
        };
        params.push(json!({"in": "query", "name": f.param, "required": false, "schema": schema}));
    }
    let orderable: Vec<&str> = spec.ordering.iter().map(|(n, _)| *n).collect();
    params.push(json!({"in": "query", "name": "ordering", "required": false,
        "description": format!("Which field to use when ordering the results: {} (prefix - for descending).", orderable.join(", ")),
        "schema": {"type": "string"}}));
    params.push(json!({"in": "query", "name": "page", "required": false,
        "description": "A page number within the paginated result set.", "schema": {"type": "integer"}}));
    params.push(json!({"in": "query", "name": "page_size", "required": false,
        "description": "Number of results to return per page (max 1000).", "schema": {"type": "integer"}}));
    let searchable: Vec<&str> = spec.search.iter().map(|(n, _)| *n).collect();
    if !searchable.is_empty() {
        params.push(json!({"in": "query", "name": "search", "required": false,
            "description": format!("A search term (matches {}).", searchable.join(", ")),
            "schema": {"type": "string"}}));
    }
    params.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    params
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn paginated(name: &str, schemas: &mut Map<String, Value>) -> String {
    let pname = format!("Paginated{name}List");
    schemas.insert(
        pname.clone(),
        json!({
            "type": "object",
            "required": ["count", "results"],
            "properties": {
                "count": {"type": "integer", "example": 123},
                "next": {"type": "string", "nullable": true, "format": "uri",
                         "example": "http://api.example.org/accounts/?page=4"},
                "previous": {"type": "string", "nullable": true, "format": "uri",
                             "example": "http://api.example.org/accounts/?page=2"},
                "results": {"type": "array", "items": schema_ref(name)}
            }
        }),
    );
    pname
}

fn content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

/// The OpenAPI 3.0.3 document of the given operations.
pub fn document(ops: &[Op]) -> Value {
    let mut comps: Components = Vec::new();
    let mut schemas = Map::new();
    let mut paths = Map::new();
    for op in ops {
        let mut o = Map::new();
        o.insert("operationId".into(), json!(op.operation_id));
        o.insert("summary".into(), json!(op.summary));
        let tag = op
            .path
            .trim_start_matches("/api/")
            .split('/')
            .next()
            .unwrap_or("api");
        o.insert("tags".into(), json!([tag]));
        let mut params = path_params(op.path);
        if let Some(body) = op.body {
            let name = body(&mut comps);
            let media = if op.multipart {
                json!({"multipart/form-data": {"schema": schema_ref(&name)}})
            } else {
                json!({
                    "application/json": {"schema": schema_ref(&name)},
                    "application/x-www-form-urlencoded": {"schema": schema_ref(&name)},
                    "multipart/form-data": {"schema": schema_ref(&name)}
                })
            };
            o.insert(
                "requestBody".into(),
                json!({"content": media, "required": true}),
            );
        }
        let responses = match op.reply {
            Reply::Ok(f) => {
                json!({"200": {"description": "", "content": content(schema_ref(&f(&mut comps)))}})
            }
            Reply::Created(f) => {
                json!({"201": {"description": "", "content": content(schema_ref(&f(&mut comps)))}})
            }
            Reply::Accepted(f) => {
                json!({"202": {"description": "", "content": content(schema_ref(&f(&mut comps)))}})
            }
            Reply::Array(f) => {
                json!({"200": {"description": "", "content": content(json!({"type": "array", "items": schema_ref(&f(&mut comps))}))}})
            }
            Reply::List(f, spec) => {
                params.extend(list_params(spec));
                let name = f(&mut comps);
                let schema = match spec.shape {
                    Shape::Envelope => schema_ref(&paginated(&name, &mut schemas)),
                    Shape::BareArray => json!({"type": "array", "items": schema_ref(&name)}),
                };
                json!({"200": {"description": "", "content": content(schema)}})
            }
            Reply::NoContent => json!({"204": {"description": "No response body"}}),
            Reply::Any => {
                json!({"200": {"description": "", "content": content(json!({"type": "object"}))}})
            }
        };
        if !params.is_empty() {
            o.insert("parameters".into(), Value::Array(params));
        }
        o.insert("responses".into(), responses);
        if !op.public {
            o.insert("security".into(), json!([{"jwtAuth": []}]));
        }
        let entry = paths
            .entry(op.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(op.method.to_ascii_lowercase(), Value::Object(o));
        }
    }
    let mut seen = BTreeSet::new();
    for (name, schema) in comps {
        if seen.insert(name.clone()) {
            schemas.insert(name, serde_json::to_value(schema).unwrap_or(Value::Null));
        }
    }
    let mut sorted: Vec<(String, Value)> = schemas.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let doc = json!({
        "openapi": "3.0.3",
        "info": {
            "title": "MOJO API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Physical server lifecycle: discovery, registration, inventory, pools, firmware and OS deployment."
        },
        "paths": paths,
        "components": {
            "schemas": Map::from_iter(sorted),
            "securitySchemes": {"jwtAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
        }
    });
    to_openapi_30(doc)
}

/// Turns an OpenAPI 3.1 document (as utoipa 5 writes its schemas) into valid 3.0.3:
/// `type: [T, "null"]` becomes `nullable: true`, a `$ref` with siblings is wrapped in `allOf`,
/// `examples` becomes `example`, numeric `exclusiveMinimum/Maximum` take the boolean form,
/// and 3.1-only keywords are dropped.
pub fn to_openapi_30(mut doc: Value) -> Value {
    convert_node(&mut doc);
    if let Value::Object(m) = &mut doc {
        m.insert("openapi".into(), json!("3.0.3"));
    }
    doc
}

const DROPPED_31: &[&str] = &[
    "$schema",
    "$id",
    "$defs",
    "$anchor",
    "$dynamicRef",
    "$dynamicAnchor",
    "$comment",
    "const",
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
    "dependentRequired",
    "dependentSchemas",
    "if",
    "then",
    "else",
    "prefixItems",
    "unevaluatedItems",
    "unevaluatedProperties",
    "propertyNames",
    "patternProperties",
];

fn convert_node(v: &mut Value) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(convert_node),
        Value::Object(m) => {
            convert_schema_object(m);
            for (_, child) in m.iter_mut() {
                convert_node(child);
            }
        }
        _ => {}
    }
}

fn convert_schema_object(m: &mut Map<String, Value>) {
    // type: ["string", "null"] -> type: string, nullable: true
    if let Some(Value::Array(types)) = m.get("type").cloned() {
        let non_null: Vec<Value> = types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .cloned()
            .collect();
        let nullable = non_null.len() != types.len();
        match non_null.len() {
            0 => {
                m.remove("type");
            }
            1 => {
                m.insert("type".into(), non_null[0].clone());
            }
            _ => {
                m.remove("type");
                let alts: Vec<Value> = non_null.into_iter().map(|t| json!({"type": t})).collect();
                m.insert("anyOf".into(), Value::Array(alts));
            }
        }
        if nullable {
            m.insert("nullable".into(), json!(true));
        }
    }
    // oneOf/anyOf with a {"type":"null"} member -> nullable on the remaining one
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(alts)) = m.get(key).cloned() {
            let non_null: Vec<Value> = alts
                .iter()
                .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
                .cloned()
                .collect();
            if non_null.len() != alts.len() {
                m.insert("nullable".into(), json!(true));
                if non_null.len() == 1 {
                    m.remove(key);
                    m.insert("allOf".into(), Value::Array(non_null));
                } else {
                    m.insert(key.into(), Value::Array(non_null));
                }
            }
        }
    }
    // $ref with siblings -> allOf
    if m.contains_key("$ref") && m.len() > 1 {
        if let Some(r) = m.remove("$ref") {
            let mut all = vec![json!({"$ref": r})];
            if let Some(Value::Array(existing)) = m.remove("allOf") {
                all.extend(existing);
            }
            m.insert("allOf".into(), Value::Array(all));
        }
    }
    // examples: [x, ...] -> example: x (schema objects; media-type `examples` maps are kept)
    if let Some(Value::Array(ex)) = m.get("examples").cloned() {
        m.remove("examples");
        if let Some(first) = ex.into_iter().next() {
            m.insert("example".into(), first);
        }
    }
    for (key, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if let Some(n) = m.get(key).filter(|v| v.is_number()).cloned() {
            m.insert(bound.into(), n);
            m.insert(key.into(), json!(true));
        }
    }
    for k in DROPPED_31 {
        m.remove(*k);
    }
}

/// Query of `/api/schema/`.
#[derive(Debug, Deserialize)]
struct SchemaQuery {
    format: Option<String>,
}

/// YAML by default, JSON on `?format=json` or a JSON `Accept`, as drf-spectacular answers.
async fn schema(
    State(doc): State<std::sync::Arc<Value>>,
    headers: HeaderMap,
    Query(q): Query<SchemaQuery>,
) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let json_wanted = match q.format.as_deref() {
        Some("json") => Some("application/vnd.oai.openapi+json"),
        Some("yaml") => None,
        _ if accept.contains("application/vnd.oai.openapi+json") => {
            Some("application/vnd.oai.openapi+json")
        }
        _ if accept.contains("application/json") => Some("application/json"),
        _ => None,
    };
    match json_wanted {
        Some(ct) => (
            [
                (header::CONTENT_TYPE, ct),
                (
                    header::CONTENT_DISPOSITION,
                    "inline; filename=\"MOJO API.json\"",
                ),
            ],
            serde_json::to_string_pretty(&*doc).unwrap_or_default(),
        )
            .into_response(),
        None => (
            [
                (
                    header::CONTENT_TYPE,
                    "application/vnd.oai.openapi; charset=utf-8",
                ),
                (
                    header::CONTENT_DISPOSITION,
                    "inline; filename=\"MOJO API.yaml\"",
                ),
            ],
            to_yaml(&doc),
        )
            .into_response(),
    }
}

/// The document as YAML.
pub fn to_yaml(doc: &Value) -> String {
    serde_norway::to_string(doc).unwrap_or_default()
}

async fn redoc() -> Html<&'static str> {
    Html(REDOC_PAGE)
}

const REDOC_PAGE: &str = r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>MOJO API - ReDoc</title></head>
<body><div id="redoc"></div>
<p>ReDoc assets are not bundled yet; use the Swagger UI at /api/schema/swagger-ui/.</p>
</body></html>"#;

/// Routes of the schema and the offline documentation UIs.
pub fn docs_router(doc: Value) -> Router<AppState> {
    let swagger: Router<AppState> = utoipa_swagger_ui::SwaggerUi::new("/api/schema/swagger-ui")
        .external_url_unchecked("/api/schema/swagger-ui/openapi.json", doc.clone())
        .into();
    let doc = std::sync::Arc::new(doc);
    let schema_routes: Router<AppState> = Router::new()
        .route("/api/schema/", get(schema))
        .with_state(doc);
    schema_routes
        .merge(swagger)
        .route("/api/schema/redoc/", get(redoc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_31_constructs() {
        let doc = json!({
            "openapi": "3.1.0",
            "components": {"schemas": {"A": {
                "type": "object",
                "properties": {
                    "a": {"type": ["string", "null"]},
                    "b": {"$ref": "#/components/schemas/B", "description": "x"},
                    "c": {"type": "integer", "exclusiveMinimum": 0, "examples": [5]},
                    "d": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/B"}]}
                }
            }}}
        });
        let out = to_openapi_30(doc);
        let p = &out["components"]["schemas"]["A"]["properties"];
        assert_eq!(out["openapi"], "3.0.3");
        assert_eq!(p["a"], json!({"type": "string", "nullable": true}));
        assert_eq!(
            p["b"],
            json!({"allOf": [{"$ref": "#/components/schemas/B"}], "description": "x"})
        );
        assert_eq!(
            p["c"],
            json!({"type": "integer", "minimum": 0, "exclusiveMinimum": true, "example": 5})
        );
        assert_eq!(
            p["d"],
            json!({"allOf": [{"$ref": "#/components/schemas/B"}], "nullable": true})
        );
    }
}
