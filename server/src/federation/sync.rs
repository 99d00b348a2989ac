//! Tenant state from the controller to a region.
//!
//! The controller sends each region the full state of the tenants entitled to it
//! (and its token key) on every change and with every health check; the region
//! applies it in one transaction and is then "confirmed" for two health
//! intervals. A region that misses its confirmations refuses tenants' mutations
//! (`basalt_check_tenant`, BS503) instead of acting on a tenant state that may be
//! stale: a suspension reaches every region within one interval, or the region
//! stops accepting changes.

use base64::Engine;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::{Db, DbScope};
use crate::error::ApiError;

/// One tenant as a region needs it.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PushedTenant {
    pub id: Uuid,
    pub name: String,
    pub display_name: String,
    pub state: String,
    pub suspend_action: String,
}

/// What the controller pushes (`POST /v1/federation/sync`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncPayload {
    pub region_id: Uuid,
    pub region_name: String,
    /// How long this push confirms the region's tenant states.
    pub confirm_seconds: u64,
    /// The controller's Ed25519 public key (base64, raw 32 bytes).
    pub jwt_public_key: String,
    pub tenants: Vec<PushedTenant>,
}

/// What the region answers.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SyncAnswer {
    pub live_vms: i64,
    pub tenants: usize,
    /// Tenant rows this push inserted or changed.
    pub changed: u64,
}

/// The controller side: the state for one region.
pub async fn build(
    db: &Db,
    region_id: Uuid,
    region_name: &str,
    confirm_seconds: u64,
    jwt_key: &[u8],
) -> Result<SyncPayload, ApiError> {
    let mut tx = db.begin(DbScope::System, None, false).await?;
    let tenants: Vec<PushedTenant> = sqlx::query_as(
        "SELECT t.id, t.name, t.display_name, t.state, t.suspend_action
           FROM tenants t JOIN tenant_regions e ON e.tenant_id = t.id
          WHERE e.region_id = $1 ORDER BY t.id",
    )
    .bind(region_id)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(SyncPayload {
        region_id,
        region_name: region_name.to_string(),
        confirm_seconds,
        jwt_public_key: base64::engine::general_purpose::STANDARD.encode(jwt_key),
        tenants,
    })
}

/// The region side: apply a push, in one transaction.
pub async fn apply(db: &Db, global_url: &str, p: &SyncPayload) -> Result<(SyncAnswer, Vec<u8>), ApiError> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(&p.jwt_public_key)
        .ok()
        .filter(|k| k.len() == 32)
        .ok_or_else(|| ApiError::bad_field("jwt_public_key", "must be a base64 Ed25519 public key"))?;
    let mut tx = db.begin(DbScope::System, None, true).await?;
    ensure_region_row(&mut tx, p.region_id, &p.region_name, "").await?;
    let col = |f: fn(&PushedTenant) -> String| p.tenants.iter().map(f).collect::<Vec<String>>();
    let ids: Vec<Uuid> = p.tenants.iter().map(|t| t.id).collect();
    let changed = sqlx::query(
        "INSERT INTO tenants (id, name, display_name, state, suspend_action, deleted_at)
         SELECT x.id, x.name, x.display_name, x.state, x.suspend_action,
                CASE WHEN x.state = 'deleted' THEN now() END
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[])
                AS x(id, name, display_name, state, suspend_action)
         ON CONFLICT (id) DO UPDATE SET
             name = EXCLUDED.name, display_name = EXCLUDED.display_name, state = EXCLUDED.state,
             suspend_action = EXCLUDED.suspend_action,
             deleted_at = CASE WHEN EXCLUDED.state = 'deleted' THEN coalesce(tenants.deleted_at, now()) END,
             version = tenants.version + 1, updated_at = now()
         WHERE (tenants.name, tenants.display_name, tenants.state, tenants.suspend_action)
               IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.display_name, EXCLUDED.state, EXCLUDED.suspend_action)",
    )
    .bind(&ids)
    .bind(col(|t| t.name.clone()))
    .bind(col(|t| t.display_name.clone()))
    .bind(col(|t| t.state.clone()))
    .bind(col(|t| t.suspend_action.clone()))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    // Entitlements: exactly the pushed tenants may use this region.
    sqlx::query("DELETE FROM tenant_regions WHERE region_id = $1 AND NOT (tenant_id = ANY($2))")
        .bind(p.region_id)
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO tenant_regions (tenant_id, region_id) SELECT unnest($2::uuid[]), $1 ON CONFLICT DO NOTHING",
    )
    .bind(p.region_id)
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO federation_state (region_id, region_name, global_url, global_jwt_key, confirmed_until)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
         ON CONFLICT (id) DO UPDATE SET region_id = EXCLUDED.region_id, region_name = EXCLUDED.region_name,
             global_url = EXCLUDED.global_url, global_jwt_key = EXCLUDED.global_jwt_key,
             confirmed_until = EXCLUDED.confirmed_until, updated_at = now()",
    )
    .bind(p.region_id)
    .bind(&p.region_name)
    .bind(global_url)
    .bind(&key)
    .bind(p.confirm_seconds as f64)
    .execute(&mut *tx)
    .await?;
    // Quotas are the one tenant table the system context reads: their counters
    // are the region's live VMs.
    let (live_vms,): (i64,) =
        sqlx::query_as("SELECT coalesce(sum(vms_used), 0)::bigint FROM quotas").fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok((SyncAnswer { live_vms, tenants: ids.len(), changed }, key))
}

/// Makes sure the region's own registry row exists under the controller's id
/// (what clusters reference); a first registration also records the endpoint.
pub async fn ensure_region_row(tx: &mut crate::db::Tx, id: Uuid, name: &str, endpoint: &str) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO regions (id, name, endpoint, health) VALUES ($1, $2, $3, 'healthy')
         ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,
             endpoint = CASE WHEN EXCLUDED.endpoint = '' THEN regions.endpoint ELSE EXCLUDED.endpoint END",
    )
    .bind(id)
    .bind(name)
    .bind(endpoint)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A region's registration with the controller, retried until it is answered.
pub async fn register_until_done(state: crate::app::AppState, fed: std::sync::Arc<super::Federation>) {
    let mut delay = std::time::Duration::from_millis(200);
    loop {
        match register_once(&state, &fed).await {
            Ok(id) => {
                tracing::info!(region = ?fed.config.region_name, id = %id, "registered with the global controller");
                return;
            }
            Err(e) => tracing::warn!(error = %e, "registration with the global controller failed; retrying"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(std::time::Duration::from_secs(10));
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub name: String,
    pub endpoint: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Registered {
    pub region_id: Uuid,
    pub jwt_public_key: String,
}

/// Registers once; answers the region's id in the controller's registry.
async fn register_once(state: &crate::app::AppState, fed: &super::Federation) -> Result<Uuid, String> {
    let name = fed.config.region_name.clone().unwrap_or_default();
    let endpoint = fed.config.public_url.clone().unwrap_or_default();
    let global = fed.config.global_url.clone().unwrap_or_default();
    let body = serde_json::to_vec(&Registration { name: name.clone(), endpoint: endpoint.clone() })
        .map_err(|e| e.to_string())?;
    let resp = fed
        .call(&global, &name, axum::http::Method::POST, "/v1/federation/register", Default::default(), body)
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("the controller answered {status}: {text}"));
    }
    let reg: Registered = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let key = base64::engine::general_purpose::STANDARD.decode(&reg.jwt_public_key).map_err(|e| e.to_string())?;
    let mut tx = state.db.begin(DbScope::System, None, true).await.map_err(|e| e.to_string())?;
    ensure_region_row(&mut tx, reg.region_id, &name, &endpoint).await.map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    fed.set_global_tokens(&key);
    Ok(reg.region_id)
}

/// At a region's start: the controller's key an earlier run learned, so it
/// verifies tokens before it has re-registered.
pub async fn load_saved(db: &Db, fed: &super::Federation) -> Result<(), ApiError> {
    let mut tx = db.begin(DbScope::System, None, false).await?;
    let row: Option<(String, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT region_name, global_jwt_key FROM federation_state").fetch_optional(&mut *tx).await?;
    tx.commit().await?;
    if let Some((name, Some(key))) = row {
        if Some(&name) == fed.config.region_name.as_ref() {
            fed.set_global_tokens(&key);
        }
    }
    Ok(())
}
