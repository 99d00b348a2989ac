//! `/v1/volumes`: a tenant's data disks on a cluster. A volume is an empty
//! qcow2 file next to the VM disks (`<storage_dir>/volumes/<id>.qcow2`, made
//! with `qemu-img`), counted in the tenant's quota on the cluster
//! (`disk_used_gib` within `disk_gib`): the quota row is locked while it is
//! counted and a CHECK refuses anything over the limit, as for VM creates.
//!
//! * It grows only (`qemu-img resize`), and not while a running VM uses it.
//! * It is attached to one VM of its cluster at a time (409 `volume_attached`
//!   elsewhere), as the guest device `vdb`, `vdc`, ...; the disk reaches the
//!   domain through [`Hypervisor::attach_device`] (hot-plugged where the host
//!   can, else from the next boot: see docs/compute.md).
//! * It cannot be deleted while attached (409 `volume_attached`). A VM's
//!   deletion detaches its volumes and keeps them.
//!
//! A cluster delegate sees the volumes of its clusters only; another cluster's
//! or another tenant's volume is a 404, like a missing one. Tenants never see
//! the file's path.
//!
//! [`Hypervisor::attach_device`]: crate::compute::Hypervisor::attach_device

use std::path::PathBuf;

use axum::http::StatusCode;
use axum::Json;
use basalt_client::{CreateVolume, Page, UpdateVolume, VmState, Volume, VolumeAttachment};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::crud::{self, OnCluster};
use super::extract::{check_version, ApiJson, ApiQuery, IdempotencyKey, IfMatch, PageQuery, PathId, Req};
use super::networks::{cluster_mismatch, on_host};
use super::vms;
use crate::audit::{self, Event};
use crate::authz::Permission;
use crate::compute::{disks, Device};
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::validate;

const COLUMNS: &str =
    "id, tenant_id, cluster_id, name, size_gib, description, path, vm_id, device, version, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct VolumeRow {
    id: Uuid,
    tenant_id: Uuid,
    cluster_id: Uuid,
    name: String,
    size_gib: i32,
    description: String,
    path: String,
    vm_id: Option<Uuid>,
    device: Option<String>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A volume as the API shows it, and where its file is (never shown).
struct Found {
    volume: Volume,
    path: PathBuf,
}

impl From<VolumeRow> for Found {
    fn from(r: VolumeRow) -> Found {
        let volume = Volume {
            id: r.id,
            tenant_id: r.tenant_id,
            cluster_id: r.cluster_id,
            name: r.name,
            size_gib: r.size_gib,
            description: r.description,
            vm_id: r.vm_id,
            device: r.vm_id.and(r.device),
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        };
        Found { volume, path: PathBuf::from(r.path) }
    }
}

impl From<VolumeRow> for Volume {
    fn from(r: VolumeRow) -> Volume {
        Found::from(r).volume
    }
}

fn check_size(size_gib: i32) -> ApiResult<()> {
    if !(1..=65536).contains(&size_gib) {
        return Err(ApiError::bad_field("size_gib", "size_gib must be 1 to 65536"));
    }
    Ok(())
}

/// A volume the caller may see (RLS, then its cluster's read permission),
/// optionally locked. Anything else is a 404.
async fn fetch(req: &Req, tx: &mut Tx, id: Uuid, lock: bool) -> ApiResult<Found> {
    let what = ("volumes", COLUMNS, "volume");
    crud::fetch_on_cluster::<VolumeRow, Found>(req, tx, what, id, lock, Permission::VolumeRead, |f| f.volume.cluster_id)
        .await
}

/// Adds `gib` to (or, negative, releases from) the tenant's disk usage on
/// `cluster`, in `tx`, the way VM creates count vCPUs and memory
/// ([`crate::compute::vm_work::adjust_quota`]): the quota row is locked, so
/// concurrent creates queue, and the table's CHECK refuses anything over the limit.
async fn adjust_disk(tx: &mut Tx, cluster: Uuid, gib: i64) -> ApiResult<()> {
    let quota: Option<(Uuid, Option<i64>, i64)> =
        sqlx::query_as("SELECT id, disk_gib, disk_used_gib FROM quotas WHERE cluster_id = $1 FOR UPDATE")
            .bind(cluster)
            .fetch_optional(&mut **tx)
            .await?;
    let Some((id, limit, used)) = quota else {
        return Err(ApiError::invalid_reference("cluster_id", "your tenant has no quota on this cluster"));
    };
    if let Some(max) = limit.filter(|max| gib > 0 && used + gib > *max) {
        return Err(ApiError::Unprocessable {
            code: "quota_exceeded",
            message: "this would exceed your quota on the cluster".into(),
            details: json!({ "exceeded": [{ "resource": "disk_gib", "limit": max, "used": used, "requested": gib }] }),
        });
    }
    sqlx::query("UPDATE quotas SET disk_used_gib = greatest(disk_used_gib + $2, 0) WHERE id = $1")
        .bind(id)
        .bind(gib)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// List the volumes the caller may see.
#[utoipa::path(get, operation_id = "volumes_list", path = "/v1/volumes", tag = "compute", params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Volume>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<Volume>>> {
    crud::list_on_clusters::<VolumeRow, Volume>(&req, &q, "volumes", COLUMNS, Permission::VolumeList).await
}

/// Create a data volume on a cluster where the tenant holds a quota: its size
/// is counted against the quota's `disk_gib` (422 `quota_exceeded`). Accepts
/// `Idempotency-Key`.
#[utoipa::path(post, operation_id = "volumes_create", path = "/v1/volumes", tag = "compute", request_body = CreateVolume,
    responses((status = 201, body = Volume), (status = 400), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn create(
    req: Req,
    key: IdempotencyKey,
    ApiJson(body): ApiJson<CreateVolume>,
) -> ApiResult<axum::response::Response> {
    check_size(body.size_gib)?;
    let mut tx = req.tx()?;
    let new = OnCluster {
        tenant_id: body.tenant_id,
        cluster_id: body.cluster_id,
        name: &body.name,
        description: body.description.as_deref(),
    };
    let (cluster, description) = crud::check_on_cluster(&req, &mut tx, new, Permission::VolumeCreate).await?;
    let id = Uuid::now_v7();
    let path = disks::volume_path(&req.state.compute.storage_dir, id);
    let (name, size) = (body.name.clone(), body.size_gib);
    crud::create(
        tx,
        &req,
        &key,
        &body,
        move |tx| {
            Box::pin(async move {
                adjust_disk(tx, cluster, i64::from(size)).await?;
                let row: VolumeRow = sqlx::query_as(&format!(
                    "INSERT INTO volumes (id, tenant_id, cluster_id, name, size_gib, description, path)
                     VALUES ($1, basalt_tenant(), $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
                ))
                .bind(id)
                .bind(cluster)
                .bind(&name)
                .bind(size)
                .bind(&description)
                .bind(path.to_string_lossy().as_ref())
                .fetch_one(&mut **tx)
                .await?;
                // The file last: any refusal above leaves none behind.
                disks::create_volume(&path, size).await.map_err(disk_failed)?;
                Ok(Volume::from(row))
            })
        },
        |v| Event::new("volume.create", "volume", Some(v.id)).details(json!({ "after": v })),
    )
    .await
}

fn disk_failed(e: disks::DiskError) -> ApiError {
    tracing::error!(error = %e, "volume file operation failed");
    ApiError::Unavailable("the volume's storage refused the operation; try again later".into())
}

/// Read a volume.
#[utoipa::path(get, operation_id = "volumes_get", path = "/v1/volumes/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = Volume), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<Volume>> {
    let mut tx = req.tx()?;
    let found = fetch(&req, &mut tx, id, false).await?;
    tx.commit().await?;
    Ok(Json(found.volume))
}

/// Grow a volume (never shrink it; counted against the quota) or change its
/// description. Not while a running VM uses it (409 `volume_in_use`).
#[utoipa::path(patch, operation_id = "volumes_update", path = "/v1/volumes/{id}", tag = "compute", params(("id" = Uuid, Path)),
    request_body = UpdateVolume, responses((status = 200, body = Volume), (status = 400), (status = 404), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn update(
    req: Req,
    PathId(id): PathId,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UpdateVolume>,
) -> ApiResult<Json<Volume>> {
    if let Some(size) = body.size_gib {
        check_size(size)?;
    }
    validate::description(body.description.as_deref())?;
    let mut tx = req.tx()?;
    let Found { volume: current, path } = fetch(&req, &mut tx, id, true).await?;
    req.grants.require_on_cluster(Permission::VolumeUpdate, current.cluster_id)?;
    check_version(&if_match, current.version)?;
    let size = body.size_gib.unwrap_or(current.size_gib);
    if size < current.size_gib {
        return Err(ApiError::bad_field(
            "size_gib",
            format!("a volume only grows: size_gib must be at least {}", current.size_gib),
        ));
    }
    if size > current.size_gib {
        if let Some(vm) = current.vm_id {
            let vm = vms::fetch(&req, &mut tx, vm, false).await?;
            if vm.state() != VmState::Stopped {
                return Err(ApiError::Conflict {
                    code: "volume_in_use",
                    message:
                        "the volume is attached to a VM that is not stopped; stop the VM or detach the volume first"
                            .into(),
                });
            }
        }
        adjust_disk(&mut tx, current.cluster_id, i64::from(size - current.size_gib)).await?;
    }
    let row: VolumeRow = sqlx::query_as(&format!(
        "UPDATE volumes SET size_gib = $2, description = COALESCE($3, description),
                version = version + 1, updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(size)
    .bind(&body.description)
    .fetch_one(&mut *tx)
    .await?;
    if size > current.size_gib {
        disks::grow_volume(&path, size).await.map_err(disk_failed)?;
    }
    crud::updated(tx, &req, "volume.update", "volume", id, &current, Volume::from(row)).await
}

/// Delete a detached volume and its file; its size goes back to the quota.
#[utoipa::path(delete, operation_id = "volumes_delete", path = "/v1/volumes/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn delete(req: Req, PathId(id): PathId) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let Found { volume, path } = fetch(&req, &mut tx, id, true).await?;
    req.grants.require_on_cluster(Permission::VolumeDelete, volume.cluster_id)?;
    if volume.vm_id.is_some() {
        return Err(attached());
    }
    adjust_disk(&mut tx, volume.cluster_id, -i64::from(volume.size_gib)).await?;
    let status = crud::deleted(tx, &req, "volumes", "volume.delete", "volume", id, &volume).await?;
    if let Err(e) = disks::remove(&path).await {
        tracing::error!(error = %e, volume = %id, "the deleted volume's file could not be removed");
    }
    Ok(status)
}

fn attached() -> ApiError {
    ApiError::Conflict { code: "volume_attached", message: "the volume is attached to a VM; detach it first".into() }
}

/// The lowest guest device (`vdb` .. `vdz`) no volume of `vm` uses (`vda` is
/// the VM's own disk).
async fn free_device(tx: &mut Tx, vm: Uuid) -> ApiResult<String> {
    let used: Vec<(String,)> = sqlx::query_as("SELECT device FROM volumes WHERE vm_id = $1 AND device IS NOT NULL")
        .bind(vm)
        .fetch_all(&mut **tx)
        .await?;
    (b'b'..=b'z')
        .map(|c| format!("vd{}", c as char))
        .find(|d| !used.iter().any(|(u,)| u == d))
        .ok_or_else(|| ApiError::Conflict { code: "too_many_volumes", message: "the VM has 25 volumes already".into() })
}

/// Attach a volume to a VM of its cluster; answers the volume with its guest
/// device. Attaching it again to the same VM changes nothing.
#[utoipa::path(post, operation_id = "volumes_attach", path = "/v1/volumes/{id}/attach", tag = "compute", params(("id" = Uuid, Path)),
    request_body = VolumeAttachment, responses((status = 200, body = Volume), (status = 404), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn attach(req: Req, PathId(id): PathId, ApiJson(body): ApiJson<VolumeAttachment>) -> ApiResult<Json<Volume>> {
    let mut tx = req.tx()?;
    let Found { volume, path } = fetch(&req, &mut tx, id, true).await?;
    req.grants.require_on_cluster(Permission::VolumeAttach, volume.cluster_id)?;
    match volume.vm_id {
        Some(vm) if vm == body.vm_id => {
            tx.commit().await?;
            return Ok(Json(volume));
        }
        Some(_) => return Err(attached()),
        None => {}
    }
    let vm = match vms::lock_for(&req, &mut tx, body.vm_id, Permission::VolumeAttach).await {
        Err(ApiError::NotFound { .. }) => return Err(ApiError::invalid_reference("vm_id", "no such VM")),
        other => other?,
    };
    if vm.cluster_id != volume.cluster_id {
        return Err(cluster_mismatch("vm_id", "the VM is on another cluster than the volume"));
    }
    let device = free_device(&mut tx, vm.id).await?;
    let after = record_attachment(tx, &req, &volume, Some((vm.id, &device))).await?;
    // Recorded; now the host. A refusal undoes the attachment.
    if let Err(e) = on_host(&req, vm.id, Device::Disk { path, target: device }, true).await {
        let mut tx = req.begin(true).await?;
        sqlx::query(
            "UPDATE volumes SET vm_id = NULL, device = NULL, version = version + 1 WHERE id = $1 AND vm_id = $2",
        )
        .bind(id)
        .bind(vm.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        return Err(e);
    }
    Ok(Json(after))
}

/// Detach a volume from the VM named in the body (409 `volume_not_attached`
/// if it is not attached to that VM).
#[utoipa::path(post, operation_id = "volumes_detach", path = "/v1/volumes/{id}/detach", tag = "compute", params(("id" = Uuid, Path)),
    request_body = VolumeAttachment, responses((status = 200, body = Volume), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn detach(req: Req, PathId(id): PathId, ApiJson(body): ApiJson<VolumeAttachment>) -> ApiResult<Json<Volume>> {
    let mut tx = req.tx()?;
    let Found { volume, path } = fetch(&req, &mut tx, id, true).await?;
    req.grants.require_on_cluster(Permission::VolumeDetach, volume.cluster_id)?;
    let (Some(vm), Some(device)) = (volume.vm_id, volume.device.clone()) else {
        return Err(not_attached());
    };
    if vm != body.vm_id {
        return Err(not_attached());
    }
    tx.commit().await?;
    // The host first, then the row: a disk the domain still has stays attached.
    on_host(&req, vm, Device::Disk { path, target: device }, false).await?;
    let tx = req.begin(true).await?;
    Ok(Json(record_attachment(tx, &req, &volume, None).await?))
}

/// Records that `volume` is now attached to a VM as a device, or (`None`)
/// detached; audits it with before and after, commits.
async fn record_attachment(mut tx: Tx, req: &Req, volume: &Volume, to: Option<(Uuid, &str)>) -> ApiResult<Volume> {
    let row: VolumeRow = sqlx::query_as(&format!(
        "UPDATE volumes SET vm_id = $2, device = $3, version = version + 1, updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(volume.id)
    .bind(to.map(|(vm, _)| vm))
    .bind(to.map(|(_, device)| device))
    .fetch_one(&mut *tx)
    .await?;
    let after = Volume::from(row);
    let action = if to.is_some() { "volume.attach" } else { "volume.detach" };
    let details = json!({ "before": volume, "after": after });
    audit::record(&mut tx, req, Event::new(action, "volume", Some(volume.id)).details(details)).await?;
    tx.commit().await?;
    Ok(after)
}

fn not_attached() -> ApiError {
    ApiError::Conflict { code: "volume_not_attached", message: "the volume is not attached to that VM".into() }
}
