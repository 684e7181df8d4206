//! simplejwt-compatible authentication: the token endpoints, the bearer extractor and the
//! failed-login throttle.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::Json;
use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::extract::Fields;
use super::validate::{validate, Field, Kind, Mode};
use super::AppState;
use crate::config::Networks;
use crate::db::{self, users};
use crate::service::logins::{self, LoginError};

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// User id.
    pub id: i64,
    /// User name.
    pub username: String,
    /// Superusers see and do everything.
    pub is_superuser: bool,
    /// Ids of the groups the user belongs to.
    pub groups: Vec<i64>,
}

impl CurrentUser {
    /// The caller as the service layer sees them.
    pub fn viewer(&self) -> crate::service::Viewer<'_> {
        crate::service::Viewer {
            id: self.id,
            username: &self.username,
            is_superuser: self.is_superuser,
            groups: &self.groups,
        }
    }
}

/// How long a token holder's identity (active flag, superuser flag, groups, the time before
/// which its tokens are refused) is reused without reading it again. Changes made through this
/// server take effect at once (the cache is emptied); changes made through another replica or
/// the CLI within this time.
pub const IDENTITY_TTL: Duration = Duration::from_secs(2);

/// Identities of recent token holders, so that most requests cost no user lookup.
#[derive(Default)]
pub struct IdentityCache {
    inner: Mutex<IdentityEntries>,
}

#[derive(Default)]
struct IdentityEntries {
    /// Bumped by every [`IdentityCache::forget`]: a lookup that started before a change does
    /// not store what it read.
    generation: u64,
    entries: HashMap<i64, (Instant, users::AuthInfo)>,
}

/// Most identities kept; past it, stale entries are dropped (all of them if none is stale).
const IDENTITY_CAPACITY: usize = 10_000;

impl IdentityCache {
    fn get(&self, id: i64) -> (u64, Option<users::AuthInfo>) {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let hit = inner
            .entries
            .get(&id)
            .filter(|(at, _)| at.elapsed() < IDENTITY_TTL)
            .map(|(_, info)| info.clone());
        (inner.generation, hit)
    }

    fn put(&self, generation: u64, info: users::AuthInfo) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.generation != generation {
            return;
        }
        if inner.entries.len() >= IDENTITY_CAPACITY {
            inner
                .entries
                .retain(|_, (at, _)| at.elapsed() < IDENTITY_TTL);
            if inner.entries.len() >= IDENTITY_CAPACITY {
                inner.entries.clear();
            }
        }
        inner.entries.insert(info.id, (Instant::now(), info));
    }

    /// Drops every identity: called after any change to users, groups or memberships.
    pub fn forget(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.generation += 1;
        inner.entries.clear();
    }

    /// The identity of user `id`, from the cache or the database.
    pub(super) async fn lookup(
        &self,
        db: &db::Db,
        id: i64,
    ) -> db::DbResult<Option<users::AuthInfo>> {
        let (generation, hit) = self.get(id);
        if hit.is_some() {
            return Ok(hit);
        }
        let info = users::auth_info(db, id).await?;
        if let Some(info) = &info {
            self.put(generation, info.clone());
        }
        Ok(info)
    }
}

/// Access tokens whose signature and claims were already checked: the signature check
/// (HMAC-SHA256 over the token, plus base64 and JSON decoding) is most of what an
/// authenticated request costs before its handler, and a client sends the same token many
/// times. Only what the signature proved is kept (user id, issue time, expiry); the expiry and
/// the user's state are checked on every request as before.
#[derive(Default)]
pub struct TokenCache {
    inner: Mutex<HashMap<String, Verified>>,
}

/// What a verified access token says.
#[derive(Debug, Clone, Copy)]
struct Verified {
    user_id: i64,
    iat: i64,
    exp: i64,
}

/// Most tokens kept; past it the cache starts again empty.
const TOKEN_CAPACITY: usize = 4096;

impl TokenCache {
    fn get(&self, token: &str) -> Option<Verified> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.get(token).copied()
    }

    fn put(&self, token: &str, v: Verified) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.len() >= TOKEN_CAPACITY {
            inner.clear();
        }
        inner.insert(token.to_string(), v);
    }
}

/// The claims of an access token: from the cache when this exact token was verified before
/// and has not expired since (the same rule as the decoder's: expired once `exp` is in the
/// past, no leeway), otherwise decoded and verified.
fn access_claims(state: &AppState, token: &str) -> Result<Verified, &'static str> {
    if let Some(v) = state.tokens.get(token) {
        let now = jsonwebtoken::get_current_timestamp();
        return match u64::try_from(v.exp) {
            Ok(exp) if exp >= now => Ok(v),
            _ => Err("Token is expired"),
        };
    }
    let claims = decode(state, token)?;
    if claims.token_type != "access" {
        return Err("Token has wrong type");
    }
    let v = Verified {
        user_id: claims.user_id,
        iat: claims.iat,
        exp: claims.exp,
    };
    state.tokens.put(token, v);
    Ok(v)
}

/// The caller, who must be a superuser (403 otherwise).
#[derive(Debug, Clone)]
pub struct Superuser(pub CurrentUser);

/// JWT signing keys of this installation.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys(<redacted>)")
    }
}

impl JwtKeys {
    /// Keys from the installation's secret.
    pub fn new(secret: &[u8]) -> JwtKeys {
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }
}

/// Claims of both token types, in simplejwt's order.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    token_type: String,
    exp: i64,
    iat: i64,
    jti: String,
    user_id: i64,
}

fn new_jti() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

fn mint(
    state: &AppState,
    user_id: i64,
    token_type: &str,
    iat: i64,
    lifetime: Duration,
) -> ApiResult<String> {
    let lifetime = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 4);
    let claims = Claims {
        token_type: token_type.to_string(),
        exp: iat.saturating_add(lifetime),
        iat,
        jti: new_jti(),
        user_id,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &state.jwt.encoding)
        .map_err(|e| ApiError::Internal(format!("token encoding failed: {e}")))
}

/// Why a token was refused, with simplejwt's (>= 5.5) message.
fn decode(state: &AppState, token: &str) -> Result<Claims, &'static str> {
    let mut v = Validation::new(Algorithm::HS256);
    v.leeway = 0;
    v.validate_aud = false;
    v.set_required_spec_claims(&["exp"]);
    match jsonwebtoken::decode::<Claims>(token, &state.jwt.decoding, &v) {
        Ok(d) => Ok(d.claims),
        Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => Err("Token is expired"),
        Err(_) => Err("Token is invalid"),
    }
}

fn token_not_valid(msg: &str) -> ApiError {
    ApiError::Unauthorized(json!({"detail": msg, "code": "token_not_valid"}))
}

/// The message for a token issued before its user's password changed (or the user was
/// deactivated).
const REVOKED: &str = "Token was issued before the user's credentials changed";

/// True when the token predates its user's last password change or deactivation.
fn issued_before_change(claims: &Claims, user: Option<&users::AuthInfo>) -> bool {
    user.and_then(|u| u.tokens_valid_after)
        .is_some_and(|after| claims.iat < after)
}

/// The `iat` of a new token: now, but never before the user's "valid after" second (a token
/// minted in the same second as a password change must not be refused with the old ones).
fn issue_time(user: Option<&users::AuthInfo>) -> i64 {
    let now = chrono::Utc::now().timestamp();
    user.and_then(|u| u.tokens_valid_after)
        .map_or(now, |after| now.max(after))
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(u) = parts.extensions.get::<CurrentUser>() {
            return Ok(u.clone());
        }
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::not_authenticated());
        };
        let value = value.to_str().unwrap_or("");
        let words: Vec<&str> = value.split_whitespace().collect();
        // Another scheme is not ours: the request is anonymous, as in simplejwt.
        if words.first() != Some(&"Bearer") {
            return Err(ApiError::not_authenticated());
        }
        if words.len() != 2 {
            return Err(ApiError::Unauthorized(json!({
                "detail": "Authorization header must contain two space-delimited values",
                "code": "bad_authorization_header"
            })));
        }
        let access_error = |msg: &str| {
            ApiError::Unauthorized(json!({
                "detail": "Given token not valid for any token type",
                "code": "token_not_valid",
                "messages": [{"token_class": "AccessToken", "token_type": "access", "message": msg}]
            }))
        };
        let claims = access_claims(state, words[1]).map_err(access_error)?;
        let user = state.identities.lookup(&state.db, claims.user_id).await?;
        let Some(user) = user else {
            return Err(ApiError::Unauthorized(
                json!({"detail": "User not found", "code": "user_not_found"}),
            ));
        };
        if !user.is_active {
            return Err(ApiError::Unauthorized(
                json!({"detail": "User is inactive", "code": "user_inactive"}),
            ));
        }
        if user
            .tokens_valid_after
            .is_some_and(|after| claims.iat < after)
        {
            return Err(access_error(REVOKED));
        }
        let current = CurrentUser {
            id: user.id,
            username: user.username,
            is_superuser: user.is_superuser,
            groups: user.groups,
        };
        parts.extensions.insert(current.clone());
        if let Some(slot) = parts.extensions.get::<super::audit::CallerSlot>() {
            slot.set(&current);
        }
        Ok(current)
    }
}

impl FromRequestParts<AppState> for Superuser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        if user.is_superuser {
            Ok(Superuser(user))
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// The address of the client, from `X-Forwarded-For` only when the peer is a trusted proxy.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// The client address of a request: the peer, or, when the peer is a trusted proxy, the
/// rightmost `X-Forwarded-For` address that is not itself a trusted proxy (entries to its
/// left were written by the client and prove nothing). A malformed entry stops the walk at
/// the last trusted hop.
pub fn client_ip(headers: &HeaderMap, peer: Option<IpAddr>, trusted: &Networks) -> IpAddr {
    let peer = peer.unwrap_or(IpAddr::from([127, 0, 0, 1]));
    if !trusted.contains(&peer) {
        return peer;
    }
    let mut hop = peer;
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    for entry in entries.iter().rev() {
        let Ok(ip) = entry.parse::<IpAddr>() else {
            return hop;
        };
        if !trusted.contains(&ip) {
            return ip;
        }
        hop = ip;
    }
    hop
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(ClientIp(client_ip(
            &parts.headers,
            peer,
            &state.config.trusted_proxies,
        )))
    }
}

const LOGIN_FIELDS: &[Field] = &[
    Field::new("username", Kind::Str),
    Field::new("password", Kind::Secret),
];

/// `POST /api/token/`: a refresh/access pair for valid credentials.
pub async fn token_obtain(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    body: Fields,
) -> ApiResult<Json<Value>> {
    let v = validate(&body, LOGIN_FIELDS, Mode::Full)?;
    let username = v.str("username").unwrap_or_default();
    let password = v.str("password").unwrap_or_default();
    let rules = crate::service::audit::login_rules(&state.config);
    let user_id = match logins::login(&state.db, rules, ip, &username, &password).await {
        Ok(id) => id,
        Err(LoginError::Throttled(secs) | LoginError::Busy(secs)) => {
            return Err(ApiError::Throttled(secs))
        }
        Err(LoginError::Invalid) => {
            state.metrics.login_failed();
            return Err(ApiError::Unauthorized(
                json!({"detail": "No active account found with the given credentials"}),
            ));
        }
        Err(LoginError::Hash(m)) => return Err(ApiError::Internal(m)),
        Err(LoginError::Db(e)) => return Err(e.into()),
    };
    users::touch_last_login(&state.db, user_id).await?;
    let iat = issue_time(users::auth_info(&state.db, user_id).await?.as_ref());
    let refresh = mint(
        &state,
        user_id,
        "refresh",
        iat,
        state.config.refresh_token_lifetime,
    )?;
    let access = mint(
        &state,
        user_id,
        "access",
        iat,
        state.config.access_token_lifetime,
    )?;
    Ok(Json(json!({"refresh": refresh, "access": access})))
}

/// Decodes a refresh token from a body field, refusing revoked and wrong-type tokens.
async fn valid_refresh(state: &AppState, token: &str) -> ApiResult<Claims> {
    let claims = decode(state, token).map_err(token_not_valid)?;
    if claims.token_type != "refresh" {
        return Err(token_not_valid("Token has wrong type"));
    }
    if users::is_blacklisted(&state.db, &claims.jti).await? {
        return Err(token_not_valid("Token is blacklisted"));
    }
    Ok(claims)
}

const REFRESH_FIELDS: &[Field] = &[Field::new("refresh", Kind::Secret)];

/// `POST /api/token/refresh/`: a new access token (and refresh token when rotating).
pub async fn token_refresh(State(state): State<AppState>, body: Fields) -> ApiResult<Json<Value>> {
    let v = validate(&body, REFRESH_FIELDS, Mode::Full)?;
    let claims = valid_refresh(&state, &v.str("refresh").unwrap_or_default()).await?;
    // Read fresh, not from the identity cache: a refresh outlives any cached identity.
    let info = users::auth_info(&state.db, claims.user_id).await?;
    if !info.as_ref().is_some_and(|u| u.is_active) {
        return Err(ApiError::Unauthorized(
            json!({"detail": "No active account found for the given token."}),
        ));
    }
    if issued_before_change(&claims, info.as_ref()) {
        return Err(token_not_valid(REVOKED));
    }
    let now = issue_time(info.as_ref());
    let access = mint(
        &state,
        claims.user_id,
        "access",
        now,
        state.config.access_token_lifetime,
    )?;
    if state.config.rotate_refresh_tokens {
        users::blacklist(&state.db, &claims.jti, claims.exp).await?;
        let refresh = mint(
            &state,
            claims.user_id,
            "refresh",
            now,
            state.config.refresh_token_lifetime,
        )?;
        return Ok(Json(json!({"access": access, "refresh": refresh})));
    }
    Ok(Json(json!({"access": access})))
}

/// `POST /api/token/verify/`: 200 `{}` for a valid token of either type.
pub async fn token_verify(State(state): State<AppState>, body: Fields) -> ApiResult<Json<Value>> {
    let v = validate(&body, &[Field::new("token", Kind::Secret)], Mode::Full)?;
    let claims = decode(&state, &v.str("token").unwrap_or_default()).map_err(token_not_valid)?;
    if claims.token_type == "refresh" && users::is_blacklisted(&state.db, &claims.jti).await? {
        return Err(token_not_valid("Token is blacklisted"));
    }
    let info = state.identities.lookup(&state.db, claims.user_id).await?;
    if issued_before_change(&claims, info.as_ref()) {
        return Err(token_not_valid(REVOKED));
    }
    Ok(Json(json!({})))
}

/// `POST /api/token/blacklist/`: revokes one refresh token (by its `jti`): it can no longer be
/// refreshed, verified or blacklisted again. Access tokens already minted from it stay valid
/// until they expire; a password change or a deactivation revokes every token of the user.
pub async fn token_blacklist(
    State(state): State<AppState>,
    body: Fields,
) -> ApiResult<Json<Value>> {
    let v = validate(&body, REFRESH_FIELDS, Mode::Full)?;
    let claims = valid_refresh(&state, &v.str("refresh").unwrap_or_default()).await?;
    users::blacklist(&state.db, &claims.jti, claims.exp).await?;
    Ok(Json(json!({})))
}
