//! `/v1/vms`: a tenant's virtual machines. Every change is an operation: the
//! handler checks and reserves in the request's transaction (quota, placement,
//! the VM's transitional state, a pending operation), answers `202 Accepted` with
//! the operation (and `Location: /v1/operations/{id}`), and the work runs in the
//! background ([`crate::compute::vm_work`]). One operation at a time per VM: a VM
//! in a transitional state answers 409 `vm_busy`.
//!
//! A cluster delegate sees and acts on the VMs of its cluster only; a VM of
//! another cluster is a 404 to it, like a VM of another tenant.

use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::collections::BTreeMap;

use basalt_client::{
    CloneVm, CreateVmRequest, MigrateVm, Operation, Page, PowerState, RebuildVm, ResizeVm, StopVm, UpdateVm, Vm,
    VmMetrics, VmState,
};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::extract::{check_version, page, ApiJson, ApiQuery, IdempotencyKey, IfMatch, OptionalJson, PathId, Req};
use crate::audit::{self, Event};
use crate::authz::Permission;
use crate::compute::vm_work::{self, CreatePlan, DiskSource, Power, RebuildPlan, ResizePlan, VmTask};
use crate::compute::{disks, operations, placement, DomainPower, DomainSpec, KernelBoot};
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::idempotency::{self, Claim};

const COLUMNS: &str = "id, tenant_id, name, cluster_id, template_id, vcpus, memory_mib, state, power_state,
     operation_id, disk_path, kernel, initrd, cmdline, description, labels, protected, placement_group_id,
     version, created_at, updated_at";

#[derive(sqlx::FromRow, Clone)]
pub struct VmRow {
    pub id: Uuid,
    tenant_id: Uuid,
    name: String,
    pub cluster_id: Uuid,
    template_id: Uuid,
    pub vcpus: i32,
    pub memory_mib: i64,
    state: String,
    power_state: String,
    operation_id: Option<Uuid>,
    pub disk_path: Option<String>,
    kernel: String,
    initrd: String,
    cmdline: String,
    description: String,
    labels: sqlx::types::Json<BTreeMap<String, String>>,
    pub protected: bool,
    pub placement_group_id: Option<Uuid>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl VmRow {
    pub fn state(&self) -> VmState {
        VmState::parse(&self.state).unwrap_or(VmState::Failed)
    }

    /// Kernel, initrd and command line (empty strings: boot from the disk).
    pub fn boot(&self) -> (String, String, String) {
        (self.kernel.clone(), self.initrd.clone(), self.cmdline.clone())
    }
}

/// Direct kernel boot parameters, when there is a kernel.
pub fn kernel_boot(kernel: &str, initrd: &str, cmdline: &str) -> Option<KernelBoot> {
    (!kernel.is_empty()).then(|| KernelBoot { kernel: kernel.into(), initrd: initrd.into(), cmdline: cmdline.into() })
}

impl From<VmRow> for Vm {
    fn from(r: VmRow) -> Vm {
        Vm {
            id: r.id,
            tenant_id: r.tenant_id,
            state: r.state(),
            name: r.name,
            cluster_id: r.cluster_id,
            template_id: r.template_id,
            vcpus: r.vcpus,
            memory_mib: r.memory_mib,
            power_state: if r.power_state == "stopped" { PowerState::Stopped } else { PowerState::Running },
            operation_id: r.operation_id,
            description: r.description,
            labels: r.labels.0,
            protected: r.protected,
            placement_group_id: r.placement_group_id,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

fn check_vm_name(name: &str) -> ApiResult<()> {
    let ok = (1..=63).contains(&name.len())
        && name.as_bytes()[0].is_ascii_alphabetic()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_field("name", "name must be 1 to 63 letters, digits and '-', starting with a letter"))
    }
}

/// A VM the caller may see (RLS, then its cluster's read permission), optionally
/// locked. Anything else is a 404.
pub async fn fetch(req: &Req, tx: &mut Tx, id: Uuid, lock: bool) -> ApiResult<VmRow> {
    let sql = format!("SELECT {COLUMNS} FROM vms WHERE id = $1{}", if lock { " FOR UPDATE" } else { "" });
    let row: Option<VmRow> = sqlx::query_as(&sql).bind(id).fetch_optional(&mut **tx).await?;
    match row {
        Some(vm) if req.grants.require_on_cluster(Permission::VmRead, vm.cluster_id).is_ok() => Ok(vm),
        _ => Err(ApiError::NotFound { kind: "vm" }),
    }
}

/// The VM, locked, for an operation that needs `permission` on its cluster and
/// a VM that no other operation is working on.
pub async fn lock_for(req: &Req, tx: &mut Tx, id: Uuid, permission: Permission) -> ApiResult<VmRow> {
    let vm = fetch(req, tx, id, true).await?;
    req.grants.require_on_cluster(permission, vm.cluster_id)?;
    if vm.state().is_transitional() {
        return Err(ApiError::Conflict {
            code: "vm_busy",
            message: format!("the VM is {}; wait for its operation to finish", vm.state().as_str()),
        });
    }
    Ok(vm)
}

/// A task handle for the background work on `vm`.
pub fn task(req: &Req, vm: Uuid, op: Uuid) -> ApiResult<VmTask> {
    let tenant = req.principal.context.tenant().ok_or(ApiError::NotFound { kind: "vm" })?;
    Ok(VmTask { db: req.state.db.clone(), compute: req.state.compute.clone(), tenant, vm, op })
}

/// `202 Accepted` with the operation and where to poll it.
pub fn accepted(op: &Operation) -> Response {
    with_location((StatusCode::ACCEPTED, Json(op.clone())).into_response(), op)
}

/// Adds `Location: /v1/operations/{id}` to an answer carrying operation `op`.
fn with_location(mut resp: Response, op: &Operation) -> Response {
    if let Ok(v) = header::HeaderValue::from_str(&format!("/v1/operations/{}", op.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Puts `vm` into `state` under a new operation `kind`, audits, commits.
pub async fn start_operation(
    req: &Req,
    mut tx: Tx,
    vm: &VmRow,
    kind: &'static str,
    state: VmState,
    power: Option<PowerState>,
    details: serde_json::Value,
) -> ApiResult<Operation> {
    let op = operations::record(
        &mut tx,
        req.principal.context.tenant(),
        kind,
        "vm",
        vm.id,
        req.principal.user_id,
        details.clone(),
    )
    .await?;
    sqlx::query(
        "UPDATE vms SET state = $2, operation_id = $3, power_state = COALESCE($4, power_state),
                version = version + 1, updated_at = now() WHERE id = $1",
    )
    .bind(vm.id)
    .bind(state.as_str())
    .bind(op.id)
    .bind(power.map(|p| p.as_str()))
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        req,
        Event::new(kind, "vm", Some(vm.id)).details(json!({ "operation_id": op.id, "request": details })),
    )
    .await?;
    tx.commit().await?;
    Ok(op)
}

/// `GET /v1/vms` filters.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VmQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// Only VMs carrying this label, as `key:value`.
    pub label: Option<String>,
}

/// List the VMs the caller may see (optionally only those with one label).
#[utoipa::path(get, operation_id = "vms_list", path = "/v1/vms", tag = "compute", params(VmQuery),
    responses((status = 200, body = Page<Vm>), (status = 400)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<VmQuery>) -> ApiResult<Json<Page<Vm>>> {
    let params = super::extract::PageQuery { limit: q.limit, cursor: q.cursor }.params()?;
    let label = match &q.label {
        None => None,
        Some(l) => {
            let (k, v) = l.split_once(':').ok_or_else(|| ApiError::bad_field("label", "label must be key:value"))?;
            check_label_key("label", k)?;
            Some(sqlx::types::Json(BTreeMap::from([(k.to_string(), v.to_string())])))
        }
    };
    let only = req.grants.clusters_for(Permission::VmList).as_param();
    let mut tx = req.tx()?;
    let rows: Vec<VmRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM vms WHERE ($1::uuid IS NULL OR id > $1) AND ($2::uuid[] IS NULL OR cluster_id = ANY($2))
            AND ($4::jsonb IS NULL OR labels @> $4)
          ORDER BY id LIMIT $3"
    ))
    .bind(params.after)
    .bind(only)
    .bind(params.limit + 1)
    .bind(label)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(page(rows.into_iter().map(Vm::from).collect(), params, |v: &Vm| v.id)))
}

/// Read a VM.
#[utoipa::path(get, operation_id = "vms_get", path = "/v1/vms/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vm), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<Vm>> {
    let mut tx = req.tx()?;
    let vm = fetch(&req, &mut tx, id, false).await?;
    tx.commit().await?;
    Ok(Json(vm.into()))
}

/// Create a VM from a template on a cluster where the tenant holds a quota:
/// 202 with the `vm.create` operation (its `target_id` is the VM). The quota is
/// reserved before the answer, so an over-quota create is refused at once; a
/// cluster with no host that has room fails the operation (`no_capacity`), and
/// so does a spread placement group with no host free of its members
/// (`placement_group_full`). Accepts `Idempotency-Key`.
#[utoipa::path(post, operation_id = "vms_create", path = "/v1/vms", tag = "compute", request_body = CreateVmRequest,
    responses((status = 202, body = Operation), (status = 400), (status = 404), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn create(req: Req, key: IdempotencyKey, ApiJson(body): ApiJson<CreateVmRequest>) -> ApiResult<Response> {
    req.check_body_tenant(body.tenant_id)?;
    check_vm_name(&body.name)?;
    super::templates::check_size(body.vcpus, body.memory_mib)?;
    let mut tx = req.tx()?;
    let claimed = match idempotency::claim(&mut tx, &req, &key, &body).await? {
        Claim::Replay(status, stored) => return Ok(idempotency::replay(status, stored)),
        Claim::Proceed(c) => c,
    };
    let cluster = super::clusters::referenced(&req, &mut tx, body.cluster_id, Permission::ClusterRead).await?;
    req.grants.require_on_cluster(Permission::VmCreate, cluster)?;
    let template = super::templates::fetch(&mut tx, body.template_id)
        .await
        .map_err(|_| ApiError::invalid_reference("template_id", "no such template"))?;
    if let Some(group) = body.placement_group_id {
        super::placement_groups::check_member(&req, &mut tx, group, cluster).await?;
    }
    let id = Uuid::now_v7();
    let new = NewVm {
        id,
        name: body.name.clone(),
        cluster,
        template: template.id,
        vcpus: body.vcpus.unwrap_or(template.vcpus),
        memory_mib: body.memory_mib.unwrap_or(template.memory_mib),
        boot: (template.kernel.clone(), template.initrd.clone(), template.cmdline.clone()),
        source: template_disk(&template),
        start: body.power_state.unwrap_or(PowerState::Running) == PowerState::Running,
        placement_group_id: body.placement_group_id,
        labels: BTreeMap::new(),
        kind: "vm.create",
        source_vm: None,
    };
    launch(req, tx, claimed, new).await
}

/// Where the disk of a VM made from `template` comes from.
fn template_disk(template: &basalt_client::Template) -> DiskSource {
    if template.image.is_empty() {
        DiskSource::None
    } else {
        DiskSource::Template { image: template.image.clone().into(), size_gib: template.disk_gib }
    }
}

/// A VM about to be made, by a create or a clone.
struct NewVm {
    id: Uuid,
    name: String,
    cluster: Uuid,
    template: Uuid,
    vcpus: i32,
    memory_mib: i64,
    /// Kernel, initrd and command line (empty: boot from the disk).
    boot: (String, String, String),
    source: DiskSource,
    start: bool,
    placement_group_id: Option<Uuid>,
    labels: BTreeMap<String, String>,
    /// `vm.create` or `vm.clone`.
    kind: &'static str,
    /// The VM a clone copies.
    source_vm: Option<Uuid>,
}

/// The one flow that makes a VM (create and clone): the quota reserved, the row
/// (`creating`) and a pending operation recorded, the audit event and the
/// idempotent answer stored, all in the request's transaction; then the work
/// ([`vm_work::create`]) runs in the background. Answers 202.
async fn launch(req: Req, mut tx: Tx, claimed: Option<Uuid>, new: NewVm) -> ApiResult<Response> {
    vm_work::adjust_quota(&mut tx, new.cluster, new.vcpus, new.memory_mib, 1).await?;
    let disk =
        (!matches!(new.source, DiskSource::None)).then(|| disks::vm_disk_path(&req.state.compute.storage_dir, new.id));
    let row: VmRow = sqlx::query_as(&format!(
        "INSERT INTO vms (id, tenant_id, name, cluster_id, template_id, vcpus, memory_mib, state, power_state, disk_path,
                          kernel, initrd, cmdline, placement_group_id, labels)
         VALUES ($1, basalt_tenant(), $2, $3, $4, $5, $6, 'creating', $7, $8, $9, $10, $11, $12, $13) RETURNING {COLUMNS}"
    ))
    .bind(new.id)
    .bind(&new.name)
    .bind(new.cluster)
    .bind(new.template)
    .bind(new.vcpus)
    .bind(new.memory_mib)
    .bind(if new.start { "running" } else { "stopped" })
    .bind(disk.as_ref().map(|d| d.to_string_lossy().into_owned()))
    .bind(&new.boot.0)
    .bind(&new.boot.1)
    .bind(&new.boot.2)
    .bind(new.placement_group_id)
    .bind(sqlx::types::Json(&new.labels))
    .fetch_one(&mut *tx)
    .await?;
    let details = json!({ "name": new.name, "cluster_id": new.cluster, "template_id": new.template,
        "vcpus": new.vcpus, "memory_mib": new.memory_mib, "placement_group_id": new.placement_group_id,
        "source_vm_id": new.source_vm });
    let op = operations::record(
        &mut tx,
        req.principal.context.tenant(),
        new.kind,
        "vm",
        new.id,
        req.principal.user_id,
        details.clone(),
    )
    .await?;
    sqlx::query("UPDATE vms SET operation_id = $2 WHERE id = $1").bind(new.id).bind(op.id).execute(&mut *tx).await?;
    audit::record(
        &mut tx,
        &req,
        Event::new(new.kind, "vm", Some(new.id))
            .details(json!({ "operation_id": op.id, "source_vm_id": new.source_vm, "after": Vm::from(row) })),
    )
    .await?;
    let resp = idempotency::answered(&mut tx, claimed, StatusCode::ACCEPTED, op.clone()).await?;
    tx.commit().await?;
    let spec = DomainSpec {
        id: new.id,
        name: format!("basalt-{}", new.id),
        vcpus: new.vcpus as u32,
        memory_mib: new.memory_mib as u64,
        disk,
        kernel: kernel_boot(&new.boot.0, &new.boot.1, &new.boot.2),
        devices: Vec::new(),
    };
    let plan = CreatePlan { cluster: new.cluster, spec, source: new.source, start: new.start };
    let task = task(&req, new.id, op.id)?;
    operations::spawn(req.state.db.clone(), Some(task.tenant), op.id, new.kind, vm_work::create(task, plan));
    Ok(with_location(resp, &op))
}

/// Labels: at most 32; keys `[a-z0-9][a-z0-9._-]{0,62}`; values at most 256
/// characters of display text.
fn check_labels(labels: &BTreeMap<String, String>) -> ApiResult<()> {
    if labels.len() > 32 {
        return Err(ApiError::bad_field("labels", format!("at most 32 labels (got {})", labels.len())));
    }
    for (k, v) in labels {
        check_label_key("labels", k)?;
        crate::validate::display_text(&format!("labels.{k}"), v, 256)?;
    }
    Ok(())
}

fn check_label_key(field: &str, key: &str) -> ApiResult<()> {
    let b = key.as_bytes();
    let ok = (1..=63).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_field(
            field,
            format!("label keys must be 1 to 63 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit: {:?} is not", key.chars().take(64).collect::<String>()),
        ))
    }
}

/// Change a VM's name, description or labels (`labels` replaces the whole map).
/// The domain on the host is named after the VM's id, so a rename touches only
/// Basalt's record. Takes `If-Match`.
#[utoipa::path(patch, operation_id = "vms_update", path = "/v1/vms/{id}", tag = "compute", params(("id" = Uuid, Path)), request_body = UpdateVm,
    responses((status = 200, body = Vm), (status = 400), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn update(
    req: Req,
    PathId(id): PathId,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UpdateVm>,
) -> ApiResult<Json<Vm>> {
    if let Some(name) = &body.name {
        check_vm_name(name)?;
    }
    crate::validate::description(body.description.as_deref())?;
    if let Some(labels) = &body.labels {
        check_labels(labels)?;
    }
    let mut tx = req.tx()?;
    let before = fetch(&req, &mut tx, id, true).await?;
    req.grants.require_on_cluster(Permission::VmUpdate, before.cluster_id)?;
    check_version(&if_match, before.version)?;
    let row: VmRow = sqlx::query_as(&format!(
        "UPDATE vms SET name = COALESCE($2, name), description = COALESCE($3, description),
                labels = COALESCE($4, labels), version = version + 1, updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(&body.name)
    .bind(&body.description)
    .bind(body.labels.as_ref().map(sqlx::types::Json))
    .fetch_one(&mut *tx)
    .await?;
    super::crud::updated(tx, &req, "vm.update", "vm", id, &Vm::from(before), Vm::from(row)).await
}

/// Sets or lifts a VM's deletion protection.
async fn set_protected(req: Req, id: Uuid, protect: bool) -> ApiResult<Json<Vm>> {
    let permission = if protect { Permission::VmProtect } else { Permission::VmUnprotect };
    let mut tx = req.tx()?;
    let before = fetch(&req, &mut tx, id, true).await?;
    req.grants.require_on_cluster(permission, before.cluster_id)?;
    let row: VmRow = sqlx::query_as(&format!(
        "UPDATE vms SET protected = $2, version = version + 1, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(protect)
    .fetch_one(&mut *tx)
    .await?;
    let action = if protect { "vm.protect" } else { "vm.unprotect" };
    super::crud::updated(tx, &req, action, "vm", id, &Vm::from(before), Vm::from(row)).await
}

/// Protect a VM: deleting or rebuilding it answers 409 `vm_protected` until it is unprotected.
#[utoipa::path(post, operation_id = "vms_protect", path = "/v1/vms/{id}/protect", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vm), (status = 404)), security(("bearer" = [])))]
pub async fn protect(req: Req, PathId(id): PathId) -> ApiResult<Json<Vm>> {
    set_protected(req, id, true).await
}

/// Lift a VM's deletion protection.
#[utoipa::path(post, operation_id = "vms_unprotect", path = "/v1/vms/{id}/unprotect", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vm), (status = 404)), security(("bearer" = [])))]
pub async fn unprotect(req: Req, PathId(id): PathId) -> ApiResult<Json<Vm>> {
    set_protected(req, id, false).await
}

fn refuse_protected(vm: &VmRow, what: &str) -> ApiResult<()> {
    if vm.protected {
        return Err(ApiError::Conflict {
            code: "vm_protected",
            message: format!(
                "the VM is protected: unprotect it (POST /v1/vms/{}/unprotect) before you {what} it",
                vm.id
            ),
        });
    }
    Ok(())
}

/// A VM's live figures, asked of its host now: state, vCPUs, memory, CPU time,
/// and the guest's memory statistics where the hypervisor has them.
#[utoipa::path(get, operation_id = "vms_metrics", path = "/v1/vms/{id}/metrics", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = VmMetrics), (status = 404), (status = 409), (status = 503)), security(("bearer" = [])))]
pub async fn metrics(req: Req, PathId(id): PathId) -> ApiResult<Json<VmMetrics>> {
    let mut tx = req.tx()?;
    let vm = fetch(&req, &mut tx, id, false).await?;
    req.grants.require_on_cluster(Permission::VmMetricsRead, vm.cluster_id)?;
    tx.commit().await?;
    // The request's transaction is gone: one pooled connection at a time.
    let host = placement::host_of(&req.state.db, vm.id).await?;
    let (uri, vm_id) = (host.uri, vm.id);
    let m = req.state.compute.call(move |hv| hv.metrics(&uri, vm_id)).await?;
    Ok(Json(VmMetrics {
        vm_id,
        state: match m.power {
            DomainPower::Running => "running",
            DomainPower::Paused => "paused",
            DomainPower::Off => "off",
        }
        .into(),
        vcpus: m.vcpus,
        max_memory_mib: m.max_memory_kib / 1024,
        memory_mib: m.memory_kib / 1024,
        cpu_time_ns: m.cpu_time_ns,
        memory_stats: m.memory_stats.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        sampled_at: Utc::now(),
    }))
}

/// Reinstall a VM's disk from its template, or from `template_id` (a template
/// no larger than the VM: its vCPUs and memory at most the VM's). The VM keeps
/// its size, name and id; the disk's content is lost. Refused on a protected VM
/// and on a VM with snapshots (they would describe a disk that no longer
/// exists). 202 with the `vm.rebuild` operation; a VM that ran runs again.
#[utoipa::path(post, operation_id = "vms_rebuild", path = "/v1/vms/{id}/rebuild", tag = "compute", params(("id" = Uuid, Path)), request_body = RebuildVm,
    responses((status = 202, body = Operation), (status = 404), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn rebuild(req: Req, PathId(id): PathId, OptionalJson(body): OptionalJson<RebuildVm>) -> ApiResult<Response> {
    let mut tx = req.tx()?;
    let vm = lock_for(&req, &mut tx, id, Permission::VmRebuild).await?;
    refuse_protected(&vm, "rebuild")?;
    let previous = vm.state();
    if !matches!(previous, VmState::Running | VmState::Stopped) {
        return Err(ApiError::Conflict {
            code: "invalid_vm_state",
            message: format!("cannot rebuild a VM that is {}", previous.as_str()),
        });
    }
    let (snapshots,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM vm_snapshots WHERE vm_id = $1").bind(vm.id).fetch_one(&mut *tx).await?;
    if snapshots > 0 {
        return Err(ApiError::Conflict {
            code: "vm_has_snapshots",
            message: format!(
                "delete the VM's {snapshots} snapshot(s) first: they would describe a disk that no longer exists"
            ),
        });
    }
    let template = super::templates::fetch(&mut tx, body.template_id.unwrap_or(vm.template_id))
        .await
        .map_err(|_| ApiError::invalid_reference("template_id", "no such template"))?;
    if template.vcpus > vm.vcpus || template.memory_mib > vm.memory_mib {
        return Err(ApiError::Unprocessable {
            code: "template_too_large",
            message: format!(
                "the template needs {} vCPUs and {} MiB; the VM has {} and {} (resize it first)",
                template.vcpus, template.memory_mib, vm.vcpus, vm.memory_mib
            ),
            details: json!({ "field": "template_id" }),
        });
    }
    let source = template_disk(&template);
    let disk =
        (!matches!(source, DiskSource::None)).then(|| disks::vm_disk_path(&req.state.compute.storage_dir, vm.id));
    let details = json!({ "template_id": template.id, "previous_template_id": vm.template_id });
    // The domain is defined anew: it keeps the VM's NICs and volumes.
    let devices = crate::compute::devices_of(&mut tx, vm.id).await?;
    let op = start_operation(&req, tx, &vm, "vm.rebuild", VmState::Stopping, None, details).await?;
    let plan = RebuildPlan {
        spec: DomainSpec {
            id: vm.id,
            name: format!("basalt-{}", vm.id),
            vcpus: vm.vcpus as u32,
            memory_mib: vm.memory_mib as u64,
            disk,
            kernel: kernel_boot(&template.kernel, &template.initrd, &template.cmdline),
            devices,
        },
        source,
        old_disk: vm.disk_path.clone().map(std::path::PathBuf::from),
        template: template.id,
        running: previous == VmState::Running,
        previous,
    };
    let task = task(&req, vm.id, op.id)?;
    operations::spawn(req.state.db.clone(), Some(task.tenant), op.id, "vm.rebuild", vm_work::rebuild(task, plan));
    Ok(accepted(&op))
}

/// A new VM on the same cluster with a full copy of this one's disk, its size,
/// template, boot parameters and labels (not its name, protection or placement
/// group). Counted against the quota like a create; a VM with a disk must be
/// stopped (a running guest's disk is not a consistent copy). 202 with the
/// `vm.clone` operation, whose `target_id` is the new VM. Accepts `Idempotency-Key`.
#[utoipa::path(post, operation_id = "vms_clone", path = "/v1/vms/{id}/clone", tag = "compute", params(("id" = Uuid, Path)), request_body = CloneVm,
    responses((status = 202, body = Operation), (status = 400), (status = 404), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn clone(
    req: Req,
    PathId(id): PathId,
    key: IdempotencyKey,
    ApiJson(body): ApiJson<CloneVm>,
) -> ApiResult<Response> {
    check_vm_name(&body.name)?;
    let mut tx = req.tx()?;
    let claimed = match idempotency::claim(&mut tx, &req, &key, &(id, &body)).await? {
        Claim::Replay(status, stored) => return Ok(idempotency::replay(status, stored)),
        Claim::Proceed(c) => c,
    };
    let source = lock_for(&req, &mut tx, id, Permission::VmClone).await?;
    let disk = match &source.disk_path {
        Some(_) if source.state() != VmState::Stopped => {
            return Err(ApiError::Conflict {
                code: "invalid_vm_state",
                message: "stop the VM first: a disk is copied from a stopped VM".into(),
            });
        }
        Some(disk) => DiskSource::Copy { from: disk.into() },
        None => DiskSource::None,
    };
    let new = NewVm {
        id: Uuid::now_v7(),
        name: body.name.clone(),
        cluster: source.cluster_id,
        template: source.template_id,
        vcpus: source.vcpus,
        memory_mib: source.memory_mib,
        boot: source.boot(),
        source: disk,
        start: body.power_state.unwrap_or(PowerState::Running) == PowerState::Running,
        placement_group_id: None,
        labels: source.labels.0.clone(),
        kind: "vm.clone",
        source_vm: Some(source.id),
    };
    launch(req, tx, claimed, new).await
}

/// Runs a power action as an operation.
async fn power_action(req: Req, id: Uuid, action: Power, kind: &'static str) -> ApiResult<Response> {
    let permission = if action == Power::Reset { Permission::VmReset } else { Permission::VmPower };
    let mut tx = req.tx()?;
    let vm = lock_for(&req, &mut tx, id, permission).await?;
    let from = vm.state();
    let allowed = match action {
        Power::Start => matches!(from, VmState::Stopped | VmState::Failed),
        Power::Stop { .. } | Power::ForceStop => {
            matches!(from, VmState::Running | VmState::Suspended | VmState::Failed)
        }
        Power::Reboot | Power::Suspend | Power::Reset => from == VmState::Running,
        Power::Resume => from == VmState::Suspended,
    };
    if !allowed {
        return Err(ApiError::Conflict {
            code: "invalid_vm_state",
            message: format!("cannot {} a VM that is {}", kind.trim_start_matches("vm."), from.as_str()),
        });
    }
    let (during, desired) = match action {
        Power::Start => (VmState::Starting, Some(PowerState::Running)),
        Power::Stop { .. } | Power::ForceStop => (VmState::Stopping, Some(PowerState::Stopped)),
        Power::Reboot | Power::Reset => (VmState::Starting, None),
        Power::Suspend => (VmState::Stopping, None),
        Power::Resume => (VmState::Starting, None),
    };
    let op = start_operation(&req, tx, &vm, kind, during, desired, json!({})).await?;
    let task = task(&req, vm.id, op.id)?;
    operations::spawn(req.state.db.clone(), Some(task.tenant), op.id, kind, vm_work::power(task, action, from));
    Ok(accepted(&op))
}

/// Start a stopped VM.
#[utoipa::path(post, operation_id = "vms_start", path = "/v1/vms/{id}/start", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 202, body = Operation), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn start(req: Req, PathId(id): PathId) -> ApiResult<Response> {
    power_action(req, id, Power::Start, "vm.start").await
}

/// Stop a VM: the guest is asked to shut down and powered off after the timeout
/// (default 60 s), or at once with `force`. The body is optional.
#[utoipa::path(post, operation_id = "vms_stop", path = "/v1/vms/{id}/stop", tag = "compute", params(("id" = Uuid, Path)), request_body = StopVm,
    responses((status = 202, body = Operation), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn stop(req: Req, PathId(id): PathId, OptionalJson(body): OptionalJson<StopVm>) -> ApiResult<Response> {
    let timeout = body.timeout_seconds.unwrap_or(60);
    if !(1..=3600).contains(&timeout) {
        return Err(ApiError::bad_field("timeout_seconds", "timeout_seconds must be 1 to 3600"));
    }
    let action =
        if body.force { Power::ForceStop } else { Power::Stop { timeout: Duration::from_secs(timeout.into()) } };
    power_action(req, id, action, "vm.stop").await
}

/// Reboot a running VM.
#[utoipa::path(post, operation_id = "vms_reboot", path = "/v1/vms/{id}/reboot", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 202, body = Operation), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn reboot(req: Req, PathId(id): PathId) -> ApiResult<Response> {
    power_action(req, id, Power::Reboot, "vm.reboot").await
}

/// Hard-reset a running VM (`virDomainReset`: the reset button; the guest is
/// not asked, unlike `reboot`).
#[utoipa::path(post, operation_id = "vms_reset", path = "/v1/vms/{id}/reset", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 202, body = Operation), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn reset(req: Req, PathId(id): PathId) -> ApiResult<Response> {
    power_action(req, id, Power::Reset, "vm.reset").await
}

/// Suspend (pause in memory) a running VM.
#[utoipa::path(post, operation_id = "vms_suspend", path = "/v1/vms/{id}/suspend", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 202, body = Operation), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn suspend(req: Req, PathId(id): PathId) -> ApiResult<Response> {
    power_action(req, id, Power::Suspend, "vm.suspend").await
}

/// Resume a suspended VM.
#[utoipa::path(post, operation_id = "vms_resume", path = "/v1/vms/{id}/resume", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 202, body = Operation), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn resume(req: Req, PathId(id): PathId) -> ApiResult<Response> {
    power_action(req, id, Power::Resume, "vm.resume").await
}

/// Resize a VM. The quota and the host's room are checked before the answer.
#[utoipa::path(post, operation_id = "vms_resize", path = "/v1/vms/{id}/resize", tag = "compute", params(("id" = Uuid, Path)), request_body = ResizeVm,
    responses((status = 202, body = Operation), (status = 400), (status = 404), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn resize(req: Req, PathId(id): PathId, ApiJson(body): ApiJson<ResizeVm>) -> ApiResult<Response> {
    if body.vcpus.is_none() && body.memory_mib.is_none() {
        return Err(ApiError::bad_request("invalid_body", "give vcpus, memory_mib or both"));
    }
    super::templates::check_size(body.vcpus, body.memory_mib)?;
    let mut tx = req.tx()?;
    let vm = lock_for(&req, &mut tx, id, Permission::VmResize).await?;
    let previous = vm.state();
    if !matches!(previous, VmState::Running | VmState::Stopped) {
        return Err(ApiError::Conflict {
            code: "invalid_vm_state",
            message: format!("cannot resize a VM that is {}", previous.as_str()),
        });
    }
    let new = (body.vcpus.unwrap_or(vm.vcpus), body.memory_mib.unwrap_or(vm.memory_mib));
    let old = (vm.vcpus, vm.memory_mib);
    vm_work::adjust_quota(&mut tx, vm.cluster_id, new.0 - old.0, new.1 - old.1, 0).await?;
    let details = json!({ "vcpus": new.0, "memory_mib": new.1, "restart": body.restart });
    let during = if previous == VmState::Running && body.restart { VmState::Stopping } else { previous };
    let op = start_operation(&req, tx, &vm, "vm.resize", during, None, details).await?;
    let plan = ResizePlan {
        cluster: vm.cluster_id,
        old,
        new,
        running: previous == VmState::Running,
        restart: body.restart,
        previous,
    };
    let task = task(&req, vm.id, op.id)?;
    operations::spawn(req.state.db.clone(), Some(task.tenant), op.id, "vm.resize", vm_work::resize(task, plan));
    Ok(accepted(&op))
}

/// Move a VM to another host of its cluster: live when it runs, offline when
/// stopped. A host that cannot migrate (libvirt's test driver) fails the
/// operation with `migration_unsupported`.
#[utoipa::path(post, operation_id = "vms_migrate", path = "/v1/vms/{id}/migrate", tag = "compute", params(("id" = Uuid, Path)), request_body = MigrateVm,
    responses((status = 202, body = Operation), (status = 404), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn migrate(req: Req, PathId(id): PathId, OptionalJson(body): OptionalJson<MigrateVm>) -> ApiResult<Response> {
    let mut tx = req.tx()?;
    let vm = lock_for(&req, &mut tx, id, Permission::VmMigrate).await?;
    let previous = vm.state();
    if !matches!(previous, VmState::Running | VmState::Stopped) {
        return Err(ApiError::Conflict {
            code: "invalid_vm_state",
            message: format!("cannot migrate a VM that is {}", previous.as_str()),
        });
    }
    let op = start_operation(&req, tx, &vm, "vm.migrate", VmState::Migrating, None, json!({ "host_id": body.host_id }))
        .await?;
    let task = task(&req, vm.id, op.id)?;
    let work = vm_work::migrate(task.clone(), vm.cluster_id, body.host_id, previous);
    operations::spawn(req.state.db.clone(), Some(task.tenant), op.id, "vm.migrate", work);
    Ok(accepted(&op))
}

/// Delete a VM, its disk and its snapshots: 202 with the `vm.delete` operation.
/// A protected VM answers 409 `vm_protected` and nothing changes.
#[utoipa::path(delete, operation_id = "vms_delete", path = "/v1/vms/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 202, body = Operation), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn delete(req: Req, PathId(id): PathId) -> ApiResult<Response> {
    let mut tx = req.tx()?;
    let vm = lock_for(&req, &mut tx, id, Permission::VmDelete).await?;
    refuse_protected(&vm, "delete")?;
    let op = start_operation(&req, tx, &vm, "vm.delete", VmState::Deleting, None, json!({})).await?;
    let task = task(&req, vm.id, op.id)?;
    let disk = vm.disk_path.clone().map(std::path::PathBuf::from);
    let work = vm_work::delete(task.clone(), vm.cluster_id, (vm.vcpus, vm.memory_mib), disk);
    operations::spawn(req.state.db.clone(), Some(task.tenant), op.id, "vm.delete", work);
    Ok(accepted(&op))
}
