//! Building the OpenAPI document from the route registry: path and list parameters, schema
//! references, responses (the request/response component split is in [`super::split`]).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::super::list::{FilterKind, ListSpec, Shape, MAX_PAGE_SIZE, MAX_SEARCH_TERMS};
use super::super::routes::{Components, Op, Reply};
use super::split::{Side, Split};
use super::{to_openapi_30, TITLE};

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
            FilterKind::Number | FilterKind::Owner | FilterKind::NumberIn(_) => {
                json!({"type": "integer"})
            }
            FilterKind::Bool => json!({"type": "boolean"}),
            // Typed as drf-spectacular types a foreign-key filter; `null` is an extension.
            FilterKind::ForeignKey { .. } => json!({"type": "integer"}),
        };
        let mut param =
            json!({"in": "query", "name": f.param, "required": false, "schema": schema});
        if let FilterKind::ForeignKey { nullable: true, .. } = f.kind {
            param["description"] = json!(
                "An id. Extension: the text `null` (`?param=null`) selects the objects that have none."
            );
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
            "description": format!("A search term (matches {}; at most {MAX_SEARCH_TERMS} terms).", searchable.join(", ")),
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
            Reply::NoContent | Reply::Any | Reply::Binary => None,
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
                    // Unpaginated a bare array; with `page`/`page_size` the envelope.
                    Shape::BareArray => {
                        let page = format!("Paginated{reply_name}List");
                        extra.insert(page.clone(), paginated(&reply_name));
                        json!({"oneOf": [
                            {"type": "array", "items": schema_ref(&reply_name)},
                            schema_ref(&page)
                        ]})
                    }
                };
                json!({"200": {"description": "", "content": content(schema)}})
            }
            Reply::NoContent => json!({"204": {"description": "No response body"}}),
            Reply::Any => {
                json!({"200": {"description": "", "content": content(json!({"type": "object"}))}})
            }
            Reply::Binary => json!({"200": {"description": "The file", "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            }}}),
        };
        for (name, description) in op.query {
            params.push(json!({
                "in": "query", "name": name, "schema": {"type": "integer"},
                "description": description
            }));
        }
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
    let mut doc = to_openapi_30(doc);
    mark_free_form(&mut doc);
    doc
}

/// A `type: object` with neither `properties` nor `additionalProperties` becomes
/// drf-spectacular's free-form object (`additionalProperties: {}`, as for a `JSONField` or
/// `DictField`): client generators otherwise warn that they cannot type it.
fn mark_free_form(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let bare = m.get("type").and_then(Value::as_str) == Some("object")
                && !m.contains_key("properties")
                && !m.contains_key("additionalProperties");
            if bare {
                m.insert("additionalProperties".into(), json!({}));
            }
            m.values_mut().for_each(mark_free_form);
        }
        Value::Array(items) => items.iter_mut().for_each(mark_free_form),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::convert::DROPPED_31;
    use super::*;

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
        assert_eq!(by_name("group")["schema"], json!({"type": "integer"}));
        for n in ["page", "page_size", "search", "ordering"] {
            assert_eq!(by_name(n)["in"], "query", "{n}");
        }
        assert!(by_name("ordering")["description"]
            .as_str()
            .is_some_and(|d| d.contains("id, name")));
    }
}
