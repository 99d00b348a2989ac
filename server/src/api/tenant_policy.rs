//! `/v1/tenant-policy`: a tenant's password and token rules, and where they are
//! enforced.
//!
//! The policy is a tenant's own (scope `tenant` only): provider staff change it
//! by switching into the tenant, and their own users (system scope) follow the
//! server's defaults. A tenant that never changed it has no row and the defaults
//! apply (`version` 0). [`Policy::load`] is what user creation, password
//! changes, invitation acceptance and token issuance consult.

use axum::Json;
use basalt_client::{TenantPolicy, UpdateTenantPolicy};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::crud;
use super::extract::{check_version, ApiJson, IfMatch, Req};
use crate::auth::password;
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};

/// The bounds a tenant may set its minimum password length within.
const PASSWORD_MIN_LENGTH: std::ops::RangeInclusive<i32> = 8..=128;
/// The bounds of a token lifetime limit, in days (an API token lives 2 years at most).
const TOKEN_MAX_TTL_DAYS: std::ops::RangeInclusive<i32> = 1..=732;

#[derive(sqlx::FromRow)]
struct PolicyRow {
    password_min_length: i32,
    token_max_ttl_days: Option<i32>,
    version: i64,
    updated_at: DateTime<Utc>,
}

/// The rules in force for the users of one context.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub password_min_length: usize,
    pub token_max_ttl_days: Option<i32>,
}

impl Policy {
    /// The policy of `tenant` as `tx` sees it (`tx` must be in that tenant's
    /// context); the server's defaults for provider staff (`None`) and for a
    /// tenant that never set one.
    pub async fn load(tx: &mut Tx, tenant: Option<Uuid>) -> ApiResult<Policy> {
        let row = match tenant {
            Some(t) => select(tx, t, false).await?,
            None => None,
        };
        Ok(row.map_or(Policy::DEFAULT, |r| Policy {
            password_min_length: usize::try_from(r.password_min_length).unwrap_or(password::MIN_LEN),
            token_max_ttl_days: r.token_max_ttl_days,
        }))
    }

    const DEFAULT: Policy = Policy { password_min_length: password::MIN_LEN, token_max_ttl_days: None };

    /// Refuses (400 naming `field`) a password shorter than the policy allows.
    pub fn check_password(&self, field: &str, value: &str) -> ApiResult<()> {
        password::validate_min(field, value, self.password_min_length)
    }

    /// Refuses (400 naming `field`) a token lifetime beyond the policy's limit;
    /// with a limit, a token that never expires is beyond it.
    pub fn check_token_ttl(&self, field: &str, ttl_seconds: Option<i64>) -> ApiResult<()> {
        let Some(days) = self.token_max_ttl_days else { return Ok(()) };
        let max = i64::from(days) * 24 * 3600;
        match ttl_seconds {
            Some(s) if s <= max => Ok(()),
            _ => Err(ApiError::bad_field(
                field,
                format!("{field} must be at most {max} seconds: this tenant's policy limits API tokens to {days} days"),
            )),
        }
    }
}

async fn select(tx: &mut Tx, tenant: Uuid, lock: bool) -> ApiResult<Option<PolicyRow>> {
    let sql = format!(
        "SELECT password_min_length, token_max_ttl_days, version, updated_at FROM tenant_policies
          WHERE tenant_id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    Ok(sqlx::query_as(&sql).bind(tenant).fetch_optional(&mut **tx).await?)
}

fn wire(tenant: Uuid, row: Option<PolicyRow>) -> TenantPolicy {
    match row {
        Some(r) => TenantPolicy {
            tenant_id: tenant,
            password_min_length: r.password_min_length,
            token_max_ttl_days: r.token_max_ttl_days,
            version: r.version,
            updated_at: Some(r.updated_at),
        },
        None => TenantPolicy {
            tenant_id: tenant,
            password_min_length: password::MIN_LEN as i32,
            token_max_ttl_days: None,
            version: 0,
            updated_at: None,
        },
    }
}

/// The tenant of the caller's context (the routes are tenant-scoped, so the
/// check already refused a system-scope caller).
fn context_tenant(req: &Req) -> ApiResult<Uuid> {
    req.principal.context.tenant().ok_or(ApiError::NotFound { kind: "tenant_policy" })
}

/// Read the tenant's password and token policy.
#[utoipa::path(get, operation_id = "tenant_policy_get", path = "/v1/tenant-policy", tag = "tenants",
    responses((status = 200, body = TenantPolicy)), security(("bearer" = [])))]
pub async fn get(req: Req) -> ApiResult<Json<TenantPolicy>> {
    let tenant = context_tenant(&req)?;
    let mut tx = req.tx()?;
    let row = select(&mut tx, tenant, false).await?;
    tx.commit().await?;
    Ok(Json(wire(tenant, row)))
}

/// Change the tenant's password and token policy. Takes `If-Match` with the
/// policy's version (0 before the first change). Applies to passwords set and
/// tokens issued from now on.
#[utoipa::path(patch, operation_id = "tenant_policy_update", path = "/v1/tenant-policy", tag = "tenants",
    request_body = UpdateTenantPolicy,
    responses((status = 200, body = TenantPolicy), (status = 400), (status = 409)), security(("bearer" = [])))]
pub async fn update(
    req: Req,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UpdateTenantPolicy>,
) -> ApiResult<Json<TenantPolicy>> {
    if let Some(n) = body.password_min_length {
        if !PASSWORD_MIN_LENGTH.contains(&n) {
            return Err(ApiError::bad_field("password_min_length", "password_min_length must be between 8 and 128"));
        }
    }
    if let Some(Some(days)) = body.token_max_ttl_days {
        if !TOKEN_MAX_TTL_DAYS.contains(&days) {
            return Err(ApiError::bad_field(
                "token_max_ttl_days",
                "token_max_ttl_days must be between 1 and 732 (or null)",
            ));
        }
    }
    let tenant = context_tenant(&req)?;
    let mut tx = req.tx()?;
    let before = wire(tenant, select(&mut tx, tenant, true).await?);
    check_version(&if_match, before.version)?;
    let min = body.password_min_length.unwrap_or(before.password_min_length);
    let ttl = body.token_max_ttl_days.unwrap_or(before.token_max_ttl_days);
    let row: PolicyRow = sqlx::query_as(
        "INSERT INTO tenant_policies (tenant_id, password_min_length, token_max_ttl_days) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id) DO UPDATE SET password_min_length = EXCLUDED.password_min_length,
             token_max_ttl_days = EXCLUDED.token_max_ttl_days, version = tenant_policies.version + 1,
             updated_at = now()
         RETURNING password_min_length, token_max_ttl_days, version, updated_at",
    )
    .bind(tenant)
    .bind(min)
    .bind(ttl)
    .fetch_one(&mut *tx)
    .await?;
    crud::updated(tx, &req, "tenant_policy.update", "tenant_policy", tenant, &before, wire(tenant, Some(row))).await
}
