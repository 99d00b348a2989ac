//! Typed API errors at the edge: every failure a handler can meet becomes one
//! `ApiError`, answered as `{"error": {"code", "message", "details"}}` with the
//! fitting HTTP status. Database errors are mapped here once, so a handler never
//! decides what a unique violation or a suspended tenant looks like on the wire.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use basalt_client::{ErrorBody, ErrorDetail};
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed; `field` names the part at fault.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String, field: Option<String> },
    /// 401: no credential, or one that is not valid.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: authenticated, but the named permission is not held.
    #[error("permission {permission} is required")]
    PermissionDenied { permission: String },
    /// 403 for something that is not a catalog permission (self-escalation and such).
    #[error("{0}")]
    Forbidden(String),
    /// 403: granting this would give away permissions the caller does not hold.
    #[error("you cannot grant permissions you do not hold: {}", .missing.join(", "))]
    Escalation { missing: Vec<String> },
    /// 404: missing, or belonging to another tenant: the two are indistinguishable.
    #[error("{kind} not found")]
    NotFound { kind: &'static str },
    /// 405: the path exists, the method does not.
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    /// 409: a name is taken, or a unique key collides.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 409: `If-Match` named a version that is no longer current.
    #[error("version mismatch: expected {expected}, current is {current}")]
    VersionMismatch { expected: i64, current: i64 },
    /// 413: the body is larger than the limit.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 415: the body is not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed, but not acceptable as a whole.
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String, details: Value },
    /// 423: the caller's tenant is suspended; reads work, changes do not.
    #[error("tenant is suspended: reads are allowed, changes are refused")]
    TenantSuspended,
    /// 429: slow down; `retry_after` seconds until the next try can succeed.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    /// 503: a dependency (Postgres) is unavailable; retrying later may succeed.
    #[error("{0}")]
    Unavailable(String),
    /// 503: a region of a federated install cannot be reached (or has not been
    /// confirmed by the controller recently enough to accept a change).
    #[error("region {region} is unavailable: {reason}")]
    RegionUnavailable { region: String, reason: String },
    /// 500: a bug. The detail is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn bad_field(field: &str, message: impl Into<String>) -> Self {
        ApiError::BadRequest { code: "invalid_field", message: message.into(), field: Some(field.to_string()) }
    }

    /// 422 `invalid_reference`: body field `field` names no object the caller may use.
    pub fn invalid_reference(field: &str, message: impl Into<String>) -> Self {
        ApiError::Unprocessable {
            code: "invalid_reference",
            message: message.into(),
            details: serde_json::json!({ "field": field }),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest { code, message: message.into(), field: None }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::PermissionDenied { .. } | ApiError::Forbidden(_) | ApiError::Escalation { .. } => {
                StatusCode::FORBIDDEN
            }
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } | ApiError::VersionMismatch { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TenantSuspended => StatusCode::LOCKED,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::RegionUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. } => code,
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::PermissionDenied { .. } => "permission_denied",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Escalation { .. } => "escalation_refused",
            ApiError::NotFound { .. } => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict { code, .. } => code,
            ApiError::VersionMismatch { .. } => "version_mismatch",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Unprocessable { code, .. } => code,
            ApiError::TenantSuspended => "tenant_suspended",
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::RegionUnavailable { .. } => "region_unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    fn details(&self) -> Value {
        match self {
            ApiError::BadRequest { field: Some(f), .. } => json!({ "field": f }),
            ApiError::PermissionDenied { permission } => json!({ "permission": permission }),
            ApiError::NotFound { kind } => json!({ "kind": kind }),
            ApiError::Escalation { missing } => json!({ "missing": missing }),
            ApiError::VersionMismatch { expected, current } => {
                json!({ "expected": expected, "current": current })
            }
            ApiError::PayloadTooLarge { limit } => json!({ "limit_bytes": limit }),
            ApiError::RegionUnavailable { region, .. } => json!({ "region": region }),
            ApiError::TooManyRequests { retry_after, .. } => json!({ "retry_after_seconds": retry_after }),
            ApiError::Unprocessable { details, .. } => details.clone(),
            _ => json!({}),
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail { code: self.code().to_string(), message: self.to_string(), details: self.details() },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let status = self.status();
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after, .. } => Some(*retry_after),
            _ => None,
        };
        let mut resp = (status, axum::Json(self.body())).into_response();
        if let Some(secs) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
            resp.headers_mut().insert("retry-after", secs);
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// Postgres error mapping. Unique violations become 409 naming the constraint's
/// meaning; policy violations become 404 (the row "does not exist" for the caller);
/// our own SQLSTATEs from `basalt_enter` become 423 and 404; connection trouble 503.
impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                match code.as_ref() {
                    "BS423" => ApiError::TenantSuspended,
                    "BS401" => {
                        ApiError::Unauthenticated("the user of this credential no longer exists or is disabled".into())
                    }
                    "BS404" => ApiError::Unauthenticated("the tenant of this credential no longer exists".into()),
                    "BS403" => ApiError::Forbidden("the tenant is not entitled to this region".into()),
                    "BS503" => ApiError::RegionUnavailable {
                        region: "this region".into(),
                        reason: "the global controller has not confirmed tenant states recently; changes are refused until it does".into(),
                    },
                    "23505" => {
                        ApiError::Conflict { code: "already_exists", message: conflict_message(db.constraint()) }
                    }
                    // The only CHECK a valid request can trip: a quota limit below usage.
                    "23514" if db.constraint() == Some("quotas_within_limits") => ApiError::Conflict {
                        code: "quota_in_use",
                        message: "a limit cannot go below what the tenant already uses".into(),
                    },
                    // Row-level security refused a write: the target is not the caller's.
                    "42501" => ApiError::NotFound { kind: "object" },
                    // A pool's allocations (tenant rows the system context cannot
                    // see) hold it: its deletion trips their foreign key.
                    "23503" if db.constraint() == Some("floating_ips_ip_pool_id_fkey") => ApiError::Conflict {
                        code: "ip_pool_in_use",
                        message: "floating IPs are allocated from this pool; they must be released first".into(),
                    },
                    "23503" => ApiError::Unprocessable {
                        code: "invalid_reference",
                        message: "a referenced object does not exist".into(),
                        details: json!({ "constraint": db.constraint() }),
                    },
                    "57014" => ApiError::Unavailable("the database cancelled the query".into()),
                    c if c.starts_with("08") || c.starts_with("57P") || c == "53300" => {
                        ApiError::Unavailable("the database is unavailable".into())
                    }
                    _ => ApiError::Internal(e.to_string()),
                }
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => ApiError::Unavailable("the database is unavailable".into()),
            sqlx::Error::RowNotFound => ApiError::NotFound { kind: "object" },
            _ => ApiError::Internal(e.to_string()),
        }
    }
}

fn conflict_message(constraint: Option<&str>) -> String {
    match constraint {
        Some("tenants_live_name") => "a tenant with this name already exists".into(),
        Some("users_tenant_username") => "a user with this username already exists".into(),
        Some("api_tokens_tenant_name") => "you already have a token with this name".into(),
        Some("roles_tenant_name") => "a role with this name already exists".into(),
        Some("role_bindings_unique") => "this user already has this role here".into(),
        Some("regions_tenant_name") => "a region with this name already exists".into(),
        Some("clusters_tenant_name") => "a cluster with this name already exists".into(),
        Some("hosts_tenant_uri") => "this host already belongs to a cluster".into(),
        Some("quotas_tenant_cluster") => "the tenant already has a quota on this cluster".into(),
        Some("templates_tenant_name") => "a template with this name already exists".into(),
        Some("vms_tenant_name") => "a VM with this name already exists".into(),
        Some("vm_snapshots_tenant_vm_name") => "the VM already has a snapshot with this name".into(),
        Some("quota_requests_one_pending") => {
            "a request for this cluster is already pending: cancel it or wait for the decision".into()
        }
        Some("security_groups_tenant_name") => "a security group with this name already exists".into(),
        Some(c) => format!("the object conflicts with an existing one ({c})"),
        None => "the object conflicts with an existing one".into(),
    }
}
