//! `/v1/regions`: the region registry. Provider staff register and manage
//! regions; tenants list them by name and availability (no endpoint).
//! A standalone install has one region, `local`, created at start.

use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use basalt_client::{CreateRegion, Page, Region, UpdateRegion};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::crud;
use super::extract::{check_version, ApiJson, ApiQuery, IdempotencyKey, IfMatch, PageQuery, PathId, Req};
use crate::audit::Event;
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::validate;

pub const COLUMNS: &str = "id, name, endpoint, health, version, created_at, updated_at, last_seen_at, last_error";

#[derive(sqlx::FromRow)]
pub struct RegionRow {
    id: Uuid,
    name: String,
    endpoint: String,
    health: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_seen_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
}

impl From<RegionRow> for Region {
    fn from(r: RegionRow) -> Region {
        Region {
            id: r.id,
            name: r.name,
            endpoint: r.endpoint,
            health: r.health,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            last_seen_at: r.last_seen_at,
            last_error: r.last_error,
        }
    }
}

/// Tenants see a region's name and availability, not where its gateway is.
fn view(req: &Req, mut region: Region) -> Region {
    if req.principal.context.tenant().is_some() {
        region.endpoint.clear();
        region.last_error = None;
    }
    region
}

pub fn check_endpoint(endpoint: &str) -> ApiResult<()> {
    let ok = (endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        && endpoint.len() <= 512
        && endpoint.split_once("://").is_some_and(|(_, rest)| !rest.is_empty())
        && !endpoint.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control());
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_field("endpoint", "endpoint must be an http:// or https:// URL of at most 512 characters"))
    }
}

/// A region by id or name, visible in `tx`.
pub async fn resolve(tx: &mut Tx, ident: &str) -> ApiResult<Option<Region>> {
    let row: Option<RegionRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM regions WHERE id::text = $1 OR name = $1"))
            .bind(ident)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(row.map(Region::from))
}

/// The only region, when there is exactly one (what a cluster without a region joins).
pub async fn only(tx: &mut Tx) -> ApiResult<Option<Region>> {
    let rows: Vec<RegionRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM regions ORDER BY id LIMIT 2")).fetch_all(&mut **tx).await?;
    Ok(if rows.len() == 1 { rows.into_iter().next().map(Region::from) } else { None })
}

/// Makes sure the standalone region `local` exists (at start; idempotent).
pub async fn ensure_local(db: &crate::db::Db, endpoint: &str) -> Result<(), sqlx::Error> {
    let mut tx = db.begin(crate::db::DbScope::System, None, true).await?;
    sqlx::query(
        "INSERT INTO regions (id, name, endpoint, health) SELECT $1, 'local', $2, 'healthy'
          WHERE NOT EXISTS (SELECT 1 FROM regions)",
    )
    .bind(Uuid::now_v7())
    .bind(endpoint)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// List regions.
#[utoipa::path(get, operation_id = "regions_list", path = "/v1/regions", tag = "compute", params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Region>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<Region>>> {
    let Json(mut page) = crud::list::<RegionRow, Region>(&req, &q, "regions", COLUMNS).await?;
    page.items = page.items.into_iter().map(|r| view(&req, r)).collect();
    Ok(Json(page))
}

/// Register a region (system scope). Accepts `Idempotency-Key`.
#[utoipa::path(post, operation_id = "regions_create", path = "/v1/regions", tag = "compute", request_body = CreateRegion,
    responses((status = 201, body = Region), (status = 400), (status = 409)), security(("bearer" = [])))]
pub async fn create(req: Req, key: IdempotencyKey, ApiJson(body): ApiJson<CreateRegion>) -> ApiResult<Response> {
    validate::name("name", &body.name)?;
    check_endpoint(&body.endpoint)?;
    let (name, endpoint) = (body.name.clone(), body.endpoint.clone());
    crud::create(
        req.tx()?,
        &req,
        &key,
        &body,
        move |tx| {
            Box::pin(async move {
                let row: RegionRow = sqlx::query_as(&format!(
                    "INSERT INTO regions (id, name, endpoint) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
                ))
                .bind(Uuid::now_v7())
                .bind(name)
                .bind(endpoint)
                .fetch_one(&mut **tx)
                .await?;
                Ok(Region::from(row))
            })
        },
        |r| Event::new("region.register", "region", Some(r.id)).details(json!({ "after": r })),
    )
    .await
}

/// Read a region.
#[utoipa::path(get, operation_id = "regions_get", path = "/v1/regions/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = Region), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<Region>> {
    let Json(region) = crud::get::<RegionRow, Region>(&req, "regions", COLUMNS, id, "region").await?;
    Ok(Json(view(&req, region)))
}

/// Change a region's endpoint (system scope).
#[utoipa::path(patch, operation_id = "regions_update", path = "/v1/regions/{id}", tag = "compute", params(("id" = Uuid, Path)),
    request_body = UpdateRegion, responses((status = 200, body = Region), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn update(
    req: Req,
    PathId(id): PathId,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UpdateRegion>,
) -> ApiResult<Json<Region>> {
    if let Some(e) = &body.endpoint {
        check_endpoint(e)?;
    }
    let mut tx = req.tx()?;
    let current: Region = crud::fetch::<RegionRow, _>(&mut tx, "regions", COLUMNS, id, true, "region").await?;
    check_version(&if_match, current.version)?;
    let row: RegionRow = sqlx::query_as(&format!(
        "UPDATE regions SET endpoint = COALESCE($2, endpoint), version = version + 1, updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(&body.endpoint)
    .fetch_one(&mut *tx)
    .await?;
    crud::updated(tx, &req, "region.update", "region", id, &current, Region::from(row)).await
}

/// Check a region's health now: at a global controller, a signed push to the
/// region whose answer is recorded as its health (as the periodic check does);
/// elsewhere the region as it stands.
#[utoipa::path(post, operation_id = "regions_check", path = "/v1/regions/{id}/check", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = Region), (status = 404)), security(("bearer" = [])))]
pub async fn check(req: Req, PathId(id): PathId) -> ApiResult<Json<Region>> {
    let mut tx = req.tx()?;
    let region: Region = crud::fetch::<RegionRow, _>(&mut tx, "regions", COLUMNS, id, false, "region").await?;
    tx.commit().await?;
    let Some(fed) = req.state.federation.as_deref().filter(|f| f.mode() == crate::federation::Mode::Global) else {
        return Ok(Json(view(&req, region)));
    };
    let target = crate::federation::health::RegionTarget { id, name: region.name, endpoint: region.endpoint };
    crate::federation::health::check_one(&req.state, fed, &target).await;
    let mut tx = req.begin(false).await?;
    let region: Region = crud::fetch::<RegionRow, _>(&mut tx, "regions", COLUMNS, id, false, "region").await?;
    tx.commit().await?;
    Ok(Json(view(&req, region)))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeregisterQuery {
    /// Deregister even though the region reported live VMs (federated installs).
    force: Option<bool>,
}

/// Deregister a region; refused while it has clusters here, or (at a global
/// controller) while its last health check reported live VMs, unless `force=true`.
#[utoipa::path(delete, operation_id = "regions_delete", path = "/v1/regions/{id}", tag = "compute",
    params(("id" = Uuid, Path), ("force" = Option<bool>, Query)),
    responses((status = 204), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn delete(req: Req, PathId(id): PathId, ApiQuery(q): ApiQuery<DeregisterQuery>) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let current: Region = crud::fetch::<RegionRow, _>(&mut tx, "regions", COLUMNS, id, true, "region").await?;
    let (live_vms,): (i32,) =
        sqlx::query_as("SELECT live_vms FROM regions WHERE id = $1").bind(id).fetch_one(&mut *tx).await?;
    if live_vms > 0 && q.force != Some(true) {
        return Err(ApiError::Conflict {
            code: "region_in_use",
            message: format!(
                "the region reports {live_vms} live VM(s); delete them first, or deregister with ?force=true"
            ),
        });
    }
    let (clusters,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM clusters WHERE region_id = $1").bind(id).fetch_one(&mut *tx).await?;
    if clusters > 0 {
        return Err(ApiError::Conflict {
            code: "region_in_use",
            message: format!("the region still has {clusters} cluster(s); delete them first"),
        });
    }
    crud::deleted(tx, &req, "regions", "region.deregister", "region", id, &current).await
}
