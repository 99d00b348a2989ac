//! `/v1/snapshot-schedules`: a tenant's schedules of snapshots of its VMs.
//! Every `interval_minutes` (15 to a week) the schedule job
//! ([`crate::compute::schedules`]) takes a snapshot of the schedule's VM,
//! through the same code as `POST /v1/vms/{id}/snapshots`, and keeps the newest
//! `keep` (1–100) of the snapshots the schedule took; snapshots taken by hand are
//! never pruned. `POST /v1/snapshot-schedules/{id}/run` does the same at once.
//!
//! A schedule belongs to its VM: it lives in the VM's region (federation routes
//! its create by `vm_id`), deleting the VM deletes it, and a cluster delegate
//! sees and changes only the schedules of VMs on its clusters (any other is a
//! 404, like another tenant's). A schedule deletes snapshots, so creating one
//! or changing its retention also needs `snapshot:create` and `snapshot:delete`
//! on the VM's cluster; running one needs `snapshot:create`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use basalt_client::{CreateSnapshotSchedule, Page, SnapshotSchedule, UpdateSnapshotSchedule};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::crud;
use super::extract::{check_version, ApiJson, ApiQuery, IdempotencyKey, IfMatch, PageQuery, PathId, Req};
use crate::audit::Event;
use crate::authz::Permission;
use crate::compute::schedules::{self, Actor};
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::validate;

const COLUMNS: &str = "id, tenant_id, vm_id, name, description, interval_minutes, keep, enabled, next_run_at,
     last_run_at, last_error, version, created_at, updated_at,
     (SELECT v.cluster_id FROM vms v WHERE v.id = vm_id) AS cluster_id";

/// The bounds of `interval_minutes`: a quarter of an hour to a week.
pub const INTERVAL_MINUTES: std::ops::RangeInclusive<i32> = 15..=10080;
/// The bounds of `keep`.
pub const KEEP: std::ops::RangeInclusive<i32> = 1..=100;

#[derive(sqlx::FromRow)]
struct ScheduleRow {
    id: Uuid,
    tenant_id: Uuid,
    vm_id: Uuid,
    name: String,
    description: String,
    interval_minutes: i32,
    keep: i32,
    enabled: bool,
    next_run_at: DateTime<Utc>,
    last_run_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    cluster_id: Uuid,
}

impl From<ScheduleRow> for SnapshotSchedule {
    fn from(r: ScheduleRow) -> SnapshotSchedule {
        SnapshotSchedule {
            id: r.id,
            tenant_id: r.tenant_id,
            vm_id: r.vm_id,
            name: r.name,
            description: r.description,
            interval_minutes: r.interval_minutes,
            keep: r.keep,
            enabled: r.enabled,
            next_run_at: r.next_run_at,
            last_run_at: r.last_run_at,
            last_error: r.last_error,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

fn check_interval(minutes: Option<i32>) -> ApiResult<()> {
    match minutes {
        Some(m) if !INTERVAL_MINUTES.contains(&m) => {
            Err(ApiError::bad_field("interval_minutes", "interval_minutes must be 15 to 10080 (a week)"))
        }
        _ => Ok(()),
    }
}

fn check_keep(keep: Option<i32>) -> ApiResult<()> {
    match keep {
        Some(k) if !KEEP.contains(&k) => Err(ApiError::bad_field("keep", "keep must be 1 to 100")),
        _ => Ok(()),
    }
}

/// A schedule the caller may see with `permission` (RLS, then its VM's
/// cluster), or 404; with its VM's cluster.
async fn fetch(
    req: &Req,
    tx: &mut Tx,
    id: Uuid,
    lock: bool,
    permission: Permission,
) -> ApiResult<(SnapshotSchedule, Uuid)> {
    let row: ScheduleRow =
        crud::fetch::<ScheduleRow, _>(tx, "snapshot_schedules", COLUMNS, id, lock, "snapshot_schedule").await?;
    let cluster = row.cluster_id;
    if req.grants.require_on_cluster(Permission::SnapshotScheduleRead, cluster).is_err() {
        return Err(ApiError::NotFound { kind: "snapshot_schedule" });
    }
    req.grants.require_on_cluster(permission, cluster)?;
    Ok((SnapshotSchedule::from(row), cluster))
}

/// A schedule prunes its snapshots: its retention is set by whoever may delete them.
fn require_snapshot_rights(req: &Req, cluster: Uuid, permissions: &[Permission]) -> ApiResult<()> {
    permissions.iter().try_for_each(|p| req.grants.require_on_cluster(*p, cluster))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SnapshotScheduleQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// Only the schedules of this VM.
    pub vm_id: Option<Uuid>,
}

/// List the tenant's snapshot schedules (a cluster delegate: those of VMs on its clusters).
#[utoipa::path(get, operation_id = "snapshot_schedules_list", path = "/v1/snapshot-schedules", tag = "compute", params(SnapshotScheduleQuery),
    responses((status = 200, body = Page<SnapshotSchedule>), (status = 400)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<SnapshotScheduleQuery>) -> ApiResult<Json<Page<SnapshotSchedule>>> {
    let filter = crud::ClusterList {
        column: "vm_id",
        value: q.vm_id,
        on_clusters: "vm_id IN (SELECT v.id FROM vms v WHERE v.cluster_id = ANY($3))",
    };
    crud::list_filtered_on_clusters::<ScheduleRow, SnapshotSchedule>(
        &req,
        &PageQuery { limit: q.limit, cursor: q.cursor },
        ("snapshot_schedules", COLUMNS),
        filter,
        Permission::SnapshotScheduleList,
    )
    .await
}

/// Create a snapshot schedule of a VM; its first run is one interval from now.
/// Accepts `Idempotency-Key`.
#[utoipa::path(post, operation_id = "snapshot_schedules_create", path = "/v1/snapshot-schedules", tag = "compute", request_body = CreateSnapshotSchedule,
    responses((status = 201, body = SnapshotSchedule), (status = 400), (status = 403), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn create(
    req: Req,
    key: IdempotencyKey,
    ApiJson(body): ApiJson<CreateSnapshotSchedule>,
) -> ApiResult<Response> {
    validate::name("name", &body.name)?;
    check_interval(Some(body.interval_minutes))?;
    check_keep(Some(body.keep))?;
    let description = body.description.clone().unwrap_or_default();
    validate::description(Some(&description))?;
    let mut tx = req.tx()?;
    let vm = super::vms::fetch(&req, &mut tx, body.vm_id, false)
        .await
        .map_err(|_| ApiError::invalid_reference("vm_id", "no such VM"))?;
    require_snapshot_rights(
        &req,
        vm.cluster_id,
        &[Permission::SnapshotScheduleCreate, Permission::SnapshotCreate, Permission::SnapshotDelete],
    )?;
    let b = body.clone();
    crud::create(
        tx,
        &req,
        &key,
        &body,
        move |tx| {
            Box::pin(async move {
                let row: ScheduleRow = sqlx::query_as(&format!(
                    "INSERT INTO snapshot_schedules
                         (id, tenant_id, vm_id, name, description, interval_minutes, keep, enabled, next_run_at)
                     VALUES ($1, basalt_tenant(), $2, $3, $4, $5, $6, $7, now() + make_interval(mins => $5))
                     RETURNING {COLUMNS}"
                ))
                .bind(Uuid::now_v7())
                .bind(b.vm_id)
                .bind(&b.name)
                .bind(description)
                .bind(b.interval_minutes)
                .bind(b.keep)
                .bind(b.enabled.unwrap_or(true))
                .fetch_one(&mut **tx)
                .await?;
                Ok(SnapshotSchedule::from(row))
            })
        },
        |s| Event::new("snapshot_schedule.create", "snapshot_schedule", Some(s.id)).details(json!({ "after": s })),
    )
    .await
}

/// Read a snapshot schedule.
#[utoipa::path(get, operation_id = "snapshot_schedules_get", path = "/v1/snapshot-schedules/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = SnapshotSchedule), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<SnapshotSchedule>> {
    let mut tx = req.tx()?;
    let (schedule, _) = fetch(&req, &mut tx, id, false, Permission::SnapshotScheduleRead).await?;
    tx.commit().await?;
    Ok(Json(schedule))
}

/// Change a schedule: name, description, interval (the next run is then one
/// new interval from now), retention (needs `snapshot:delete`), or pause and
/// resume it (`enabled`; resuming also counts from now). Takes `If-Match`.
#[utoipa::path(patch, operation_id = "snapshot_schedules_update", path = "/v1/snapshot-schedules/{id}", tag = "compute", params(("id" = Uuid, Path)),
    request_body = UpdateSnapshotSchedule, responses((status = 200, body = SnapshotSchedule), (status = 400), (status = 403), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn update(
    req: Req,
    PathId(id): PathId,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UpdateSnapshotSchedule>,
) -> ApiResult<Json<SnapshotSchedule>> {
    validate::rename(body.name.as_deref(), body.description.as_deref())?;
    check_interval(body.interval_minutes)?;
    check_keep(body.keep)?;
    let mut tx = req.tx()?;
    let (before, cluster) = fetch(&req, &mut tx, id, true, Permission::SnapshotScheduleUpdate).await?;
    check_version(&if_match, before.version)?;
    if body.keep.is_some() {
        require_snapshot_rights(&req, cluster, &[Permission::SnapshotDelete])?;
    }
    let row: ScheduleRow = sqlx::query_as(&format!(
        "UPDATE snapshot_schedules SET name = COALESCE($2, name), description = COALESCE($3, description),
                interval_minutes = COALESCE($4, interval_minutes), keep = COALESCE($5, keep),
                enabled = COALESCE($6, enabled),
                next_run_at = CASE WHEN $4::integer IS NOT NULL OR ($6::boolean AND NOT enabled)
                                   THEN now() + make_interval(mins => COALESCE($4, interval_minutes))
                                   ELSE next_run_at END,
                version = version + 1, updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(&body.name)
    .bind(&body.description)
    .bind(body.interval_minutes)
    .bind(body.keep)
    .bind(body.enabled)
    .fetch_one(&mut *tx)
    .await?;
    crud::updated(tx, &req, "snapshot_schedule.update", "snapshot_schedule", id, &before, SnapshotSchedule::from(row))
        .await
}

/// Delete a snapshot schedule; the snapshots it took stay (as if taken by hand).
#[utoipa::path(delete, operation_id = "snapshot_schedules_delete", path = "/v1/snapshot-schedules/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn delete(req: Req, PathId(id): PathId, if_match: IfMatch) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let (before, _) = fetch(&req, &mut tx, id, true, Permission::SnapshotScheduleDelete).await?;
    check_version(&if_match, before.version)?;
    crud::deleted(tx, &req, "snapshot_schedules", "snapshot_schedule.delete", "snapshot_schedule", id, &before).await
}

/// Run a schedule now: take a snapshot of its VM (as the job would; needs
/// `snapshot:create` on the VM's cluster) and prune the schedule's snapshots to
/// `keep`. Answers 201 with the new snapshot; the next run stays when it was.
#[utoipa::path(post, operation_id = "snapshot_schedules_run", path = "/v1/snapshot-schedules/{id}/run", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 201, body = basalt_client::Snapshot), (status = 403), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn run(req: Req, PathId(id): PathId) -> ApiResult<Response> {
    let mut tx = req.tx()?;
    let (schedule, cluster) = fetch(&req, &mut tx, id, false, Permission::SnapshotScheduleRun).await?;
    require_snapshot_rights(&req, cluster, &[Permission::SnapshotCreate])?;
    tx.commit().await?;
    let outcome = schedules::execute(&req.state, schedule.tenant_id, id, &Actor::Request(&req), false).await?;
    Ok((StatusCode::CREATED, Json(outcome.snapshot)).into_response())
}
