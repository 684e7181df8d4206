//! drf-spectacular's `COMPONENT_SPLIT_REQUEST`: each component utoipa wrote becomes an answer
//! variant and, where it has properties, request (`<X>Request`) and PATCH
//! (`Patched<X>Request`) variants, with the references inside rewritten to match.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::super::routes::Components;

/// Which side of the wire a component describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
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
pub(super) struct Split {
    /// Every component as utoipa wrote it.
    raw: Map<String, Value>,
    /// The emitted components.
    pub(super) out: BTreeMap<String, Value>,
}

impl Split {
    pub(super) fn new(comps: Components) -> Split {
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

    /// The name drf-spectacular gives the component of the Rust type `name`: named after the
    /// serializer, so an answer type `PoolOut` is `Pool` (unless a type of that name exists).
    fn spectacular_name(&self, name: &str) -> String {
        match name.strip_suffix("Out") {
            Some(base) if !base.is_empty() && !self.raw.contains_key(base) => base.to_string(),
            _ => name.to_string(),
        }
    }

    /// Emits the `side` variant of component `name` (and what it references); returns its name.
    pub(super) fn variant(&mut self, name: &str, side: Side) -> String {
        let Some(mut schema) = self.raw.get(name).cloned() else {
            return name.to_string();
        };
        let base = self.spectacular_name(name);
        // Enums and other leaf schemas are the same on both sides: shared, as spectacular does.
        let splits = schema.get("properties").is_some() || contains_ref(&schema);
        let request_name = if base.ends_with("Request") {
            base.clone()
        } else {
            format!("{base}Request")
        };
        let emitted = match (side, splits) {
            (Side::Response, _) | (_, false) => base.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_types_are_named_after_the_serializer() {
        let mut split = Split::new(Vec::new());
        let obj = json!({"type": "object", "properties": {"id": {"type": "integer"}}});
        split.raw.insert("PoolOut".into(), obj.clone());
        split.raw.insert("Thing".into(), obj.clone());
        split.raw.insert("ThingOut".into(), obj);
        assert_eq!(split.variant("PoolOut", Side::Response), "Pool");
        assert_eq!(
            split.variant("PoolOut", Side::Patched),
            "PatchedPoolRequest"
        );
        // A type already named so keeps its name; the other keeps its own.
        assert_eq!(split.variant("ThingOut", Side::Response), "ThingOut");
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
}
