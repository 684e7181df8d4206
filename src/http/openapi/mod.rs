//! The OpenAPI 3.0.3 document, built from the route registry, and the offline docs UIs
//! (Swagger UI and ReDoc, both served from the binary).

mod convert;
mod document;
mod render;
mod split;
mod ui;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use convert::to_openapi_30;
pub use document::document;
pub use render::{to_json, to_yaml};
pub use ui::docs_router;

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
