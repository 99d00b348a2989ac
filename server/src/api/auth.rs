//! `/v1/auth/login`, `/v1/auth/switch-tenant` and `/v1/me`.
//!
//! Login checks a password and issues a user token in the user's own context
//! (system scope for provider staff). Switching tenant is a deliberate token
//! exchange: a new token carrying the target tenant, recorded in the audit trail of
//! the tenant entered (and of the system, when provider staff leave it).

use axum::extract::State;
use axum::Json;
use basalt_client::{LoginRequest, Me, Scope, SwitchTenantRequest, TokenResponse};
use serde_json::json;
use uuid::Uuid;

use super::extract::{ApiJson, Req};
use crate::app::AppState;
use crate::audit::{self, Event};
use crate::auth::{password, Context};
use crate::db::{DbScope, Tx};
use crate::error::{ApiError, ApiResult};

#[derive(sqlx::FromRow)]
struct LoginRow {
    id: Uuid,
    username: String,
    tenant_id: Option<Uuid>,
    password_hash: Option<String>,
    disabled: bool,
}

/// Exchange a username and password for a user token.
#[utoipa::path(post, operation_id = "auth_login", path = "/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401)))]
pub async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let denied = || ApiError::Unauthenticated("wrong username, password or tenant".into());
    if body.username.is_empty() || body.username.len() > 64 || body.password.len() > password::MAX_LEN * 4 {
        return Err(denied());
    }
    // The tenant name is resolved in the auth scope (the registry only); the user
    // is then looked up inside that tenant, or among provider staff.
    let tenant = match &body.tenant {
        Some(ident) => {
            let mut tx = state.db.begin(DbScope::Auth, None, false).await?;
            let found = super::tenants::resolve(&mut tx, ident).await?;
            tx.commit().await?;
            match found {
                Some(t) => Some(t.id),
                None => {
                    // No tenant-name oracle: the same time as a real check, and the
                    // same throttle (counted at system scope under the name typed),
                    // so a 429 never tells an existing tenant from a missing one.
                    let key = unknown_tenant_key(ident, &body.username);
                    let mut tx = state.db.begin(DbScope::System, None, false).await?;
                    throttle(&mut tx, None, &key).await?;
                    tx.commit().await?;
                    let _ = password::verify(body.password.clone(), None).await;
                    record_attempt(&state, DbScope::System, &key, false).await?;
                    return Err(denied());
                }
            }
        }
        None => None,
    };
    let scope = tenant.map_or(DbScope::System, DbScope::Tenant);
    let mut tx = state.db.begin(scope, None, false).await?;
    throttle(&mut tx, tenant, &body.username).await?;
    let row: Option<LoginRow> = sqlx::query_as(
        "SELECT id, username, tenant_id, password_hash, disabled FROM users
          WHERE tenant_id IS NOT DISTINCT FROM $1 AND username = $2",
    )
    .bind(tenant)
    .bind(&body.username)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    let stored = row.as_ref().and_then(|r| r.password_hash.clone());
    let ok = password::verify(body.password, stored).await?;
    record_attempt(&state, scope, &body.username, ok).await?;
    let user = match row {
        Some(u) if ok && !u.disabled => u,
        _ => return Err(denied()),
    };
    let context = match user.tenant_id {
        Some(t) => Context::Tenant(t),
        None => Context::System,
    };
    let (token, expires_at) = state.keys.issue(user.id, &user.username, user.tenant_id, context)?;
    tracing::info!(user = %user.id, "login");
    Ok(Json(TokenResponse { token, expires_at, tenant_id: context.tenant() }))
}

/// The throttle key of a login naming a tenant that does not exist: the username
/// and the (bounded) name typed. No username holds a space, so it never counts
/// against a real provider staff user.
fn unknown_tenant_key(ident: &str, username: &str) -> String {
    let ident: String = ident.chars().take(64).collect();
    format!("{username} (tenant {ident})")
}

/// Failed logins allowed per username in [`THROTTLE_WINDOW_MINUTES`].
const MAX_FAILURES: i64 = 10;
const THROTTLE_WINDOW_MINUTES: i32 = 15;

/// Refuses a login (429) after too many recent failures for this username, before
/// any password is checked: a brute-force run gets a handful of guesses per window.
pub(super) async fn throttle(tx: &mut Tx, tenant: Option<Uuid>, username: &str) -> ApiResult<()> {
    let (failures,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM login_failures
          WHERE tenant_id IS NOT DISTINCT FROM $1 AND username = $2
            AND at > now() - make_interval(mins => $3)",
    )
    .bind(tenant)
    .bind(username)
    .bind(THROTTLE_WINDOW_MINUTES)
    .fetch_one(&mut **tx)
    .await?;
    if failures >= MAX_FAILURES {
        return Err(ApiError::TooManyRequests {
            message: format!("too many failed logins for this user; try again in {THROTTLE_WINDOW_MINUTES} minutes"),
            retry_after: THROTTLE_WINDOW_MINUTES as u64 * 60,
        });
    }
    Ok(())
}

/// Counts a failed login, or clears the count after a successful one.
pub(super) async fn record_attempt(state: &AppState, scope: DbScope, username: &str, ok: bool) -> ApiResult<()> {
    let mut tx = state.db.begin(scope, None, false).await?;
    if ok {
        sqlx::query("DELETE FROM login_failures WHERE username = $1").bind(username).execute(&mut *tx).await?;
    } else {
        sqlx::query("INSERT INTO login_failures (id, tenant_id, username) VALUES ($1, $2, $3)")
            .bind(Uuid::now_v7())
            .bind(scope.tenant())
            .bind(username)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Exchange the caller's credential for a token acting inside another tenant.
#[utoipa::path(post, operation_id = "auth_switch_tenant", path = "/v1/auth/switch-tenant", tag = "auth", request_body = SwitchTenantRequest,
    responses((status = 200, body = TokenResponse), (status = 404)), security(("bearer" = [])))]
pub async fn switch_tenant(req: Req, ApiJson(body): ApiJson<SwitchTenantRequest>) -> ApiResult<Json<TokenResponse>> {
    let p = &req.principal;
    // Which tenants may this caller enter? Provider staff: any live tenant.
    // Tenant users: their own (membership in other tenants comes with role bindings).
    let lookup_scope = match p.home_tenant {
        None => DbScope::System,
        Some(home) => DbScope::Tenant(home),
    };
    let mut tx = req.state.db.begin(lookup_scope, Some(p.user_id), false).await?;
    let target = super::tenants::resolve(&mut tx, &body.tenant).await?;
    tx.commit().await?;
    let target = target.ok_or(ApiError::NotFound { kind: "tenant" })?;

    // Enter the target (a deleted tenant fails here) and record the switch there.
    let mut tx = req.state.db.begin(DbScope::Tenant(target.id), Some(p.user_id), false).await?;
    let from = p.context.tenant();
    let event = |from: Option<Uuid>| {
        Event::new("tenant.switch", "tenant", Some(target.id))
            .details(json!({ "from_tenant": from, "to_tenant": target.id, "user_id": p.user_id }))
    };
    // The tenant's own trail never names another tenant: where staff came from
    // (another tenant's context) is recorded in the system's trail only.
    audit::record_in(&mut tx, Some(target.id), &req, event(from.filter(|f| *f == target.id))).await?;
    tx.commit().await?;
    if p.is_provider_staff() {
        let mut tx = req.state.db.begin(DbScope::System, Some(p.user_id), false).await?;
        audit::record_in(&mut tx, None, &req, event(from)).await?;
        tx.commit().await?;
    }
    let context = Context::Tenant(target.id);
    let (token, expires_at) = req.state.keys.issue(p.user_id, &p.username, p.home_tenant, context)?;
    Ok(Json(TokenResponse { token, expires_at, tenant_id: Some(target.id) }))
}

/// The caller, its context and its effective permissions.
#[utoipa::path(get, operation_id = "auth_me", path = "/v1/me", tag = "auth", responses((status = 200, body = Me), (status = 401)),
    security(("bearer" = [])))]
pub async fn me(req: Req) -> ApiResult<Json<Me>> {
    let p = &req.principal;
    // The caller's own record, read in the auth scope: provider staff who switched
    // into a tenant are not rows of that tenant.
    let mut tx = req.state.db.begin(DbScope::Auth, Some(p.user_id), false).await?;
    let user = super::users::fetch(&mut tx, p.user_id, false).await.ok().filter(|u| !u.disabled);
    tx.commit().await?;
    let user = user.ok_or_else(|| ApiError::Unauthenticated("the user no longer exists".into()))?;
    let mut tx = req.tx()?;
    let tenant_name = match p.context {
        Context::System => None,
        Context::Tenant(t) => super::tenants::resolve(&mut tx, &t.to_string()).await?.map(|t| t.name),
    };
    // The regions the caller may use (RLS: a tenant's entitled ones).
    let regions: Vec<(String,)> = sqlx::query_as("SELECT name FROM regions ORDER BY name").fetch_all(&mut *tx).await?;
    tx.commit().await?;
    let permissions = req.grants.effective().into_iter().map(|x| x.name().to_string()).collect();
    Ok(Json(Me {
        user,
        scope: if p.context == Context::System { Scope::System } else { Scope::Tenant },
        tenant_id: p.context.tenant(),
        tenant_name,
        permissions,
        regions: regions.into_iter().map(|(n,)| n).collect(),
    }))
}
