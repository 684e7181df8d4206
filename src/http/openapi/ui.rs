//! The offline documentation UIs (Swagger UI and ReDoc, both served from the binary) and the
//! docs router.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::header;
use axum::response::{Html, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;

use super::super::AppState;
use super::render::{schema, to_json, to_yaml, Rendered};
use super::{REDOC_PATH, SCHEMA_JSON_URL, SCHEMA_PATH, SWAGGER_PATH, TITLE};

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
