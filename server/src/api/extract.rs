//! Request extractors shared by every route: strict JSON bodies, pagination,
//! `If-Match` versions, `Idempotency-Key`, and the per-request context [`Req`]
//! (principal, request id, and the transaction it opens).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use uuid::Uuid;

use std::sync::{Arc, Mutex};

use crate::app::AppState;
use crate::auth::Principal;
use crate::authz::Grants;
use crate::db::Tx;
use crate::error::ApiError;

/// A JSON body: `application/json` only, unknown fields refused (by the types),
/// and a decoding error names the field at fault.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "the body must be JSON (Content-Type: application/json)".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge { limit: state.config.max_body_bytes }
            } else {
                ApiError::bad_request("invalid_body", r.body_text())
            }
        })?;
        decode_json(&bytes).map(ApiJson)
    }
}

/// An optional JSON body (`POST /v1/vms/{id}/stop`): no body at all means
/// `T::default()`; a body must be JSON like any other.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let empty = req.headers().get(header::CONTENT_TYPE).is_none()
            && req.headers().get(header::CONTENT_LENGTH).is_none_or(|v| v.as_bytes() == b"0");
        if empty {
            return Ok(OptionalJson(T::default()));
        }
        ApiJson::<T>::from_request(req, state).await.map(|ApiJson(v)| OptionalJson(v))
    }
}

/// Decodes `bytes` as the object `T`, naming the offending field on error.
/// Strict on purpose: the body must be one JSON object (serde would otherwise
/// accept an array as a struct, positionally) with nothing after it.
///
/// Two passes: the syntax first (any value: UTF-8, numbers in range, nesting at
/// most 128 deep), so that whatever the typed pass then refuses is a field's
/// fault, never the JSON's (serde_json reports a number where an enum's string
/// belongs as a syntax error). Pure, so it can be fuzzed (`fuzz/`); never panics.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let starts_with_object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !starts_with_object {
        return Err(ApiError::bad_request("invalid_body", "the body must be a JSON object"));
    }
    let not_json =
        |e: serde_json::Error| ApiError::bad_request("invalid_body", format!("the body is not valid JSON: {e}"));
    // A `Value`, not `IgnoredAny`: skipping checks neither UTF-8, nor numbers, nor depth.
    serde_json::from_slice::<serde_json::Value>(bytes).map_err(not_json)?;
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at_root = path == "." || path.is_empty();
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof if !at_root => {
                let message = format!("{path} has the wrong type or value");
                ApiError::BadRequest { code: "invalid_field", message, field: Some(path) }
            }
            serde_json::error::Category::Syntax
            | serde_json::error::Category::Eof
            | serde_json::error::Category::Io => not_json(inner),
            _ if at_root => {
                // serde reports a missing or duplicate field at the parent; name the field itself.
                let message = inner.to_string();
                let named = ["missing field `", "duplicate field `"]
                    .iter()
                    .find_map(|p| message.strip_prefix(p))
                    .and_then(|m| m.split('`').next());
                match named {
                    Some(f) => ApiError::BadRequest { code: "invalid_field", field: Some(f.to_string()), message },
                    None => ApiError::bad_request("invalid_body", message),
                }
            }
            _ => ApiError::BadRequest { code: "invalid_field", message: inner.to_string(), field: Some(path) },
        }
    })?;
    de.end().map_err(not_json)?;
    Ok(value)
}

/// `?limit=&cursor=` for every list. The cursor is opaque to clients: it encodes
/// the last id of the previous page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

/// A checked page request.
#[derive(Debug, Clone, Copy)]
pub struct PageParams {
    pub limit: i64,
    pub after: Option<Uuid>,
}

impl PageQuery {
    pub fn params(&self) -> Result<PageParams, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::bad_field("limit", format!("limit must be between 1 and {MAX_LIMIT}")));
        }
        let after = match &self.cursor {
            None => None,
            Some(c) => Some(decode_cursor(c).ok_or_else(|| ApiError::bad_field("cursor", "the cursor is not valid"))?),
        };
        Ok(PageParams { limit, after })
    }
}

pub fn encode_cursor(id: Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("v1:{id}"))
}

fn decode_cursor(c: &str) -> Option<Uuid> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    Uuid::try_parse(text.strip_prefix("v1:")?).ok()
}

/// Builds a page from `limit + 1` fetched rows: the extra row only says there is more.
pub fn page<T, F: Fn(&T) -> Uuid>(mut rows: Vec<T>, params: PageParams, id: F) -> basalt_client::Page<T> {
    let more = rows.len() as i64 > params.limit;
    rows.truncate(params.limit as usize);
    let next_cursor = if more { rows.last().map(|r| encode_cursor(id(r))) } else { None };
    basalt_client::Page { items: rows, next_cursor }
}

/// The `If-Match` header, if any: the version the client last saw.
pub struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(v) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let bad = || ApiError::bad_field("If-Match", "If-Match must be the object's version, e.g. \"3\"");
        let text = v.to_str().map_err(|_| bad())?.trim();
        let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
        let version = text.parse::<i64>().map_err(|_| bad())?;
        Ok(IfMatch(Some(version)))
    }
}

/// Refuses the update when `If-Match` names another version than `current`.
pub fn check_version(if_match: &IfMatch, current: i64) -> Result<(), ApiError> {
    match if_match.0 {
        Some(expected) if expected != current => Err(ApiError::VersionMismatch { expected, current }),
        _ => Ok(()),
    }
}

/// The `Idempotency-Key` header of a create, if any (1–255 visible ASCII characters).
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(v) = parts.headers.get("idempotency-key") else {
            return Ok(IdempotencyKey(None));
        };
        let key = v
            .to_str()
            .ok()
            .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
            ApiError::bad_field("Idempotency-Key", "Idempotency-Key must be 1 to 255 visible ASCII characters")
        })?;
        Ok(IdempotencyKey(Some(key.to_string())))
    }
}

/// Two path segments that must be UUIDs (`/v1/vms/{id}/snapshots/{snapshot_id}`).
pub struct PathIds(pub Uuid, pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PathIds {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path((a, b)): axum::extract::Path<(String, String)> =
            axum::extract::Path::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::bad_field("id", "ids in the path must be UUIDs"))?;
        let parse =
            |raw: &str| Uuid::try_parse(raw).map_err(|_| ApiError::bad_field("id", "ids in the path must be UUIDs"));
        Ok(PathIds(parse(&a)?, parse(&b)?))
    }
}

/// A path segment that must be a UUID (a 400 naming the parameter otherwise).
pub struct PathId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(raw): axum::extract::Path<String> =
            axum::extract::Path::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::bad_field("id", "the id in the path must be a UUID"))?;
        Uuid::try_parse(&raw).map(PathId).map_err(|_| ApiError::bad_field("id", "the id in the path must be a UUID"))
    }
}

/// Query strings are strict too: unknown parameters are a 400.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        decode_query(q).map(ApiQuery)
    }
}

/// Decodes a query string (without the `?`) as `T`, refusing unknown parameters
/// (the types deny them). Pure, so it can be fuzzed; it never panics.
pub fn decode_query<T: DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{q}")
            .parse()
            .map_err(|_| ApiError::bad_request("invalid_query", "the query string is not valid"))?,
    )
    .map(|axum::extract::Query(v)| v)
    .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
}

/// What the choke point resolved for an authenticated request: the caller's
/// grants, and the transaction it opened in the caller's context for the handler.
#[derive(Clone)]
pub struct Authorized {
    pub grants: Arc<Grants>,
    tx: Arc<Mutex<Option<Tx>>>,
}

impl Authorized {
    pub fn new(grants: Grants, tx: Option<Tx>) -> Authorized {
        Authorized { grants: Arc::new(grants), tx: Arc::new(Mutex::new(tx)) }
    }
}

/// The context of one authenticated request: who, which request, what it may do,
/// and the request's transaction.
pub struct Req {
    pub principal: Principal,
    pub request_id: String,
    pub state: AppState,
    pub grants: Arc<Grants>,
    tx: Arc<Mutex<Option<Tx>>>,
}

impl FromRequestParts<AppState> for Req {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = Principal::from_request_parts(parts, state).await?;
        let authorized =
            parts.extensions.get::<Authorized>().cloned().ok_or_else(|| {
                ApiError::internal("a route without an authorization check asked for a request context")
            })?;
        Ok(Req::new(principal, request_id(parts), state.clone(), authorized))
    }
}

pub fn request_id(parts: &Parts) -> String {
    parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

impl Req {
    pub fn new(principal: Principal, request_id: String, state: AppState, authorized: Authorized) -> Req {
        Req { principal, request_id, state, grants: authorized.grants, tx: authorized.tx }
    }

    /// The request's transaction, opened by the choke point in the caller's
    /// context (a suspended tenant already answered 423 for a change). Taken once.
    pub fn tx(&self) -> Result<Tx, ApiError> {
        self.tx
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
            .ok_or_else(|| ApiError::internal("the request transaction was already taken"))
    }

    /// Refuses a `tenant_id` in a body that is not the caller's context: objects are
    /// created in the context, and naming another tenant means switching first.
    pub fn check_body_tenant(&self, body_tenant: Option<Uuid>) -> Result<Option<Uuid>, ApiError> {
        let context = self.principal.context.tenant();
        if body_tenant.is_some() && body_tenant != context {
            return Err(ApiError::Unprocessable {
                code: "tenant_mismatch",
                message: "tenant_id must be the tenant of the current context; switch tenant first".into(),
                details: serde_json::json!({ "field": "tenant_id" }),
            });
        }
        Ok(context)
    }

    /// A further transaction in the caller's context (for work outside the request's own).
    pub async fn begin(&self, mutating: bool) -> Result<Tx, ApiError> {
        Ok(self.state.db.begin(self.principal.context.db_scope(), Some(self.principal.user_id), mutating).await?)
    }
}
