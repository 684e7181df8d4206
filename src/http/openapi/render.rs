//! Rendering the document (YAML, JSON) and answering `/api/schema/` with content negotiation.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::super::error::ApiError;
use super::TITLE;

/// The served renderings, made once.
pub(super) struct Rendered {
    pub(super) yaml: String,
    pub(super) json: String,
}

/// The document as YAML (what `/api/schema/` answers by default and `openapi/schema.yaml` holds).
pub fn to_yaml(doc: &Value) -> String {
    let yaml = serde_norway::to_string(doc).unwrap_or_default();
    let mut out = String::with_capacity(yaml.len() + 64);
    for line in yaml.lines() {
        out.push_str(&quote_yaml11_bool(line));
        out.push('\n');
    }
    out
}

/// YAML 1.1 readers (PyYAML, older generators) take plain `On`, `off`, `yes`, `n` ... as
/// booleans, while the YAML 1.2 emitter leaves them unquoted; quote such scalar values so
/// every reader gets the strings the JSON rendering has.
fn quote_yaml11_bool(line: &str) -> String {
    const WORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
        "OFF",
    ];
    let (prefix, value) = if let Some(idx) = line.rfind(": ") {
        line.split_at(idx + 2)
    } else {
        let trimmed = line.trim_start();
        match trimmed.strip_prefix("- ") {
            Some(rest) => line.split_at(line.len() - rest.len()),
            None => return line.to_string(),
        }
    };
    if WORDS.contains(&value) {
        format!("{prefix}'{value}'")
    } else {
        line.to_string()
    }
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
pub(super) struct SchemaQuery {
    format: Option<String>,
}

/// YAML by default, JSON on `?format=json` or a JSON `Accept`, as drf-spectacular answers.
pub(super) async fn schema(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_quotes_yaml11_booleans() {
        let y = to_yaml(&json!({"enum": ["On", "Off", "PoweringOn"], "x": "no", "n": 1}));
        assert!(
            y.contains("- 'On'") && y.contains("- 'Off'") && y.contains("- PoweringOn"),
            "{y}"
        );
        assert!(y.contains("x: 'no'"), "{y}");
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
