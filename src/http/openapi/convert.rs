//! The OpenAPI 3.1 -> 3.0.3 conversion of the document utoipa's schemas make.

use serde_json::{json, Value};

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

pub(super) const DROPPED_31: &[&str] = &[
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
}
