//! The OpenAPI 3.0.3 document, built from the route registry, and the offline docs UIs
//! (Swagger UI and ReDoc, both served from the binary).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::error::ApiError;
use super::list::{FilterKind, ListSpec, Shape, MAX_PAGE_SIZE};
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
pub const DOC_PATHS: &[&str] = &[SCHEMA_PATH, SWAGGER_PATH, REDOC_PATH];

/// The schema, as drf-spectacular's `SpectacularAPIView`.
pub const SCHEMA_PATH: &str = "/api/schema/";
/// Swagger UI.
pub const SWAGGER_PATH: &str = "/api/schema/swagger-ui/";
/// ReDoc.
pub const REDOC_PATH: &str = "/api/schema/redoc/";
/// What both UIs load.
const SCHEMA_JSON_URL: &str = "/api/schema/?format=json";
/// `info.title`, also the download file name.
const TITLE: &str = "MOJO API";

fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter(|s| s.starts_with('{') && s.ends_with('}'))
        .map(|s| {
            json!({"in": "path", "name": &s[1..s.len() - 1], "required": true,
                   "schema": {"type": "integer"}})
        })
        .collect()
}

/// Query parameters of a list operation, straight from its [`ListSpec`], so the schema cannot
/// drift from what the list engine accepts.
fn list_params(spec: &ListSpec) -> Vec<Value> {
    let mut params = Vec::new();
    for f in spec.filters {
        let schema = match f.kind {
            FilterKind::Exact => json!({"type": "string"}),
            FilterKind::Choice(c) => json!({"type": "string", "enum": c}),
            FilterKind::Number => json!({"type": "integer"}),
            FilterKind::Bool => json!({"type": "boolean"}),
            FilterKind::ForeignKey { nullable: true, .. } => json!({"type": "string"}),
            FilterKind::ForeignKey { .. } => json!({"type": "integer"}),
        };
        let mut param =
            json!({"in": "query", "name": f.param, "required": false, "schema": schema});
        if let FilterKind::ForeignKey { nullable: true, .. } = f.kind {
            param["description"] = json!("An id, or `null` for none.");
        }
        params.push(param);
    }
    let orderable: Vec<&str> = spec.ordering.iter().map(|(n, _)| *n).collect();
    params.push(json!({"in": "query", "name": "ordering", "required": false,
        "description": format!("Which field to use when ordering the results: {} (prefix - for descending; comma-separate several).", orderable.join(", ")),
        "schema": {"type": "string"}}));
    params.push(json!({"in": "query", "name": "page", "required": false,
        "description": "A page number within the paginated result set.", "schema": {"type": "integer"}}));
    params.push(
        json!({"in": "query", "name": "page_size", "required": false,
        "description": format!("Number of results to return per page (at most {MAX_PAGE_SIZE})."),
        "schema": {"type": "integer"}}),
    );
    let searchable: Vec<&str> = spec.search.iter().map(|(n, _)| *n).collect();
    if !searchable.is_empty() {
        params.push(json!({"in": "query", "name": "search", "required": false,
            "description": format!("A search term (matches {}).", searchable.join(", ")),
            "schema": {"type": "string"}}));
    }
    params
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// DRF's `PageNumberPagination.get_paginated_response_schema`.
fn paginated(name: &str) -> Value {
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
    })
}

fn content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

/// Which side of the wire a component describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// An answer: `writeOnly` properties left out.
    Response,
    /// A create/update body: `readOnly` properties left out (`<X>Request`).
    Request,
    /// A PATCH body: as `Request`, nothing required (`Patched<X>Request`).
    Patched,
}

/// drf-spectacular's `COMPONENT_SPLIT_REQUEST`: one component per side of the wire, so that
/// client generators that ignore `readOnly`/`writeOnly` (openapi-python-client among them)
/// neither demand read-only fields in bodies nor expect write-only ones in answers.
struct Split {
    /// Every component as utoipa wrote it.
    raw: Map<String, Value>,
    /// The emitted components.
    out: BTreeMap<String, Value>,
}

impl Split {
    fn new(comps: Components) -> Split {
        let mut raw = Map::new();
        for (name, schema) in comps {
            if !raw.contains_key(&name) {
                raw.insert(name, serde_json::to_value(schema).unwrap_or(Value::Null));
            }
        }
        Split {
            raw,
            out: BTreeMap::new(),
        }
    }

    /// Emits the `side` variant of component `name` (and what it references); returns its name.
    fn variant(&mut self, name: &str, side: Side) -> String {
        let Some(mut schema) = self.raw.get(name).cloned() else {
            return name.to_string();
        };
        // Enums and other leaf schemas are the same on both sides: shared, as spectacular does.
        let splits = schema.get("properties").is_some() || contains_ref(&schema);
        let request_name = if name.ends_with("Request") {
            name.to_string()
        } else {
            format!("{name}Request")
        };
        let emitted = match (side, splits) {
            (Side::Response, _) | (_, false) => name.to_string(),
            (Side::Request, true) => request_name,
            (Side::Patched, true) => format!("Patched{request_name}"),
        };
        if self.out.contains_key(&emitted) {
            return emitted;
        }
        // Placeholder first: recursive components terminate.
        self.out.insert(emitted.clone(), Value::Null);
        if splits {
            let hidden = if side == Side::Response {
                "writeOnly"
            } else {
                "readOnly"
            };
            strip_properties(&mut schema, hidden);
            if side == Side::Patched {
                if let Value::Object(m) = &mut schema {
                    m.shift_remove("required");
                }
            }
            let nested = if side == Side::Response {
                Side::Response
            } else {
                Side::Request
            };
            self.rewrite_refs(&mut schema, nested);
        }
        self.out.insert(emitted.clone(), schema);
        emitted
    }

    fn rewrite_refs(&mut self, v: &mut Value, side: Side) {
        match v {
            Value::Object(m) => {
                let target = m
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                    .map(str::to_string);
                if let Some(target) = target {
                    let name = self.variant(&target, side);
                    m.insert("$ref".into(), json!(format!("#/components/schemas/{name}")));
                }
                for (_, child) in m.iter_mut() {
                    self.rewrite_refs(child, side);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.rewrite_refs(i, side)),
            _ => {}
        }
    }
}

fn contains_ref(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.contains_key("$ref") || m.values().any(contains_ref),
        Value::Array(items) => items.iter().any(contains_ref),
        _ => false,
    }
}

/// Drops the top-level properties flagged `flag` (`readOnly`/`writeOnly`) and their `required` entries.
fn strip_properties(schema: &mut Value, flag: &str) {
    let Some(Value::Object(props)) = schema.get_mut("properties") else {
        return;
    };
    let hidden: Vec<String> = props
        .iter()
        .filter(|(_, p)| p.get(flag) == Some(&Value::Bool(true)))
        .map(|(k, _)| k.clone())
        .collect();
    for k in &hidden {
        props.shift_remove(k);
    }
    if let Some(Value::Array(required)) = schema.get_mut("required") {
        required.retain(|r| !r.as_str().is_some_and(|r| hidden.iter().any(|h| h == r)));
        if required.is_empty() {
            if let Value::Object(m) = schema {
                m.shift_remove("required");
            }
        }
    }
}

/// The OpenAPI 3.0.3 document of the given operations (the output of [`to_openapi_30`]).
pub fn document(ops: &[Op]) -> Value {
    let mut comps: Components = Vec::new();
    let mut paths = Map::new();
    // Operation metadata holds schema functions; collect every component first.
    let mut bodies = Vec::with_capacity(ops.len());
    let mut replies = Vec::with_capacity(ops.len());
    for op in ops {
        bodies.push(op.body.map(|f| f(&mut comps)));
        replies.push(match op.reply {
            Reply::Ok(f)
            | Reply::Created(f)
            | Reply::Accepted(f)
            | Reply::Array(f)
            | Reply::List(f, _) => Some(f(&mut comps)),
            Reply::NoContent | Reply::Any => None,
        });
    }
    let mut split = Split::new(comps);
    let mut extra = BTreeMap::new();
    for ((op, body), reply) in ops.iter().zip(bodies).zip(replies) {
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
        if let Some(name) = body {
            let patch = op.method == "PATCH";
            let name = split.variant(&name, if patch { Side::Patched } else { Side::Request });
            let media = if op.multipart {
                json!({"multipart/form-data": {"schema": schema_ref(&name)}})
            } else {
                json!({
                    "application/json": {"schema": schema_ref(&name)},
                    "application/x-www-form-urlencoded": {"schema": schema_ref(&name)},
                    "multipart/form-data": {"schema": schema_ref(&name)}
                })
            };
            let mut request = json!({"content": media});
            if !patch {
                request["required"] = json!(true);
            }
            o.insert("requestBody".into(), request);
        }
        let reply_name = reply
            .map(|n| split.variant(&n, Side::Response))
            .unwrap_or_default();
        let responses = match op.reply {
            Reply::Ok(_) => {
                json!({"200": {"description": "", "content": content(schema_ref(&reply_name))}})
            }
            Reply::Created(_) => {
                json!({"201": {"description": "", "content": content(schema_ref(&reply_name))}})
            }
            Reply::Accepted(_) => {
                json!({"202": {"description": "", "content": content(schema_ref(&reply_name))}})
            }
            Reply::Array(_) => {
                json!({"200": {"description": "", "content": content(json!({"type": "array", "items": schema_ref(&reply_name)}))}})
            }
            Reply::List(_, spec) => {
                params.extend(list_params(spec));
                let schema = match spec.shape {
                    Shape::Envelope => {
                        let page = format!("Paginated{reply_name}List");
                        extra.insert(page.clone(), paginated(&reply_name));
                        schema_ref(&page)
                    }
                    Shape::BareArray => json!({"type": "array", "items": schema_ref(&reply_name)}),
                };
                json!({"200": {"description": "", "content": content(schema)}})
            }
            Reply::NoContent => json!({"204": {"description": "No response body"}}),
            Reply::Any => {
                json!({"200": {"description": "", "content": content(json!({"type": "object"}))}})
            }
        };
        // drf-spectacular's SORT_OPERATION_PARAMETERS.
        params.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
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
    let mut schemas = split.out;
    schemas.extend(extra);
    let doc = json!({
        "openapi": "3.0.3",
        "info": {
            "title": TITLE,
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Physical server lifecycle: discovery, registration, inventory, pools, firmware and OS deployment."
        },
        "paths": paths,
        "components": {
            "schemas": Map::from_iter(schemas),
            "securitySchemes": {"jwtAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
        }
    });
    to_openapi_30(doc)
}

/// Turns an OpenAPI 3.1 document (as utoipa 5 writes its schemas) into valid 3.0.3. In every
/// schema (components, parameters, media types, headers, and nested in properties, items,
/// additionalProperties, allOf/anyOf/oneOf, not):
/// `type: [T, "null"]` becomes `nullable: true` (several types: `anyOf`), `type: "null"` and
/// `oneOf/anyOf` null members become `nullable`, a `$ref` with siblings is wrapped in `allOf`,
/// `examples` becomes `example`, `const` becomes a one-value `enum`, numeric
/// `exclusiveMinimum/Maximum` take the boolean form, `contentEncoding: base64` and
/// `contentMediaType` become `format: byte`/`binary`, boolean schemas become objects, and the
/// other 3.1-only keywords are dropped. Non-schema parts (e.g. media-type `examples` maps) are
/// left alone.
pub fn to_openapi_30(mut doc: Value) -> Value {
    if let Value::Object(root) = &mut doc {
        root.insert("openapi".into(), json!("3.0.3"));
        root.shift_remove("webhooks");
        root.shift_remove("jsonSchemaDialect");
        if !root.contains_key("paths") {
            root.insert("paths".into(), json!({}));
        }
        if let Some(Value::Object(info)) = root.get_mut("info") {
            info.shift_remove("summary");
            if let Some(Value::Object(license)) = info.get_mut("license") {
                license.shift_remove("identifier");
            }
        }
    }
    walk_document(&mut doc);
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
    "$vocabulary",
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
    "minContains",
    "maxContains",
    "contains",
];

/// Finds the schemas of a document: `components.schemas` entries and every `schema` value.
fn walk_document(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (key, child) in m.iter_mut() {
                match key.as_str() {
                    "schema" => convert_schema(child),
                    "schemas" => {
                        if let Value::Object(named) = child {
                            named.values_mut().for_each(convert_schema);
                        }
                    }
                    // Literal data, not document structure.
                    "example" | "examples" | "default" => {}
                    _ => walk_document(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(walk_document),
        _ => {}
    }
}

fn is_null_type(v: &Value) -> bool {
    match v.get("type") {
        Some(Value::String(t)) => t == "null",
        Some(Value::Array(ts)) => ts.iter().all(|t| t.as_str() == Some("null")),
        _ => false,
    }
}

/// Converts one schema and, recursively, its subschemas.
fn convert_schema(v: &mut Value) {
    // 3.1 boolean schemas.
    match v {
        Value::Bool(true) => *v = json!({}),
        Value::Bool(false) => *v = json!({"not": {}}),
        _ => {}
    }
    let Value::Object(m) = v else {
        return;
    };
    // type: ["string", "null"] -> type: string, nullable: true; type: "null" -> nullable, enum [null]
    match m.get("type").cloned() {
        Some(Value::Array(types)) => {
            let non_null: Vec<Value> = types
                .iter()
                .filter(|t| t.as_str() != Some("null"))
                .cloned()
                .collect();
            let nullable = non_null.len() != types.len();
            match non_null.len() {
                0 => {
                    m.shift_remove("type");
                    m.insert("enum".into(), json!([null]));
                }
                1 => {
                    // Replaced in place: the key keeps its position.
                    m.insert("type".into(), non_null[0].clone());
                }
                _ => {
                    m.shift_remove("type");
                    let alts: Vec<Value> =
                        non_null.into_iter().map(|t| json!({"type": t})).collect();
                    m.insert("anyOf".into(), Value::Array(alts));
                }
            }
            if nullable {
                m.insert("nullable".into(), json!(true));
            }
        }
        Some(Value::String(t)) if t == "null" => {
            m.shift_remove("type");
            m.insert("nullable".into(), json!(true));
            m.insert("enum".into(), json!([null]));
        }
        _ => {}
    }
    // oneOf/anyOf with a {"type": "null"} member -> nullable on the rest
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(alts)) = m.get(key).cloned() {
            let non_null: Vec<Value> = alts.iter().filter(|a| !is_null_type(a)).cloned().collect();
            if non_null.len() != alts.len() {
                m.insert("nullable".into(), json!(true));
                m.shift_remove(key);
                match non_null.len() {
                    0 => {
                        m.insert("enum".into(), json!([null]));
                    }
                    1 => {
                        let mut all = non_null;
                        if let Some(Value::Array(existing)) = m.shift_remove("allOf") {
                            all.extend(existing);
                        }
                        m.insert("allOf".into(), Value::Array(all));
                    }
                    _ => {
                        m.insert(key.into(), Value::Array(non_null));
                    }
                }
            }
        }
    }
    // A null in an enum needs `nullable` in 3.0.
    if let Some(Value::Array(values)) = m.get("enum") {
        if values.iter().any(Value::is_null) {
            m.insert("nullable".into(), json!(true));
        }
    }
    // const: x -> enum: [x]
    if let Some(c) = m.shift_remove("const") {
        if !m.contains_key("enum") {
            if c.is_null() {
                m.insert("nullable".into(), json!(true));
            }
            m.insert("enum".into(), json!([c]));
        }
    }
    // $ref with siblings -> allOf (3.0 ignores a $ref's siblings)
    if m.contains_key("$ref") && m.len() > 1 {
        if let Some(r) = m.shift_remove("$ref") {
            let mut all = vec![json!({"$ref": r})];
            if let Some(Value::Array(existing)) = m.shift_remove("allOf") {
                all.extend(existing);
            }
            m.insert("allOf".into(), Value::Array(all));
        }
    }
    // examples: [x, ...] -> example: x
    if let Some(Value::Array(ex)) = m.shift_remove("examples") {
        if let (Some(first), false) = (ex.into_iter().next(), m.contains_key("example")) {
            m.insert("example".into(), first);
        }
    }
    // exclusiveMinimum: 0 -> minimum: 0, exclusiveMinimum: true
    for (key, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if let Some(n) = m.get(key).filter(|v| v.is_number()).cloned() {
            m.insert(bound.into(), n);
            m.insert(key.into(), json!(true));
        }
    }
    // Binary content: 3.0 says it with `format`.
    if !m.contains_key("format") && m.get("type").and_then(Value::as_str) == Some("string") {
        if m.get("contentEncoding").and_then(Value::as_str) == Some("base64") {
            m.insert("format".into(), json!("byte"));
        } else if m.contains_key("contentMediaType") {
            m.insert("format".into(), json!("binary"));
        }
    }
    for k in DROPPED_31 {
        m.shift_remove(*k);
    }
    // 3.0 requires `items` on arrays (3.1 tuples may have had only prefixItems).
    if m.get("type").and_then(Value::as_str) == Some("array") && !m.contains_key("items") {
        m.insert("items".into(), json!({}));
    }
    // Subschemas.
    if let Some(Value::Object(props)) = m.get_mut("properties") {
        props.values_mut().for_each(convert_schema);
    }
    if let Some(items) = m.get_mut("items") {
        if let Value::Array(tuple) = items {
            // Old tuple form: any of the members.
            let alts = std::mem::take(tuple);
            *items = json!({"anyOf": alts});
        }
        convert_schema(items);
    }
    if let Some(extra) = m.get_mut("additionalProperties") {
        if extra.is_object() {
            convert_schema(extra);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(alts)) = m.get_mut(key) {
            alts.iter_mut().for_each(convert_schema);
        }
    }
    if let Some(not) = m.get_mut("not") {
        convert_schema(not);
    }
}

/// The served renderings, made once.
struct Rendered {
    yaml: String,
    json: String,
}

/// The document as YAML (what `/api/schema/` answers by default and `openapi/schema.yaml` holds).
pub fn to_yaml(doc: &Value) -> String {
    serde_norway::to_string(doc).unwrap_or_default()
}

/// The document as JSON indented by 4 spaces, as drf-spectacular's JSON renderer writes it.
pub fn to_json(doc: &Value) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    match doc.serialize(&mut ser) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// How the schema is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rendering {
    /// `application/vnd.oai.openapi` (default).
    OaiYaml,
    /// `application/yaml`.
    Yaml,
    /// `application/vnd.oai.openapi+json` (`?format=json`).
    OaiJson,
    /// `application/json`.
    Json,
}

impl Rendering {
    fn content_type(self) -> &'static str {
        match self {
            Rendering::OaiYaml => "application/vnd.oai.openapi; charset=utf-8",
            Rendering::Yaml => "application/yaml; charset=utf-8",
            Rendering::OaiJson => "application/vnd.oai.openapi+json",
            Rendering::Json => "application/json",
        }
    }
}

/// DRF's content negotiation over drf-spectacular's renderers: `?format=` wins; otherwise the
/// most specific `Accept` entries are tried first, each against the renderers in order.
/// `None`: nothing acceptable (406).
fn negotiate(format: Option<&str>, accept: &str) -> Option<Rendering> {
    const RENDERERS: &[(&str, Rendering)] = &[
        ("application/vnd.oai.openapi", Rendering::OaiYaml),
        ("application/yaml", Rendering::Yaml),
        ("application/vnd.oai.openapi+json", Rendering::OaiJson),
        ("application/json", Rendering::Json),
    ];
    if let Some(format) = format {
        return match format {
            "yaml" => Some(Rendering::OaiYaml),
            "json" => Some(Rendering::OaiJson),
            _ => None,
        };
    }
    let mut wanted: Vec<(u8, &str)> = accept
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let media = pieces.next()?.trim();
            if media.is_empty() {
                return None;
            }
            let has_params = pieces.any(|p| !p.trim().starts_with("q="));
            let precedence = match media {
                "*/*" => 0,
                m if m.ends_with("/*") => 1,
                _ if has_params => 3,
                _ => 2,
            };
            Some((precedence, media))
        })
        .collect();
    if wanted.is_empty() {
        return Some(Rendering::OaiYaml);
    }
    wanted.sort_by_key(|w| std::cmp::Reverse(w.0));
    for (_, media) in wanted {
        for (ty, rendering) in RENDERERS {
            let matches = media == "*/*"
                || media.eq_ignore_ascii_case(ty)
                || media
                    .strip_suffix("/*")
                    .is_some_and(|major| ty.split('/').next() == Some(major));
            if matches {
                return Some(*rendering);
            }
        }
    }
    None
}

/// Query of `/api/schema/`.
#[derive(Debug, Deserialize)]
struct SchemaQuery {
    format: Option<String>,
}

/// YAML by default, JSON on `?format=json` or a JSON `Accept`, as drf-spectacular answers.
async fn schema(
    State(rendered): State<Arc<Rendered>>,
    headers: HeaderMap,
    Query(q): Query<SchemaQuery>,
) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(rendering) = negotiate(q.format.as_deref(), accept) else {
        if q.format.is_some() {
            return ApiError::NotFound("Not found.").into_response();
        }
        return (
            StatusCode::NOT_ACCEPTABLE,
            axum::Json(json!({"detail": "Could not satisfy the request Accept header."})),
        )
            .into_response();
    };
    let (body, extension) = match rendering {
        Rendering::OaiYaml | Rendering::Yaml => (rendered.yaml.clone(), "yaml"),
        Rendering::OaiJson | Rendering::Json => (rendered.json.clone(), "json"),
    };
    let disposition = format!("inline; filename=\"{TITLE}.{extension}\"");
    (
        [
            (header::CONTENT_TYPE, rendering.content_type().to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// The ReDoc page: its standalone bundle (from the `aide` crate) inlined, loading the schema.
fn redoc_page() -> Bytes {
    let html = aide::redoc::Redoc::new(SCHEMA_JSON_URL)
        .with_title(&format!("{TITLE} - ReDoc"))
        .html();
    Bytes::from(html)
}

/// Swagger UI settings: the schema URL, the bearer token kept across reloads, and no call to
/// the online validator (the UI must work air-gapped).
fn swagger_config() -> utoipa_swagger_ui::Config<'static> {
    utoipa_swagger_ui::Config::new([SCHEMA_JSON_URL])
        .persist_authorization(true)
        .validator_url("none")
        .display_operation_id(true)
        .deep_linking(true)
        .filter(true)
}

/// Swagger UI's Content-Security-Policy: everything from this server, so that nothing in the
/// page can reach out to the internet (air-gapped data centres; no silent CDN dependency).
const SWAGGER_CSP: &str =
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; \
    base-uri 'self'; form-action 'self'; frame-ancestors 'self'";

/// ReDoc's: its bundle is inline and compiles validators at run time; its search runs in a
/// blob: worker. The sidebar's "by Redocly" logo points at a CDN: the policy keeps the browser
/// from fetching it.
const REDOC_CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
    connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; \
    form-action 'self'; frame-ancestors 'self'";

fn with_csp(policy: &'static str) -> impl Fn(Response) -> std::future::Ready<Response> + Clone {
    move |mut resp: Response| {
        resp.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static(policy),
        );
        std::future::ready(resp)
    }
}

/// Routes of the schema and the offline documentation UIs (no authentication needed).
pub fn docs_router(doc: Value) -> Router<AppState> {
    let rendered = Arc::new(Rendered {
        yaml: to_yaml(&doc),
        json: to_json(&doc),
    });
    let swagger: Router<AppState> =
        utoipa_swagger_ui::SwaggerUi::new(SWAGGER_PATH.trim_end_matches('/'))
            .config(swagger_config())
            .into();
    let page = redoc_page();
    let redoc: Router<AppState> = Router::new().route(
        REDOC_PATH,
        get(move || {
            let page = page.clone();
            async move { Html(page) }
        }),
    );
    let schema_routes: Router<AppState> = Router::new()
        .route(SCHEMA_PATH, get(schema))
        .with_state(rendered);
    schema_routes
        .merge(swagger.layer(axum::middleware::map_response(with_csp(SWAGGER_CSP))))
        .merge(redoc.layer(axum::middleware::map_response(with_csp(REDOC_CSP))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_doc(schemas: Value) -> Value {
        json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {},
               "components": {"schemas": schemas}})
    }

    fn convert_one(schema: Value) -> Value {
        to_openapi_30(schema_doc(json!({"A": schema})))["components"]["schemas"]["A"].clone()
    }

    const B: &str = "#/components/schemas/B";

    #[test]
    fn nullable_types() {
        assert_eq!(
            convert_one(json!({"type": ["string", "null"], "format": "date-time"})),
            json!({"type": "string", "format": "date-time", "nullable": true})
        );
        assert_eq!(
            convert_one(json!({"type": ["null", "integer"]})),
            json!({"type": "integer", "nullable": true})
        );
        assert_eq!(
            convert_one(json!({"type": ["string", "integer", "null"]})),
            json!({"nullable": true, "anyOf": [{"type": "string"}, {"type": "integer"}]})
        );
        assert_eq!(
            convert_one(json!({"type": ["string", "integer"]})),
            json!({"anyOf": [{"type": "string"}, {"type": "integer"}]})
        );
        assert_eq!(
            convert_one(json!({"type": "null"})),
            json!({"nullable": true, "enum": [null]})
        );
        assert_eq!(
            convert_one(json!({"type": ["null"]})),
            json!({"enum": [null], "nullable": true})
        );
        assert_eq!(
            convert_one(json!({"type": "string", "enum": ["a", null]})),
            json!({"type": "string", "enum": ["a", null], "nullable": true})
        );
    }

    #[test]
    fn null_alternatives() {
        assert_eq!(
            convert_one(json!({"oneOf": [{"type": "null"}, {"$ref": B}]})),
            json!({"nullable": true, "allOf": [{"$ref": B}]})
        );
        assert_eq!(
            convert_one(json!({"anyOf": [{"$ref": B}, {"type": "null"}], "description": "d"})),
            json!({"description": "d", "nullable": true, "allOf": [{"$ref": B}]})
        );
        assert_eq!(
            convert_one(
                json!({"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]})
            ),
            json!({"nullable": true, "oneOf": [{"type": "string"}, {"type": "integer"}]})
        );
    }

    #[test]
    fn ref_with_siblings_becomes_all_of() {
        assert_eq!(
            convert_one(json!({"$ref": B, "description": "x", "readOnly": true})),
            json!({"description": "x", "readOnly": true, "allOf": [{"$ref": B}]})
        );
        // A bare $ref is left alone.
        assert_eq!(convert_one(json!({"$ref": B})), json!({"$ref": B}));
    }

    #[test]
    fn examples_const_and_bounds() {
        assert_eq!(
            convert_one(json!({"type": "integer", "examples": [5, 6]})),
            json!({"type": "integer", "example": 5})
        );
        assert_eq!(
            convert_one(json!({"type": "integer", "examples": []})),
            json!({"type": "integer"})
        );
        assert_eq!(
            convert_one(json!({"type": "string", "const": "x"})),
            json!({"type": "string", "enum": ["x"]})
        );
        assert_eq!(
            convert_one(json!({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10.5})),
            json!({"type": "number", "exclusiveMinimum": true, "exclusiveMaximum": true,
                   "minimum": 0, "maximum": 10.5})
        );
        // The 3.0 boolean form passes through.
        assert_eq!(
            convert_one(json!({"type": "integer", "minimum": 1, "exclusiveMinimum": true})),
            json!({"type": "integer", "minimum": 1, "exclusiveMinimum": true})
        );
    }

    #[test]
    fn drops_31_keywords_and_maps_content() {
        let out = convert_one(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "x", "$comment": "c",
            "$defs": {"X": {}}, "type": "object", "if": {}, "then": {}, "else": {},
            "unevaluatedProperties": false, "patternProperties": {"^a": {}},
            "propertyNames": {"pattern": "^a"}, "dependentRequired": {"a": ["b"]},
            "properties": {
                "file": {"type": "string", "contentMediaType": "application/octet-stream"},
                "blob": {"type": "string", "contentEncoding": "base64"},
                "pair": {"type": "array", "prefixItems": [{"type": "string"}]}
            }
        }));
        assert_eq!(
            out,
            json!({"type": "object", "properties": {
                "file": {"type": "string", "format": "binary"},
                "blob": {"type": "string", "format": "byte"},
                "pair": {"type": "array", "items": {}}
            }})
        );
    }

    #[test]
    fn converts_nested_schemas() {
        let out = convert_one(json!({
            "type": "object",
            "properties": {
                "list": {"type": ["array", "null"], "items": {"type": ["integer", "null"]}},
                "map": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
                "deep": {"type": "object", "properties": {"x": {"$ref": B, "description": "d"}}},
                "alts": {"allOf": [{"type": ["string", "null"]}]},
                "neg": {"not": {"type": "null"}},
                "open": {"type": "object", "additionalProperties": true},
                "never": false
            }
        }));
        let p = &out["properties"];
        assert_eq!(
            p["list"],
            json!({"type": "array", "items": {"type": "integer", "nullable": true}, "nullable": true})
        );
        assert_eq!(
            p["map"]["additionalProperties"],
            json!({"type": "string", "nullable": true})
        );
        assert_eq!(
            p["deep"]["properties"]["x"],
            json!({"description": "d", "allOf": [{"$ref": B}]})
        );
        assert_eq!(
            p["alts"],
            json!({"allOf": [{"type": "string", "nullable": true}]})
        );
        assert_eq!(p["neg"], json!({"not": {"nullable": true, "enum": [null]}}));
        assert_eq!(p["open"]["additionalProperties"], json!(true));
        assert_eq!(p["never"], json!({"not": {}}));
    }

    #[test]
    fn converts_schemas_outside_components_only() {
        let doc = json!({
            "openapi": "3.1.0",
            "jsonSchemaDialect": "x",
            "webhooks": {},
            "info": {"title": "t", "version": "1", "summary": "s",
                     "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
            "paths": {"/a/": {"get": {
                "parameters": [{"in": "query", "name": "q", "schema": {"type": ["string", "null"]}}],
                "responses": {"200": {"description": "", "content": {"application/json": {
                    "schema": {"type": "array", "items": {"$ref": B, "description": "d"}},
                    "examples": {"one": {"value": {"type": ["kept", "null"], "const": 1}}}
                }}}}
            }}}
        });
        let out = to_openapi_30(doc);
        assert_eq!(out["openapi"], "3.0.3");
        assert!(out.get("webhooks").is_none() && out.get("jsonSchemaDialect").is_none());
        assert_eq!(
            out["info"],
            json!({"title": "t", "version": "1", "license": {"name": "Apache-2.0"}})
        );
        let get = &out["paths"]["/a/"]["get"];
        assert_eq!(
            get["parameters"][0]["schema"],
            json!({"type": "string", "nullable": true})
        );
        let media = &get["responses"]["200"]["content"]["application/json"];
        assert_eq!(
            media["schema"]["items"],
            json!({"description": "d", "allOf": [{"$ref": B}]})
        );
        // Media-type examples are data: untouched.
        assert_eq!(
            media["examples"]["one"]["value"],
            json!({"type": ["kept", "null"], "const": 1})
        );
        // A property named like a 3.1 keyword is a property, not a keyword.
        let props = convert_one(json!({"type": "object", "properties": {
            "if": {"type": "string"}, "const": {"type": "integer"}, "type": {"type": "string"}}}));
        assert_eq!(
            props["properties"],
            json!({"if": {"type": "string"}, "const": {"type": "integer"}, "type": {"type": "string"}})
        );
    }

    /// Every place a 3.0 document must not hold a 3.1 construct, as a list of JSON pointers.
    fn violations(v: &Value, at: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                match m.get("type") {
                    Some(Value::String(t)) if t == "null" => out.push(format!("{at}: type null")),
                    Some(Value::Array(_)) => out.push(format!("{at}: array type")),
                    _ => {}
                }
                if m.contains_key("$ref") && m.len() > 1 {
                    out.push(format!("{at}: $ref with siblings"));
                }
                for k in DROPPED_31.iter().chain(&["examples", "const"]) {
                    if m.contains_key(*k) && !at.ends_with("/properties") {
                        out.push(format!("{at}: {k}"));
                    }
                }
                for (k, child) in m {
                    violations(child, &format!("{at}/{k}"), out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    violations(child, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|c| refs(c, out));
            }
            Value::Array(items) => items.iter().for_each(|c| refs(c, out)),
            _ => {}
        }
    }

    #[test]
    fn served_document_is_valid_30() {
        let ops = crate::http::api().ops;
        let doc = document(&ops);
        assert_eq!(doc["openapi"], "3.0.3");
        let mut bad = Vec::new();
        violations(&doc, "", &mut bad);
        assert!(
            bad.is_empty(),
            "3.1 constructs left in the document: {bad:#?}"
        );
        let mut all = Vec::new();
        refs(&doc, &mut all);
        for r in all {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or(&r);
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "dangling $ref {r}"
            );
        }
        let mut ids: Vec<&str> = ops.iter().map(|o| o.operation_id).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len(), "duplicate operationIds");
        for op in &ops {
            let o = &doc["paths"][op.path][op.method.to_ascii_lowercase()];
            assert_eq!(o["operationId"], op.operation_id);
            for p in op.path.split('/').filter(|s| s.starts_with('{')) {
                let name = p.trim_matches(|c| c == '{' || c == '}');
                let declared = o["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|x| x["in"] == "path" && x["name"] == name));
                assert!(
                    declared,
                    "{} {}: path parameter {name} missing",
                    op.method, op.path
                );
            }
        }
        assert_eq!(
            doc["components"]["securitySchemes"]["jwtAuth"],
            json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
        );
        for op in ops
            .iter()
            .filter(|o| matches!(o.reply, Reply::List(_, s) if s.shape == Shape::Envelope))
        {
            let o = &doc["paths"][op.path][op.method.to_ascii_lowercase()];
            let page = o["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .unwrap_or_default();
            assert!(
                page.starts_with("#/components/schemas/Paginated") && page.ends_with("List"),
                "{}: {page}",
                op.operation_id
            );
            let names: Vec<&str> = o["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["name"].as_str())
                .collect();
            for name in ["page", "page_size", "ordering"] {
                assert!(
                    names.contains(&name),
                    "{}: no {name} parameter",
                    op.operation_id
                );
            }
        }
        assert!(doc["paths"].get("/api/schema/").is_none());
        assert!(doc["paths"].get("/metrics").is_none());
    }

    #[test]
    fn list_parameters_come_from_the_spec() {
        use crate::http::list::Filter;
        static SPEC: ListSpec = ListSpec {
            model: "Pool",
            from: "pool p",
            columns: "p.id",
            search: &[("name", "p.name")],
            filters: &[
                Filter {
                    param: "state",
                    column: "p.state",
                    kind: FilterKind::Choice(&["a", "b"]),
                },
                Filter {
                    param: "size",
                    column: "p.size",
                    kind: FilterKind::Number,
                },
                Filter {
                    param: "busy",
                    column: "p.busy",
                    kind: FilterKind::Bool,
                },
                Filter {
                    param: "group",
                    column: "p.group_id",
                    kind: FilterKind::ForeignKey {
                        table: "auth_group",
                        nullable: true,
                        visible: None,
                    },
                },
            ],
            ordering: &[("id", "p.id"), ("name", "p.name")],
            id_column: "p.id",
            shape: Shape::Envelope,
            scope: None,
        };
        let params = list_params(&SPEC);
        let by_name = |n: &str| {
            params
                .iter()
                .find(|p| p["name"] == n)
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(
            by_name("state")["schema"],
            json!({"type": "string", "enum": ["a", "b"]})
        );
        assert_eq!(by_name("size")["schema"], json!({"type": "integer"}));
        assert_eq!(by_name("busy")["schema"], json!({"type": "boolean"}));
        assert_eq!(by_name("group")["schema"], json!({"type": "string"}));
        for n in ["page", "page_size", "search", "ordering"] {
            assert_eq!(by_name(n)["in"], "query", "{n}");
        }
        assert!(by_name("ordering")["description"]
            .as_str()
            .is_some_and(|d| d.contains("id, name")));
    }

    #[test]
    fn request_and_response_components_split() {
        let mut split = Split::new(Vec::new());
        split.raw.insert(
            "Thing".into(),
            json!({"type": "object", "required": ["id", "name", "secret", "child"], "properties": {
                "id": {"type": "integer", "readOnly": true},
                "name": {"type": "string"},
                "secret": {"type": "string", "writeOnly": true},
                "child": {"$ref": "#/components/schemas/Child"},
                "kind": {"$ref": "#/components/schemas/Kind"}
            }}),
        );
        split.raw.insert(
            "Child".into(),
            json!({"type": "object", "required": ["id"], "properties": {"id": {"type": "integer", "readOnly": true}, "n": {"type": "string"}}}),
        );
        split
            .raw
            .insert("Kind".into(), json!({"type": "string", "enum": ["x"]}));
        assert_eq!(split.variant("Thing", Side::Response), "Thing");
        assert_eq!(split.variant("Thing", Side::Request), "ThingRequest");
        assert_eq!(split.variant("Thing", Side::Patched), "PatchedThingRequest");
        let out = &split.out;
        assert_eq!(out["Thing"]["required"], json!(["id", "name", "child"]));
        assert!(out["Thing"]["properties"].get("secret").is_none());
        assert_eq!(
            out["Thing"]["properties"]["child"]["$ref"],
            "#/components/schemas/Child"
        );
        assert_eq!(
            out["ThingRequest"]["required"],
            json!(["name", "secret", "child"])
        );
        assert!(out["ThingRequest"]["properties"].get("id").is_none());
        assert_eq!(
            out["ThingRequest"]["properties"]["child"]["$ref"],
            "#/components/schemas/ChildRequest"
        );
        assert!(out["ChildRequest"].get("required").is_none());
        assert!(out["PatchedThingRequest"].get("required").is_none());
        assert_eq!(
            out["PatchedThingRequest"]["properties"]["kind"]["$ref"],
            "#/components/schemas/Kind"
        );
        assert!(!out.contains_key("KindRequest"));
    }

    #[test]
    fn negotiates_like_drf() {
        assert_eq!(negotiate(None, ""), Some(Rendering::OaiYaml));
        assert_eq!(negotiate(None, "*/*"), Some(Rendering::OaiYaml));
        assert_eq!(
            negotiate(Some("json"), "application/yaml"),
            Some(Rendering::OaiJson)
        );
        assert_eq!(
            negotiate(Some("yaml"), "application/json"),
            Some(Rendering::OaiYaml)
        );
        assert_eq!(negotiate(Some("xml"), ""), None);
        assert_eq!(negotiate(None, "application/json"), Some(Rendering::Json));
        assert_eq!(
            negotiate(None, "application/vnd.oai.openapi+json"),
            Some(Rendering::OaiJson)
        );
        assert_eq!(negotiate(None, "application/yaml"), Some(Rendering::Yaml));
        assert_eq!(
            negotiate(None, "*/*, application/json"),
            Some(Rendering::Json)
        );
        assert_eq!(
            negotiate(
                None,
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
            ),
            Some(Rendering::OaiYaml)
        );
        assert_eq!(negotiate(None, "text/html"), None);
    }

    #[test]
    fn json_is_indented_by_four() {
        assert_eq!(
            to_json(&json!({"a": [1]})),
            "{\n    \"a\": [\n        1\n    ]\n}"
        );
    }
}
