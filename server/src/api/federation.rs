//! `/v1/federation/*`: the service calls between the global controller and its
//! regions (signed, never reachable with a user credential), and
//! `/v1/tenants/{id}/regions`: which regions a tenant is entitled to.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use basalt_client::{Page, Region};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::extract::{ApiJson, PathId, PathIds, Req};
use crate::app::AppState;
use crate::audit::{self, Event};
use crate::db::DbScope;
use crate::error::{ApiError, ApiResult};
use crate::federation::identity::ForwardedPrincipal;
use crate::federation::signing::{Verified, PRINCIPAL};
use crate::federation::sync::{self, Registered, Registration, SyncAnswer, SyncPayload};
use crate::federation::{Federation, Mode};

fn federation(state: &AppState, mode: Mode) -> ApiResult<&Federation> {
    state.federation.as_deref().filter(|f| f.mode() == mode).ok_or(ApiError::NotFound { kind: "route" })
}

/// A region registers (or re-registers after a restart) with the controller.
/// A signed service call (docs/federation.md), not for users.
#[utoipa::path(post, operation_id = "federation_register", path = "/v1/federation/register", tag = "federation",
    request_body = Registration, responses((status = 200, body = Registered), (status = 401), (status = 403)))]
pub async fn register(
    State(state): State<AppState>,
    Extension(verified): Extension<Verified>,
    ApiJson(body): ApiJson<Registration>,
) -> ApiResult<Json<Registered>> {
    let fed = federation(&state, Mode::Global)?;
    if verified.region != body.name {
        return Err(ApiError::Forbidden(format!(
            "a call signed for region {} cannot register {}",
            verified.region, body.name
        )));
    }
    crate::validate::name("name", &body.name)?;
    super::regions::check_endpoint(&body.endpoint)?;
    let mut tx = state.db.begin(DbScope::System, None, true).await?;
    let (id,): (Uuid,) = sqlx::query_as(
        "INSERT INTO regions (id, name, endpoint, key_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT ON CONSTRAINT regions_tenant_name DO UPDATE SET key_id = EXCLUDED.key_id,
             endpoint = EXCLUDED.endpoint, updated_at = now(),
             version = regions.version + CASE WHEN regions.endpoint = EXCLUDED.endpoint THEN 0 ELSE 1 END
         RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(&body.name)
    .bind(&body.endpoint)
    .bind(&verified.key_id)
    .fetch_one(&mut *tx)
    .await?;
    let details = json!({ "endpoint": body.endpoint, "key_id": verified.key_id });
    audit::record_service(
        &mut tx,
        None,
        &format!("region:{}", body.name),
        Event::new("region.register", "region", Some(id)).details(details),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(region = %body.name, key_id = %verified.key_id, "region registered");
    fed.notify_changed();
    Ok(Json(Registered {
        region_id: id,
        jwt_public_key: base64::engine::general_purpose::STANDARD.encode(state.keys.public_key()),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    token: String,
}

/// A region asks who holds a credential and what it may do there. A tenant
/// that is not entitled to the asking region is refused here too. A signed service call.
#[utoipa::path(post, operation_id = "federation_resolve", path = "/v1/federation/resolve", tag = "federation",
    request_body = ResolveRequest, responses((status = 200, body = ForwardedPrincipal), (status = 401), (status = 403)))]
pub async fn resolve(
    State(state): State<AppState>,
    Extension(verified): Extension<Verified>,
    ApiJson(body): ApiJson<ResolveRequest>,
) -> ApiResult<Json<ForwardedPrincipal>> {
    federation(&state, Mode::Global)?;
    let principal = crate::auth::authenticate(&state, &body.token).await?;
    let (mut tx, rows) =
        state.db.begin_with_grants(principal.context.db_scope(), Some(principal.user_id), false).await?;
    if let Some(tenant) = principal.context.tenant() {
        let (entitled,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM tenant_regions e JOIN regions r ON r.id = e.region_id
                             WHERE e.tenant_id = $1 AND r.name = $2)",
        )
        .bind(tenant)
        .bind(&verified.region)
        .fetch_one(&mut *tx)
        .await?;
        if !entitled {
            return Err(ApiError::Forbidden(format!("the tenant is not entitled to region {}", verified.region)));
        }
    }
    tx.commit().await?;
    Ok(Json(ForwardedPrincipal::new(&principal, &rows)))
}

/// The controller's push of tenant states to this region (and its health check).
/// A signed service call.
#[utoipa::path(post, operation_id = "federation_sync", path = "/v1/federation/sync", tag = "federation",
    request_body = SyncPayload, responses((status = 200, body = SyncAnswer), (status = 401)))]
pub async fn sync(
    State(state): State<AppState>,
    Extension(_verified): Extension<Verified>,
    ApiJson(body): ApiJson<SyncPayload>,
) -> ApiResult<Json<SyncAnswer>> {
    let fed = federation(&state, Mode::Region)?;
    let global = fed.config.global_url.clone().unwrap_or_default();
    let (answer, key) = sync::apply(&state.db, &global, &body).await?;
    fed.set_global_tokens(&key);
    if answer.changed > 0 {
        // Suspensions reach this region's VMs now, not at the next pass.
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::compute::reconciler::reconcile_once(&state, false).await {
                tracing::warn!(error = %e, "reconcile after a tenant push failed; the next pass retries");
            }
        });
    }
    Ok(Json(answer))
}

/// Does this region hold object `id`, visible in the forwarded caller's context?
/// Answers its kind, or 404. Only the controller may ask (it routes by this):
/// a signed service call carrying the caller in `X-Basalt-Principal`.
#[utoipa::path(get, operation_id = "federation_object", path = "/v1/federation/objects/{id}", tag = "federation",
    params(("id" = Uuid, Path)), responses((status = 200, description = "`{\"kind\": ...}`"), (status = 401), (status = 404)))]
pub async fn object(
    State(state): State<AppState>,
    Extension(_verified): Extension<Verified>,
    headers: axum::http::HeaderMap,
    PathId(id): PathId,
) -> ApiResult<Json<serde_json::Value>> {
    federation(&state, Mode::Region)?;
    let caller = headers
        .get(PRINCIPAL)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::Unauthenticated("a lookup must name its caller".into()))?;
    let caller = ForwardedPrincipal::decode(caller)?;
    let scope = caller.tenant.map_or(DbScope::System, DbScope::Tenant);
    let mut tx = match state.db.begin_delegated(scope, Some(caller.user_id), false).await.map_err(ApiError::from) {
        Ok(tx) => tx,
        // A tenant not entitled to (or unknown in) this region: nothing of it is
        // here. Anything else (the database down) stays an error, so the
        // controller reports this region as silent rather than the object absent.
        Err(ApiError::Forbidden(_) | ApiError::Unauthenticated(_)) => {
            return Err(ApiError::NotFound { kind: "object" })
        }
        Err(e) => return Err(e),
    };
    let kind: Option<(String,)> = sqlx::query_as(
        "SELECT kind FROM (
             SELECT id, 'cluster' AS kind FROM clusters UNION ALL SELECT id, 'quota' FROM quotas
             UNION ALL SELECT id, 'template' FROM templates UNION ALL SELECT id, 'vm' FROM vms
             UNION ALL SELECT id, 'operation' FROM operations
             UNION ALL SELECT id, 'placement_group' FROM placement_groups
             UNION ALL SELECT id, 'quota_request' FROM quota_requests
             UNION ALL SELECT id, 'network' FROM networks UNION ALL SELECT id, 'volume' FROM volumes
             UNION ALL SELECT id, 'ip_pool' FROM ip_pools UNION ALL SELECT id, 'floating_ip' FROM floating_ips
             UNION ALL SELECT id, 'snapshot_schedule' FROM snapshot_schedules
             UNION ALL SELECT id, 'maintenance_window' FROM maintenance_windows
             UNION ALL SELECT id, 'security_group' FROM security_groups) o
          WHERE o.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    let (kind,) = kind.ok_or(ApiError::NotFound { kind: "object" })?;
    Ok(Json(json!({ "kind": kind })))
}

// --- Entitlements -----------------------------------------------------------

/// The regions a tenant is entitled to.
#[utoipa::path(get, operation_id = "entitlements_list", path = "/v1/tenants/{id}/regions", tag = "tenants", params(("id" = Uuid, Path)),
    responses((status = 200, body = Page<Region>), (status = 404)), security(("bearer" = [])))]
pub async fn list(req: Req, PathId(tenant): PathId) -> ApiResult<Json<Page<Region>>> {
    let mut tx = req.tx()?;
    super::tenants::fetch_live(&mut tx, tenant, false).await?;
    let rows: Vec<super::regions::RegionRow> = sqlx::query_as(&format!(
        "SELECT {} FROM regions WHERE id IN (SELECT region_id FROM tenant_regions WHERE tenant_id = $1) ORDER BY id",
        super::regions::COLUMNS
    ))
    .bind(tenant)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(Page { items: rows.into_iter().map(Region::from).collect(), next_cursor: None }))
}

/// Entitle a tenant to a region (idempotent). At a global controller the tenant
/// is pushed to the region at once.
#[utoipa::path(put, operation_id = "entitlements_grant", path = "/v1/tenants/{id}/regions/{region_id}", tag = "tenants",
    params(("id" = Uuid, Path), ("region_id" = Uuid, Path)), responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn grant(req: Req, PathIds(tenant, region): PathIds) -> ApiResult<StatusCode> {
    change(req, tenant, region, true).await
}

/// Withdraw a tenant's entitlement to a region: the region refuses the tenant
/// from its next push on (its objects there stay, untouched).
#[utoipa::path(delete, operation_id = "entitlements_revoke", path = "/v1/tenants/{id}/regions/{region_id}", tag = "tenants",
    params(("id" = Uuid, Path), ("region_id" = Uuid, Path)), responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn revoke(req: Req, PathIds(tenant, region): PathIds) -> ApiResult<StatusCode> {
    change(req, tenant, region, false).await
}

async fn change(req: Req, tenant: Uuid, region: Uuid, entitle: bool) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    super::tenants::fetch_live(&mut tx, tenant, false).await?;
    let (exists,): (bool,) =
        sqlx::query_as("SELECT EXISTS (SELECT 1 FROM regions WHERE id = $1)").bind(region).fetch_one(&mut *tx).await?;
    if !exists {
        return Err(ApiError::NotFound { kind: "region" });
    }
    let sql = if entitle {
        "INSERT INTO tenant_regions (tenant_id, region_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM tenant_regions WHERE tenant_id = $1 AND region_id = $2"
    };
    let changed = sqlx::query(sql).bind(tenant).bind(region).execute(&mut *tx).await?.rows_affected() > 0;
    if changed {
        let action = if entitle { "tenant.entitle" } else { "tenant.revoke_entitlement" };
        audit::record(
            &mut tx,
            &req,
            Event::new(action, "tenant", Some(tenant)).details(json!({ "region_id": region })),
        )
        .await?;
    }
    tx.commit().await?;
    if changed {
        if let Some(fed) = &req.state.federation {
            fed.notify_changed();
        }
    }
    Ok(StatusCode::NO_CONTENT)
}
