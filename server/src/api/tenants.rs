//! `/v1/tenants`: the tenant registry and its lifecycle (active → suspended →
//! active, and deleted: soft, gone from every list, purged after retention).
//! System scope manages every tenant; inside a tenant only its own record is
//! visible (RLS), and only readable.

use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use basalt_client::{CreateTenant, Page, SuspendAction, Tenant, TenantState, UpdateTenant};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::crud;
use super::extract::{check_version, page, ApiJson, ApiQuery, IdempotencyKey, IfMatch, PathId, Req};
use crate::audit::{self, Event};
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::validate;

const COLUMNS: &str = "id, name, display_name, state, suspend_action, version, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct TenantRow {
    id: Uuid,
    name: String,
    display_name: String,
    state: String,
    suspend_action: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<TenantRow> for Tenant {
    fn from(r: TenantRow) -> Tenant {
        Tenant {
            id: r.id,
            name: r.name,
            display_name: r.display_name,
            state: TenantState::parse(&r.state).unwrap_or(TenantState::Active),
            suspend_action: SuspendAction::parse(&r.suspend_action).unwrap_or(SuspendAction::Stop),
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A live (not deleted) tenant visible in `tx`, by id.
pub async fn fetch_live(tx: &mut Tx, id: Uuid, lock: bool) -> ApiResult<Tenant> {
    let sql = format!(
        "SELECT {COLUMNS} FROM tenants WHERE id = $1 AND state <> 'deleted'{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row: Option<TenantRow> = sqlx::query_as(&sql).bind(id).fetch_optional(&mut **tx).await?;
    row.map(Tenant::from).ok_or(ApiError::NotFound { kind: "tenant" })
}

/// Resolves "id or name" to a live tenant visible in `tx` (login, switch, tokens).
pub async fn resolve(tx: &mut Tx, ident: &str) -> ApiResult<Option<Tenant>> {
    let row: Option<TenantRow> = match Uuid::try_parse(ident) {
        Ok(id) => {
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM tenants WHERE id = $1 AND state <> 'deleted'"))
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?
        }
        Err(_) => {
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM tenants WHERE name = $1 AND state <> 'deleted'"))
                .bind(ident)
                .fetch_optional(&mut **tx)
                .await?
        }
    };
    Ok(row.map(Tenant::from))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TenantQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// Only the tenant with this exact name.
    pub name: Option<String>,
    /// Only tenants in this state (`active` or `suspended`).
    pub state: Option<String>,
}

/// List tenants (system scope).
#[utoipa::path(get, operation_id = "tenants_list", path = "/v1/tenants", tag = "tenants", params(TenantQuery),
    responses((status = 200, body = Page<Tenant>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<TenantQuery>) -> ApiResult<Json<Page<Tenant>>> {
    let params = super::extract::PageQuery { limit: q.limit, cursor: q.cursor }.params()?;
    let state = match q.state.as_deref() {
        None => None,
        Some(s @ ("active" | "suspended")) => Some(s),
        Some(_) => return Err(ApiError::bad_field("state", "state must be active or suspended")),
    };
    let mut tx = req.tx()?;
    let rows: Vec<TenantRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tenants
          WHERE state <> 'deleted' AND ($1::uuid IS NULL OR id > $1)
            AND ($2::text IS NULL OR name = $2) AND ($3::text IS NULL OR state = $3)
          ORDER BY id LIMIT $4"
    ))
    .bind(params.after)
    .bind(q.name)
    .bind(state)
    .bind(params.limit + 1)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let tenants: Vec<Tenant> = rows.into_iter().map(Tenant::from).collect();
    Ok(Json(page(tenants, params, |t| t.id)))
}

/// Create a tenant (system scope). Accepts `Idempotency-Key`.
#[utoipa::path(post, operation_id = "tenants_create", path = "/v1/tenants", tag = "tenants", request_body = CreateTenant,
    responses((status = 201, body = Tenant), (status = 400), (status = 409)), security(("bearer" = [])))]
pub async fn create(req: Req, key: IdempotencyKey, ApiJson(body): ApiJson<CreateTenant>) -> ApiResult<Response> {
    validate::name("name", &body.name)?;
    let display_name = body.display_name.clone().unwrap_or_default();
    validate::display_text("display_name", &display_name, 128)?;
    let state = body.state.unwrap_or(TenantState::Active);
    if state == TenantState::Deleted {
        return Err(ApiError::bad_field("state", "a new tenant is active or suspended"));
    }
    let suspend_action = body.suspend_action.unwrap_or(SuspendAction::Stop);

    let name = body.name.clone();
    crud::create(
        req.tx()?,
        &req,
        &key,
        &body,
        move |tx| {
            Box::pin(async move {
                let row: TenantRow = sqlx::query_as(&format!(
                    "INSERT INTO tenants (id, name, display_name, state, suspend_action)
                     VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
                ))
                .bind(Uuid::now_v7())
                .bind(name)
                .bind(display_name)
                .bind(state.as_str())
                .bind(suspend_action.as_str())
                .fetch_one(&mut **tx)
                .await?;
                Ok(Tenant::from(row))
            })
        },
        |t| Event::new("tenant.create", "tenant", Some(t.id)).details(json!({ "name": t.name, "state": t.state })),
    )
    .await
}

/// Read a tenant. Inside a tenant, only that tenant is visible.
#[utoipa::path(get, operation_id = "tenants_get", path = "/v1/tenants/{id}", tag = "tenants", params(("id" = Uuid, Path)),
    responses((status = 200, body = Tenant), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<Tenant>> {
    let mut tx = req.tx()?;
    let tenant = fetch_live(&mut tx, id, false).await?;
    tx.commit().await?;
    Ok(Json(tenant))
}

/// Update a tenant (system scope). `If-Match` guards against lost updates.
#[utoipa::path(patch, operation_id = "tenants_update", path = "/v1/tenants/{id}", tag = "tenants", params(("id" = Uuid, Path)),
    request_body = UpdateTenant,
    responses((status = 200, body = Tenant), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn update(
    req: Req,
    PathId(id): PathId,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UpdateTenant>,
) -> ApiResult<Json<Tenant>> {
    if let Some(d) = &body.display_name {
        validate::display_text("display_name", d, 128)?;
    }
    if body.state == Some(TenantState::Deleted) {
        return Err(ApiError::bad_field("state", "use DELETE to delete a tenant"));
    }
    let mut tx = req.tx()?;
    let current = fetch_live(&mut tx, id, true).await?;
    check_version(&if_match, current.version)?;
    let state = body.state.unwrap_or(current.state);
    let row: TenantRow = sqlx::query_as(&format!(
        "UPDATE tenants SET display_name = $2, state = $3, suspend_action = $4,
                version = version + 1, updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(body.display_name.as_deref().unwrap_or(&current.display_name))
    .bind(state.as_str())
    .bind(body.suspend_action.unwrap_or(current.suspend_action).as_str())
    .fetch_one(&mut *tx)
    .await?;
    let tenant = Tenant::from(row);
    audit::record(
        &mut tx,
        &req,
        Event::new("tenant.update", "tenant", Some(id)).details(json!({ "before": current, "after": tenant })),
    )
    .await?;
    tx.commit().await?;
    if tenant.state != current.state || req.state.federation.is_some() {
        vms_follow(&req);
    }
    Ok(Json(tenant))
}

/// The tenant's VMs follow a suspension (stopped, with the `stop` action) or a
/// resumption (started again) now, not at the next periodic reconcile pass. At a
/// global controller the tenant's new state is pushed to every region now
/// (each region's reconciler then does the same there).
fn vms_follow(req: &Req) {
    if let Some(fed) = &req.state.federation {
        fed.notify_changed();
        return;
    }
    let state = req.state.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::compute::reconciler::reconcile_once(&state, false).await {
            tracing::warn!(error = %e, "reconcile after a tenant transition failed; the next pass retries");
        }
    });
}

/// Moves a live tenant to `to` (suspend or resume), audited with the transition.
async fn transition(req: &Req, id: Uuid, to: TenantState) -> ApiResult<Json<Tenant>> {
    let mut tx = req.tx()?;
    let current = fetch_live(&mut tx, id, true).await?;
    if current.state == to {
        tx.commit().await?;
        return Ok(Json(current));
    }
    let row: TenantRow = sqlx::query_as(&format!(
        "UPDATE tenants SET state = $2, version = version + 1, updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(to.as_str())
    .fetch_one(&mut *tx)
    .await?;
    let tenant = Tenant::from(row);
    let action = if to == TenantState::Suspended { "tenant.suspend" } else { "tenant.resume" };
    audit::record(
        &mut tx,
        req,
        Event::new(action, "tenant", Some(id))
            .details(json!({ "from": current.state, "to": tenant.state, "suspend_action": tenant.suspend_action })),
    )
    .await?;
    tx.commit().await?;
    vms_follow(req);
    Ok(Json(tenant))
}

/// Suspend a tenant: its callers can still read, every change answers 423.
#[utoipa::path(post, operation_id = "tenants_suspend", path = "/v1/tenants/{id}/suspend", tag = "tenants", params(("id" = Uuid, Path)),
    responses((status = 200, body = Tenant), (status = 404)), security(("bearer" = [])))]
pub async fn suspend(req: Req, PathId(id): PathId) -> ApiResult<Json<Tenant>> {
    transition(&req, id, TenantState::Suspended).await
}

/// Resume a suspended tenant.
#[utoipa::path(post, operation_id = "tenants_resume", path = "/v1/tenants/{id}/resume", tag = "tenants", params(("id" = Uuid, Path)),
    responses((status = 200, body = Tenant), (status = 404)), security(("bearer" = [])))]
pub async fn resume(req: Req, PathId(id): PathId) -> ApiResult<Json<Tenant>> {
    transition(&req, id, TenantState::Active).await
}

/// Delete a tenant: soft at once (gone from lists and lookups, its credentials stop
/// working), purged with everything it owns after the retention period.
#[utoipa::path(delete, operation_id = "tenants_delete", path = "/v1/tenants/{id}", tag = "tenants", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn delete(req: Req, PathId(id): PathId, if_match: IfMatch) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let current = fetch_live(&mut tx, id, true).await?;
    check_version(&if_match, current.version)?;
    sqlx::query(
        "UPDATE tenants SET state = 'deleted', deleted_at = now(),
                purge_after = now() + make_interval(days => $2),
                version = version + 1, updated_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(req.state.config.tenant_retention_days as i32)
    .execute(&mut *tx)
    .await?;
    crate::idempotency::forget_object(&mut tx, id).await?;
    audit::record(
        &mut tx,
        &req,
        Event::new("tenant.delete", "tenant", Some(id)).details(json!({ "name": current.name, "from": current.state })),
    )
    .await?;
    tx.commit().await?;
    vms_follow(&req);
    Ok(StatusCode::NO_CONTENT)
}
