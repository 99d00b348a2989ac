//! `/v1/quotas`: a tenant's capacity on a cluster (vCPUs, memory, VM count) and
//! what it uses of it. Provider staff assign quotas at system scope (the one
//! table whose rows the system context reads and writes across tenants); a
//! tenant reads its own. Holding a quota on a cluster is what makes the cluster
//! visible to the tenant.

use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use basalt_client::{CreateQuota, Page, Quota, UpdateQuota};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::crud;
use super::extract::{check_version, page, ApiJson, ApiQuery, IdempotencyKey, IfMatch, PathId, Req};
use crate::audit::Event;
use crate::authz::Permission;
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};

const COLUMNS: &str = "id, tenant_id, cluster_id, vcpus, memory_mib, max_vms, vcpus_used, memory_used_mib, vms_used,
     version, created_at, updated_at, disk_gib, disk_used_gib";

#[derive(sqlx::FromRow)]
struct QuotaRow {
    id: Uuid,
    tenant_id: Uuid,
    cluster_id: Uuid,
    vcpus: i32,
    memory_mib: i64,
    max_vms: i32,
    vcpus_used: i32,
    memory_used_mib: i64,
    vms_used: i32,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    disk_gib: Option<i64>,
    disk_used_gib: i64,
}

impl From<QuotaRow> for Quota {
    fn from(r: QuotaRow) -> Quota {
        Quota {
            id: r.id,
            tenant_id: r.tenant_id,
            cluster_id: r.cluster_id,
            vcpus: r.vcpus,
            memory_mib: r.memory_mib,
            max_vms: r.max_vms,
            vcpus_used: r.vcpus_used,
            memory_used_mib: r.memory_used_mib,
            vms_used: r.vms_used,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            disk_gib: r.disk_gib,
            disk_used_gib: r.disk_used_gib,
        }
    }
}

/// The volume limit (`disk_gib`), when one is set.
fn check_disk(disk_gib: Option<i64>) -> ApiResult<()> {
    if disk_gib.is_some_and(|d| !(0..=1_073_741_824).contains(&d)) {
        return Err(ApiError::bad_field("disk_gib", "disk_gib must be 0 to 1073741824 (or null: no limit)"));
    }
    Ok(())
}

pub(crate) fn check_limits(vcpus: Option<i32>, memory_mib: Option<i64>, max_vms: Option<i32>) -> ApiResult<()> {
    if vcpus.is_some_and(|v| !(0..=100_000).contains(&v)) {
        return Err(ApiError::bad_field("vcpus", "vcpus must be 0 to 100000"));
    }
    if memory_mib.is_some_and(|m| !(0..=1_073_741_824).contains(&m)) {
        return Err(ApiError::bad_field("memory_mib", "memory_mib must be 0 to 1073741824"));
    }
    if max_vms.is_some_and(|v| !(0..=10_000).contains(&v)) {
        return Err(ApiError::bad_field("max_vms", "max_vms must be 0 to 10000"));
    }
    Ok(())
}

async fn fetch(req: &Req, tx: &mut Tx, id: Uuid, lock: bool) -> ApiResult<Quota> {
    let quota: Quota = crud::fetch::<QuotaRow, _>(tx, "quotas", COLUMNS, id, lock, "quota").await?;
    // A cluster delegate sees the quota of its cluster only.
    if req.grants.require_on_cluster(Permission::QuotaRead, quota.cluster_id).is_err() {
        return Err(ApiError::NotFound { kind: "quota" });
    }
    Ok(quota)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct QuotaQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// Only this tenant's quotas (provider staff).
    pub tenant_id: Option<Uuid>,
    /// Only quotas on this cluster.
    pub cluster_id: Option<Uuid>,
}

/// List quotas: every tenant's at system scope, the tenant's own inside it.
#[utoipa::path(get, operation_id = "quotas_list", path = "/v1/quotas", tag = "compute", params(QuotaQuery),
    responses((status = 200, body = Page<Quota>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<QuotaQuery>) -> ApiResult<Json<Page<Quota>>> {
    let params = super::extract::PageQuery { limit: q.limit, cursor: q.cursor }.params()?;
    let only = req.grants.clusters_for(Permission::QuotaList).as_param();
    let mut tx = req.tx()?;
    let rows: Vec<QuotaRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM quotas
          WHERE ($1::uuid IS NULL OR id > $1) AND ($2::uuid IS NULL OR tenant_id = $2)
            AND ($3::uuid IS NULL OR cluster_id = $3) AND ($4::uuid[] IS NULL OR cluster_id = ANY($4))
          ORDER BY id LIMIT $5"
    ))
    .bind(params.after)
    .bind(q.tenant_id)
    .bind(q.cluster_id)
    .bind(only)
    .bind(params.limit + 1)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(page(rows.into_iter().map(Quota::from).collect(), params, |q: &Quota| q.id)))
}

/// Assign a tenant capacity on a cluster (system scope). Accepts `Idempotency-Key`.
#[utoipa::path(post, operation_id = "quotas_create", path = "/v1/quotas", tag = "compute", request_body = CreateQuota,
    responses((status = 201, body = Quota), (status = 400), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn create(req: Req, key: IdempotencyKey, ApiJson(body): ApiJson<CreateQuota>) -> ApiResult<Response> {
    check_limits(Some(body.vcpus), Some(body.memory_mib), Some(body.max_vms))?;
    check_disk(body.disk_gib)?;
    let mut tx = req.tx()?;
    check_references(&mut tx, body.tenant_id, body.cluster_id).await?;
    let b = body.clone();
    crud::create(
        tx,
        &req,
        &key,
        &body,
        move |tx| Box::pin(insert(tx, b.tenant_id, b.cluster_id, (b.vcpus, b.memory_mib, b.max_vms), b.disk_gib)),
        |q| Event::new("quota.create", "quota", Some(q.id)).details(json!({ "after": q })),
    )
    .await
}

/// A quota needs a live tenant and an existing cluster (422 `invalid_reference`
/// naming the field otherwise).
pub(crate) async fn check_references(tx: &mut Tx, tenant: Uuid, cluster: Uuid) -> ApiResult<()> {
    let (tenant_live, cluster_exists): (bool, bool) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1 AND state <> 'deleted'),
                EXISTS (SELECT 1 FROM clusters WHERE id = $2)",
    )
    .bind(tenant)
    .bind(cluster)
    .fetch_one(&mut **tx)
    .await?;
    for (ok, field, kind) in [(tenant_live, "tenant_id", "tenant"), (cluster_exists, "cluster_id", "cluster")] {
        if !ok {
            return Err(ApiError::invalid_reference(field, format!("no such {kind}")));
        }
    }
    Ok(())
}

/// Inserts tenant `tenant`'s quota on `cluster` with `limits` (vCPUs, memory,
/// VMs) and volume GiB (`None`: no limit), and entitles the tenant to the
/// cluster's region (capacity in a region entitles to it: docs/federation.md).
/// Checked by the caller.
pub(crate) async fn insert(
    tx: &mut Tx,
    tenant: Uuid,
    cluster: Uuid,
    limits: (i32, i64, i32),
    disk_gib: Option<i64>,
) -> ApiResult<Quota> {
    let row: QuotaRow = sqlx::query_as(&format!(
        "INSERT INTO quotas (id, tenant_id, cluster_id, vcpus, memory_mib, max_vms, disk_gib)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(tenant)
    .bind(cluster)
    .bind(limits.0)
    .bind(limits.1)
    .bind(limits.2)
    .bind(disk_gib)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO tenant_regions (tenant_id, region_id)
         SELECT $1, region_id FROM clusters WHERE id = $2 ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(cluster)
    .execute(&mut **tx)
    .await?;
    Ok(Quota::from(row))
}

/// Sets quota `id`'s limits (each `None` keeps its value; `disk_gib`:
/// `Some(None)` lifts the volume limit); a limit below usage is refused by the
/// table's CHECK (409 `quota_in_use`).
pub(crate) async fn set_limits(
    tx: &mut Tx,
    id: Uuid,
    vcpus: Option<i32>,
    memory_mib: Option<i64>,
    max_vms: Option<i32>,
    disk_gib: Option<Option<i64>>,
) -> ApiResult<Quota> {
    let row: QuotaRow = sqlx::query_as(&format!(
        "UPDATE quotas SET vcpus = COALESCE($2, vcpus), memory_mib = COALESCE($3, memory_mib),
                max_vms = COALESCE($4, max_vms),
                disk_gib = CASE WHEN $5 THEN $6 ELSE disk_gib END, version = version + 1, updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(vcpus)
    .bind(memory_mib)
    .bind(max_vms)
    .bind(disk_gib.is_some())
    .bind(disk_gib.flatten())
    .fetch_one(&mut **tx)
    .await?;
    Ok(Quota::from(row))
}

/// Tenant `tenant`'s quota on `cluster`, locked, if it has one.
pub(crate) async fn of_tenant_on(tx: &mut Tx, tenant: Uuid, cluster: Uuid) -> ApiResult<Option<Quota>> {
    let row: Option<QuotaRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM quotas WHERE tenant_id = $1 AND cluster_id = $2 FOR UPDATE"))
            .bind(tenant)
            .bind(cluster)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(row.map(Quota::from))
}

/// Read a quota and its usage.
#[utoipa::path(get, operation_id = "quotas_get", path = "/v1/quotas/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = Quota), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<Quota>> {
    let mut tx = req.tx()?;
    let quota = fetch(&req, &mut tx, id, false).await?;
    tx.commit().await?;
    Ok(Json(quota))
}

/// Change a quota's limits (system scope); never below what is in use.
#[utoipa::path(patch, operation_id = "quotas_update", path = "/v1/quotas/{id}", tag = "compute", params(("id" = Uuid, Path)),
    request_body = UpdateQuota, responses((status = 200, body = Quota), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn update(
    req: Req,
    PathId(id): PathId,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UpdateQuota>,
) -> ApiResult<Json<Quota>> {
    check_limits(body.vcpus, body.memory_mib, body.max_vms)?;
    check_disk(body.disk_gib.flatten())?;
    let mut tx = req.tx()?;
    let current = fetch(&req, &mut tx, id, true).await?;
    check_version(&if_match, current.version)?;
    if body.disk_gib.flatten().is_some_and(|limit| limit < current.disk_used_gib) {
        return Err(ApiError::Conflict {
            code: "quota_in_use",
            message: format!("the tenant already holds {} GiB of volumes on this cluster", current.disk_used_gib),
        });
    }
    let after = set_limits(&mut tx, id, body.vcpus, body.memory_mib, body.max_vms, body.disk_gib).await?;
    crud::updated(tx, &req, "quota.update", "quota", id, &current, after).await
}

/// Withdraw a quota (system scope); refused while the tenant has VMs on the cluster.
#[utoipa::path(delete, operation_id = "quotas_delete", path = "/v1/quotas/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn delete(req: Req, PathId(id): PathId) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let current = fetch(&req, &mut tx, id, true).await?;
    if current.vms_used > 0 {
        return Err(ApiError::Conflict {
            code: "quota_in_use",
            message: format!("the tenant still has {} VM(s) on this cluster", current.vms_used),
        });
    }
    if current.disk_used_gib > 0 {
        return Err(ApiError::Conflict {
            code: "quota_in_use",
            message: format!("the tenant still has {} GiB of volumes on this cluster", current.disk_used_gib),
        });
    }
    crud::deleted(tx, &req, "quotas", "quota.delete", "quota", id, &current).await
}
