//! `/v1/vms/{id}/snapshots`: point-in-time snapshots of a VM (libvirt snapshots,
//! named by the snapshot's id on the host). Taking and deleting one is quick and
//! answered directly; reverting changes the VM and is an operation (202).

use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use basalt_client::{CreateSnapshot, Page, Snapshot, UpdateSnapshot, VmState};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::extract::{
    check_version, page, ApiJson, ApiQuery, IdempotencyKey, IfMatch, PageQuery, PathId, PathIds, Req,
};
use super::vms;
use crate::app::AppState;
use crate::audit::{self, Event};
use crate::authz::Permission;
use crate::compute::{operations, placement, vm_work};
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::idempotency::{self, Claim};

const COLUMNS: &str = "id, tenant_id, vm_id, name, description, version, schedule_id, created_at";

#[derive(sqlx::FromRow)]
struct SnapshotRow {
    id: Uuid,
    tenant_id: Uuid,
    vm_id: Uuid,
    name: String,
    description: String,
    version: i64,
    schedule_id: Option<Uuid>,
    created_at: DateTime<Utc>,
}

impl From<SnapshotRow> for Snapshot {
    fn from(r: SnapshotRow) -> Snapshot {
        Snapshot {
            id: r.id,
            tenant_id: r.tenant_id,
            vm_id: r.vm_id,
            name: r.name,
            description: r.description,
            version: r.version,
            schedule_id: r.schedule_id,
            created_at: r.created_at,
        }
    }
}

/// The libvirt name of a snapshot: its id, so a tenant's name never reaches the host.
fn host_name(id: Uuid) -> String {
    format!("basalt-{id}")
}

fn check_name(name: &str) -> ApiResult<()> {
    let ok = (1..=63).contains(&name.len())
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_field("name", "name must be 1 to 63 letters, digits, '-' and '_'"))
    }
}

async fn fetch(tx: &mut Tx, vm: Uuid, id: Uuid) -> ApiResult<Snapshot> {
    fetch_locked(tx, vm, id, false).await
}

async fn fetch_locked(tx: &mut Tx, vm: Uuid, id: Uuid, lock: bool) -> ApiResult<Snapshot> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row: Option<SnapshotRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM vm_snapshots WHERE id = $1 AND vm_id = $2{lock}"))
            .bind(id)
            .bind(vm)
            .fetch_optional(&mut **tx)
            .await?;
    row.map(Snapshot::from).ok_or(ApiError::NotFound { kind: "snapshot" })
}

/// List a VM's snapshots.
#[utoipa::path(get, operation_id = "snapshots_list", path = "/v1/vms/{id}/snapshots", tag = "compute", params(("id" = Uuid, Path), ("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Snapshot>), (status = 404)), security(("bearer" = [])))]
pub async fn list(req: Req, PathId(vm): PathId, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<Snapshot>>> {
    let params = q.params()?;
    let mut tx = req.tx()?;
    let vm = vms::fetch(&req, &mut tx, vm, false).await?;
    req.grants.require_on_cluster(Permission::SnapshotList, vm.cluster_id)?;
    let rows: Vec<SnapshotRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM vm_snapshots WHERE vm_id = $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3"
    ))
    .bind(vm.id)
    .bind(params.after)
    .bind(params.limit + 1)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(page(rows.into_iter().map(Snapshot::from).collect(), params, |s: &Snapshot| s.id)))
}

/// Take a snapshot of a VM (running or stopped). Accepts `Idempotency-Key`.
#[utoipa::path(post, operation_id = "snapshots_create", path = "/v1/vms/{id}/snapshots", tag = "compute", params(("id" = Uuid, Path)), request_body = CreateSnapshot,
    responses((status = 201, body = Snapshot), (status = 400), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn create(
    req: Req,
    PathId(vm): PathId,
    key: IdempotencyKey,
    ApiJson(body): ApiJson<CreateSnapshot>,
) -> ApiResult<Response> {
    check_name(&body.name)?;
    // `snapshot:create` is grantable inside tenants only, so the context has one.
    let tenant = req.principal.context.tenant().ok_or(ApiError::NotFound { kind: "vm" })?;
    let mut tx = req.tx()?;
    let claimed = match idempotency::claim(&mut tx, &req, &key, &(vm, &body)).await? {
        Claim::Replay(status, stored) => return Ok(idempotency::replay(status, stored)),
        Claim::Proceed(c) => c,
    };
    let vm = vms::lock_for(&req, &mut tx, vm, Permission::SnapshotCreate).await?;
    let snapshot = insert(&mut tx, vm.id, &body.name, None).await?;
    let id = snapshot.id;
    audit::record(
        &mut tx,
        &req,
        Event::new("snapshot.create", "snapshot", Some(id)).details(json!({ "after": snapshot })),
    )
    .await?;
    let resp = idempotency::created(&mut tx, claimed, snapshot).await?;
    tx.commit().await?;
    take_on_host(&req.state, tenant, vm.id, id).await?;
    Ok(resp)
}

/// The row of a new snapshot of `vm` in `tx` (the VM locked by the caller; a
/// duplicate name fails here), taken by `schedule` or by hand. Every snapshot,
/// by hand ([`create`]) or by a schedule, is made by this and [`take_on_host`].
pub(crate) async fn insert(tx: &mut Tx, vm: Uuid, name: &str, schedule: Option<Uuid>) -> ApiResult<Snapshot> {
    let row: SnapshotRow = sqlx::query_as(&format!(
        "INSERT INTO vm_snapshots (id, tenant_id, vm_id, name, schedule_id)
         VALUES ($1, basalt_tenant(), $2, $3, $4) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(vm)
    .bind(name)
    .bind(schedule)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Snapshot::from(row))
}

/// After [`insert`] committed: takes snapshot `id` of `vm` on its host. If the
/// host refuses, the row (and any idempotency key that answered it) goes, in
/// `tenant`'s context, and the host's error is returned. The caller's
/// transaction is gone first: one pooled connection at a time.
pub(crate) async fn take_on_host(state: &AppState, tenant: Uuid, vm: Uuid, id: Uuid) -> ApiResult<()> {
    let taken = async {
        let host = placement::host_of(&state.db, vm).await?;
        let (uri, name) = (host.uri, host_name(id));
        Ok::<(), ApiError>(state.compute.call(move |hv| hv.snapshot_create(&uri, vm, &name)).await?)
    }
    .await;
    if let Err(e) = taken {
        let mut tx = operations::context_tx(&state.db, Some(tenant)).await?;
        forget_row(&mut tx, id).await?;
        tx.commit().await?;
        return Err(e);
    }
    Ok(())
}

/// Removes snapshot `id` of `vm` from its host (the row stays: the caller
/// deletes it with [`forget_row`] once the host is done).
pub(crate) async fn remove_from_host(state: &AppState, vm: Uuid, id: Uuid) -> ApiResult<()> {
    let host = placement::host_of(&state.db, vm).await?;
    let (uri, name) = (host.uri, host_name(id));
    state.compute.call(move |hv| hv.snapshot_delete(&uri, vm, &name)).await?;
    Ok(())
}

/// Deletes a snapshot's row and the idempotency keys that answered it.
pub(crate) async fn forget_row(tx: &mut Tx, id: Uuid) -> ApiResult<()> {
    sqlx::query("DELETE FROM vm_snapshots WHERE id = $1").bind(id).execute(&mut **tx).await?;
    crate::idempotency::forget_object(tx, id).await?;
    Ok(())
}

/// Read a snapshot.
#[utoipa::path(get, operation_id = "snapshots_get", path = "/v1/vms/{id}/snapshots/{snapshot_id}", tag = "compute", params(("id" = Uuid, Path), ("snapshot_id" = Uuid, Path)),
    responses((status = 200, body = Snapshot), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathIds(vm, id): PathIds) -> ApiResult<Json<Snapshot>> {
    let mut tx = req.tx()?;
    let vm = vms::fetch(&req, &mut tx, vm, false).await?;
    req.grants.require_on_cluster(Permission::SnapshotRead, vm.cluster_id)?;
    let snapshot = fetch(&mut tx, vm.id, id).await?;
    tx.commit().await?;
    Ok(Json(snapshot))
}

/// Change a snapshot's description. Takes `If-Match`.
#[utoipa::path(patch, operation_id = "snapshots_update", path = "/v1/vms/{id}/snapshots/{snapshot_id}", tag = "compute", params(("id" = Uuid, Path), ("snapshot_id" = Uuid, Path)),
    request_body = UpdateSnapshot, responses((status = 200, body = Snapshot), (status = 400), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn update(
    req: Req,
    PathIds(vm, id): PathIds,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UpdateSnapshot>,
) -> ApiResult<Json<Snapshot>> {
    crate::validate::description(body.description.as_deref())?;
    let mut tx = req.tx()?;
    let vm = vms::fetch(&req, &mut tx, vm, false).await?;
    req.grants.require_on_cluster(Permission::SnapshotUpdate, vm.cluster_id)?;
    let before = fetch_locked(&mut tx, vm.id, id, true).await?;
    check_version(&if_match, before.version)?;
    let row: SnapshotRow = sqlx::query_as(&format!(
        "UPDATE vm_snapshots SET description = COALESCE($2, description), version = version + 1, updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(&body.description)
    .fetch_one(&mut *tx)
    .await?;
    super::crud::updated(tx, &req, "snapshot.update", "snapshot", id, &before, Snapshot::from(row)).await
}

/// Roll a VM back to a snapshot: 202 with the `snapshot.revert` operation.
#[utoipa::path(post, operation_id = "snapshots_revert", path = "/v1/vms/{id}/snapshots/{snapshot_id}/revert", tag = "compute", params(("id" = Uuid, Path), ("snapshot_id" = Uuid, Path)),
    responses((status = 202, body = basalt_client::Operation), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn revert(req: Req, PathIds(vm, id): PathIds) -> ApiResult<Response> {
    let mut tx = req.tx()?;
    let vm = vms::lock_for(&req, &mut tx, vm, Permission::SnapshotRevert).await?;
    let snapshot = fetch(&mut tx, vm.id, id).await?;
    let previous = vm.state();
    let during = if previous == VmState::Running { VmState::Starting } else { VmState::Stopping };
    let op =
        vms::start_operation(&req, tx, &vm, "snapshot.revert", during, None, json!({ "snapshot_id": snapshot.id }))
            .await?;
    let task = vms::task(&req, vm.id, op.id)?;
    let work = vm_work::revert(task.clone(), host_name(snapshot.id), previous);
    operations::spawn(req.state.db.clone(), Some(task.tenant), op.id, "snapshot.revert", work);
    Ok(vms::accepted(&op))
}

/// Delete a snapshot.
#[utoipa::path(delete, operation_id = "snapshots_delete", path = "/v1/vms/{id}/snapshots/{snapshot_id}", tag = "compute", params(("id" = Uuid, Path), ("snapshot_id" = Uuid, Path)),
    responses((status = 204), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn delete(req: Req, PathIds(vm, id): PathIds) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let vm = vms::lock_for(&req, &mut tx, vm, Permission::SnapshotDelete).await?;
    let snapshot = fetch(&mut tx, vm.id, id).await?;
    tx.commit().await?;
    // The host first, then the row: a snapshot the host still holds stays listed.
    remove_from_host(&req.state, vm.id, id).await?;
    let mut tx = req.begin(true).await?;
    forget_row(&mut tx, id).await?;
    audit::record(
        &mut tx,
        &req,
        Event::new("snapshot.delete", "snapshot", Some(id)).details(json!({ "before": snapshot })),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
