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
use basalt_client::{CreateVm, MigrateVm, Operation, Page, PowerState, ResizeVm, StopVm, Vm, VmState};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::extract::{page, ApiJson, ApiQuery, IdempotencyKey, OptionalJson, PageQuery, PathId, Req};
use crate::audit::{self, Event};
use crate::authz::Permission;
use crate::compute::vm_work::{self, CreatePlan, Power, ResizePlan, VmTask};
use crate::compute::{disks, operations, DomainSpec, KernelBoot};
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::idempotency::{self, Claim};

const COLUMNS: &str = "id, tenant_id, name, cluster_id, template_id, vcpus, memory_mib, state, power_state,
     operation_id, disk_path, kernel, initrd, cmdline, version, created_at, updated_at";

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

/// List the VMs the caller may see.
#[utoipa::path(get, operation_id = "vms_list", path = "/v1/vms", tag = "compute", params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Vm>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<Vm>>> {
    let params = q.params()?;
    let only = req.grants.clusters_for(Permission::VmList).as_param();
    let mut tx = req.tx()?;
    let rows: Vec<VmRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM vms WHERE ($1::uuid IS NULL OR id > $1) AND ($2::uuid[] IS NULL OR cluster_id = ANY($2))
          ORDER BY id LIMIT $3"
    ))
    .bind(params.after)
    .bind(only)
    .bind(params.limit + 1)
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
/// cluster with no host that has room fails the operation (`no_capacity`).
/// Accepts `Idempotency-Key`.
#[utoipa::path(post, operation_id = "vms_create", path = "/v1/vms", tag = "compute", request_body = CreateVm,
    responses((status = 202, body = Operation), (status = 400), (status = 404), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn create(req: Req, key: IdempotencyKey, ApiJson(body): ApiJson<CreateVm>) -> ApiResult<Response> {
    req.check_body_tenant(body.tenant_id)?;
    check_vm_name(&body.name)?;
    super::templates::check_size(body.vcpus, body.memory_mib)?;
    let mut tx = req.tx()?;
    let claimed = match idempotency::claim(&mut tx, &req, &key, &body).await? {
        Claim::Replay(status, stored) => return Ok(idempotency::replay(status, stored)),
        Claim::Proceed(c) => c,
    };
    let cluster = super::clusters::visible(&req, &mut tx, body.cluster_id, Permission::ClusterRead)
        .await
        .map_err(|_| invalid_reference("cluster_id", "no such cluster (or no quota on it)"))?;
    req.grants.require_on_cluster(Permission::VmCreate, cluster)?;
    let template = super::templates::fetch(&mut tx, body.template_id)
        .await
        .map_err(|_| invalid_reference("template_id", "no such template"))?;
    let vcpus = body.vcpus.unwrap_or(template.vcpus);
    let memory_mib = body.memory_mib.unwrap_or(template.memory_mib);
    vm_work::adjust_quota(&mut tx, cluster, vcpus, memory_mib, 1).await?;

    let id = Uuid::now_v7();
    let disk = (!template.image.is_empty()).then(|| disks::vm_disk_path(&req.state.compute.storage_dir, id));
    let start = body.power_state.unwrap_or(PowerState::Running) == PowerState::Running;
    let row: VmRow = sqlx::query_as(&format!(
        "INSERT INTO vms (id, tenant_id, name, cluster_id, template_id, vcpus, memory_mib, state, power_state, disk_path,
                          kernel, initrd, cmdline)
         VALUES ($1, basalt_tenant(), $2, $3, $4, $5, $6, 'creating', $7, $8, $9, $10, $11) RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(&body.name)
    .bind(cluster)
    .bind(template.id)
    .bind(vcpus)
    .bind(memory_mib)
    .bind(if start { "running" } else { "stopped" })
    .bind(disk.as_ref().map(|d| d.to_string_lossy().into_owned()))
    .bind(&template.kernel)
    .bind(&template.initrd)
    .bind(&template.cmdline)
    .fetch_one(&mut *tx)
    .await?;
    let details = json!({ "name": body.name, "cluster_id": cluster, "template_id": template.id, "vcpus": vcpus, "memory_mib": memory_mib });
    let op = operations::record(
        &mut tx,
        req.principal.context.tenant(),
        "vm.create",
        "vm",
        id,
        req.principal.user_id,
        details.clone(),
    )
    .await?;
    sqlx::query("UPDATE vms SET operation_id = $2 WHERE id = $1").bind(id).bind(op.id).execute(&mut *tx).await?;
    audit::record(
        &mut tx,
        &req,
        Event::new("vm.create", "vm", Some(id)).details(json!({ "operation_id": op.id, "after": Vm::from(row) })),
    )
    .await?;
    let resp = idempotency::answered(&mut tx, claimed, StatusCode::ACCEPTED, op.clone()).await?;
    tx.commit().await?;
    let spec = DomainSpec {
        id,
        name: format!("basalt-{id}"),
        vcpus: vcpus as u32,
        memory_mib: memory_mib as u64,
        disk: disk.clone(),
        kernel: kernel_boot(&template.kernel, &template.initrd, &template.cmdline),
    };
    let image = (!template.image.is_empty()).then(|| std::path::PathBuf::from(&template.image));
    let plan = CreatePlan { cluster, spec, image, disk_gib: template.disk_gib, start };
    let task = task(&req, id, op.id)?;
    operations::spawn(req.state.db.clone(), Some(task.tenant), op.id, "vm.create", vm_work::create(task, plan));
    Ok(with_location(resp, &op))
}

/// 422 `invalid_reference`: a body field names an object the caller cannot see.
pub fn invalid_reference(field: &str, message: &str) -> ApiError {
    ApiError::Unprocessable { code: "invalid_reference", message: message.into(), details: json!({ "field": field }) }
}

/// Runs a power action as an operation.
async fn power_action(req: Req, id: Uuid, action: Power, kind: &'static str) -> ApiResult<Response> {
    let mut tx = req.tx()?;
    let vm = lock_for(&req, &mut tx, id, Permission::VmPower).await?;
    let from = vm.state();
    let allowed = match action {
        Power::Start => matches!(from, VmState::Stopped | VmState::Failed),
        Power::Stop { .. } | Power::ForceStop => {
            matches!(from, VmState::Running | VmState::Suspended | VmState::Failed)
        }
        Power::Reboot | Power::Suspend => from == VmState::Running,
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
        Power::Reboot => (VmState::Starting, None),
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
#[utoipa::path(delete, operation_id = "vms_delete", path = "/v1/vms/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 202, body = Operation), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn delete(req: Req, PathId(id): PathId) -> ApiResult<Response> {
    let mut tx = req.tx()?;
    let vm = lock_for(&req, &mut tx, id, Permission::VmDelete).await?;
    let op = start_operation(&req, tx, &vm, "vm.delete", VmState::Deleting, None, json!({})).await?;
    let task = task(&req, vm.id, op.id)?;
    let disk = vm.disk_path.clone().map(std::path::PathBuf::from);
    let work = vm_work::delete(task.clone(), vm.cluster_id, (vm.vcpus, vm.memory_mib), disk);
    operations::spawn(req.state.db.clone(), Some(task.tenant), op.id, "vm.delete", work);
    Ok(accepted(&op))
}
