//! The steps of each VM operation, run in the background by
//! [`operations::spawn`](super::operations::spawn) after the API accepted the
//! request (202). Each function either completes the work and records the VM's
//! new state, or undoes what it did and returns the error, so a failed create
//! leaves no disk, domain, placement, quota usage or VM row behind.

use std::path::PathBuf;
use std::time::Duration;

use basalt_client::VmState;
use uuid::Uuid;

use super::placement::{self, PlacedHost};
use super::{disks, operations, Compute, DomainPower, DomainSpec, HvError};
use crate::db::{Db, Tx};
use crate::error::{ApiError, ApiResult};

/// One VM's operation: where it runs and what to record on.
#[derive(Clone)]
pub struct VmTask {
    pub db: Db,
    pub compute: Compute,
    pub tenant: Uuid,
    pub vm: Uuid,
    pub op: Uuid,
}

impl VmTask {
    async fn tx(&self) -> ApiResult<Tx> {
        operations::context_tx(&self.db, Some(self.tenant)).await
    }

    async fn progress(&self, percent: i32) {
        if let Err(e) = operations::progress(&self.db, Some(self.tenant), self.op, percent).await {
            tracing::warn!(error = %e, "could not record progress");
        }
    }

    /// Records the VM's state and ends its operation.
    pub async fn settle(&self, state: VmState) -> ApiResult<()> {
        let mut tx = self.tx().await?;
        sqlx::query("UPDATE vms SET state = $2, operation_id = NULL, updated_at = now() WHERE id = $1")
            .bind(self.vm)
            .bind(state.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The host the VM is placed on (a system lookup, after the request's own
    /// transaction is gone: a handler never holds two pooled connections at once,
    /// which under load would starve the pool).
    async fn host(&self) -> ApiResult<PlacedHost> {
        placement::host_of(&self.db, self.vm).await
    }

    async fn hv<T, F>(&self, work: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn super::Hypervisor) -> Result<T, HvError> + Send + 'static,
    {
        Ok(self.compute.call(work).await?)
    }

    /// Records the state the host reports (after a revert, or a failure), or
    /// `previous` when the host cannot be asked.
    pub async fn settle_from_host(&self, uri: &str, previous: VmState) {
        let (uri, id) = (uri.to_string(), self.vm);
        let state = match self.compute.call(move |hv| hv.power(&uri, id)).await {
            Ok(Some(DomainPower::Running)) => VmState::Running,
            Ok(Some(DomainPower::Paused)) => VmState::Suspended,
            Ok(Some(DomainPower::Off)) => VmState::Stopped,
            Ok(None) => VmState::Failed,
            Err(_) => previous,
        };
        if let Err(e) = self.settle(state).await {
            tracing::error!(error = %e, "could not record the VM's state after a failure");
        }
    }
}

/// Adds to (or, negative, releases from) the tenant's usage of its quota on
/// `cluster`, in `tx`. The quota row is locked, so concurrent creates queue here,
/// and the table's CHECK refuses anything over the limits even if this check
/// were wrong.
pub async fn adjust_quota(tx: &mut Tx, cluster: Uuid, vcpus: i32, memory_mib: i64, vms: i32) -> ApiResult<()> {
    let quota: Option<(Uuid, i32, i64, i32, i32, i64, i32)> = sqlx::query_as(
        "SELECT id, vcpus, memory_mib, max_vms, vcpus_used, memory_used_mib, vms_used
           FROM quotas WHERE cluster_id = $1 FOR UPDATE",
    )
    .bind(cluster)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((id, max_cpu, max_mem, max_vms, used_cpu, used_mem, used_vms)) = quota else {
        return Err(ApiError::Unprocessable {
            code: "no_quota",
            message: "your tenant has no quota on this cluster".into(),
            details: serde_json::json!({ "field": "cluster_id" }),
        });
    };
    let over: Vec<serde_json::Value> = [
        ("vcpus", i64::from(used_cpu), i64::from(vcpus), i64::from(max_cpu)),
        ("memory_mib", used_mem, memory_mib, max_mem),
        ("vms", i64::from(used_vms), i64::from(vms), i64::from(max_vms)),
    ]
    .into_iter()
    .filter(|(_, used, add, max)| *add > 0 && used + add > *max)
    .map(|(what, used, add, max)| serde_json::json!({ "resource": what, "limit": max, "used": used, "requested": add }))
    .collect();
    if !over.is_empty() {
        return Err(ApiError::Unprocessable {
            code: "quota_exceeded",
            message: "this would exceed your quota on the cluster".into(),
            details: serde_json::json!({ "exceeded": over }),
        });
    }
    sqlx::query(
        "UPDATE quotas SET vcpus_used = greatest(vcpus_used + $2, 0),
                memory_used_mib = greatest(memory_used_mib + $3, 0), vms_used = greatest(vms_used + $4, 0)
          WHERE id = $1",
    )
    .bind(id)
    .bind(vcpus)
    .bind(memory_mib)
    .bind(vms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Where a new VM's disk (`DomainSpec::disk`) comes from.
#[derive(Debug, Clone)]
pub enum DiskSource {
    /// Nothing to make: a diskless VM (or a disk already in place).
    None,
    /// A linked clone of a template's base image, `size_gib` large.
    Template { image: PathBuf, size_gib: i32 },
    /// A full, standalone copy of another VM's disk (a clone).
    Copy { from: PathBuf },
}

impl DiskSource {
    /// Makes `disk` from this source.
    async fn make(&self, disk: &std::path::Path) -> ApiResult<()> {
        let made = match self {
            DiskSource::None => Ok(()),
            DiskSource::Template { image, size_gib } => disks::clone_linked(image, disk, *size_gib).await,
            DiskSource::Copy { from } => disks::flatten(from, disk).await,
        };
        made.map_err(|e| ApiError::Unprocessable {
            code: "disk_failed",
            message: format!("the VM's disk could not be created: {e}"),
            details: serde_json::json!({}),
        })
    }
}

/// What a create needs beyond the VM row.
pub struct CreatePlan {
    pub cluster: Uuid,
    pub spec: DomainSpec,
    /// What the VM's disk is made from, when it has one.
    pub source: DiskSource,
    pub start: bool,
}

/// The spread rule of placement groups, held while a member is placed: in the
/// tenant's context, the VM's group row locked (`FOR NO KEY UPDATE`: two members
/// of one group are never placed at once, while new members may still join) and
/// the ids of its other members, whose hosts the VM must avoid. No group:
/// nothing held, nothing to avoid. Holding it costs a second pooled connection
/// in the background work (never in a request handler).
pub struct SpreadGuard {
    tx: Option<Tx>,
    pub avoid: Vec<Uuid>,
}

impl SpreadGuard {
    pub async fn take(task: &VmTask) -> ApiResult<SpreadGuard> {
        let mut tx = task.tx().await?;
        let group: Option<(Uuid,)> = sqlx::query_as(
            "SELECT g.id FROM placement_groups g JOIN vms v ON v.placement_group_id = g.id
              WHERE v.id = $1 FOR NO KEY UPDATE OF g",
        )
        .bind(task.vm)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((group,)) = group else {
            tx.commit().await?;
            return Ok(SpreadGuard { tx: None, avoid: Vec::new() });
        };
        let avoid: Vec<(Uuid,)> = sqlx::query_as("SELECT id FROM vms WHERE placement_group_id = $1 AND id <> $2")
            .bind(group)
            .bind(task.vm)
            .fetch_all(&mut *tx)
            .await?;
        Ok(SpreadGuard { tx: Some(tx), avoid: avoid.into_iter().map(|(id,)| id).collect() })
    }

    /// Lets the next member of the group be placed.
    pub async fn release(self) {
        if let Some(tx) = self.tx {
            if let Err(e) = tx.commit().await {
                tracing::warn!(error = %e, "could not release the placement group's lock");
            }
        }
    }
}

/// Create: place on a host (spread from its placement group's other members) →
/// make the disk → define → start. Any failure undoes every step done so far,
/// and the quota reserved by the API.
pub async fn create(task: VmTask, plan: CreatePlan) -> ApiResult<()> {
    let (vcpus, mem) = (plan.spec.vcpus as i32, plan.spec.memory_mib as i64);
    let placed = async {
        let guard = SpreadGuard::take(&task).await?;
        let host = placement::place(&task.db, plan.cluster, task.vm, vcpus, mem, &guard.avoid).await;
        guard.release().await;
        host
    };
    let host = match placed.await {
        Ok(host) => host,
        Err(e) => {
            undo_create(&task, &plan, None).await;
            return Err(e);
        }
    };
    let uri = host.uri.clone();
    let steps = async {
        task.progress(10).await;
        if let Some(disk) = &plan.spec.disk {
            plan.source.make(disk).await?;
        }
        task.progress(40).await;
        let (u, spec) = (uri.clone(), plan.spec.clone());
        task.hv(move |hv| hv.define(&u, &spec)).await?;
        task.progress(70).await;
        if plan.start {
            let (u, id) = (uri.clone(), task.vm);
            task.hv(move |hv| hv.start(&u, id)).await?;
        }
        Ok::<(), ApiError>(())
    }
    .await;
    match steps {
        Ok(()) => task.settle(if plan.start { VmState::Running } else { VmState::Stopped }).await,
        Err(e) => {
            undo_create(&task, &plan, Some(&uri)).await;
            Err(e)
        }
    }
}

/// Removes whatever a create made: the domain, the disk, the placement (when it
/// got that far), the quota usage and the VM row (and the idempotency key, so a
/// retry creates anew).
pub(crate) async fn undo_create(task: &VmTask, plan: &CreatePlan, uri: Option<&str>) {
    if let Some(uri) = uri {
        let (u, id) = (uri.to_string(), task.vm);
        if let Err(e) = task.compute.call(move |hv| hv.undefine(&u, id)).await {
            tracing::error!(error = %e, "undo: could not undefine the domain");
        }
        if let Some(disk) = &plan.spec.disk {
            if let Err(e) = disks::remove(disk).await {
                tracing::error!(error = %e, "undo: could not remove the disk");
            }
        }
        if let Err(e) = placement::release(&task.db, task.vm).await {
            tracing::error!(error = %e, "undo: could not release the placement");
        }
    }
    let forget = async {
        let mut tx = task.tx().await?;
        adjust_quota(&mut tx, plan.cluster, -(plan.spec.vcpus as i32), -(plan.spec.memory_mib as i64), -1).await?;
        sqlx::query("DELETE FROM vms WHERE id = $1").bind(task.vm).execute(&mut *tx).await?;
        crate::idempotency::forget_object(&mut tx, task.vm).await?;
        tx.commit().await?;
        Ok::<(), ApiError>(())
    };
    if let Err(e) = forget.await {
        tracing::error!(error = %e, "undo: could not release the quota and the VM row");
    }
}

/// A power action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    Start,
    /// Ask the guest, power off after the timeout.
    Stop {
        timeout: Duration,
    },
    ForceStop,
    Reboot,
    Suspend,
    Resume,
    /// A hard reset (`virDomainReset`).
    Reset,
}

impl Power {
    /// The state the VM reaches when the action succeeds.
    pub fn outcome(self) -> VmState {
        match self {
            Power::Start | Power::Reboot | Power::Resume | Power::Reset => VmState::Running,
            Power::Stop { .. } | Power::ForceStop => VmState::Stopped,
            Power::Suspend => VmState::Suspended,
        }
    }
}

/// Runs a power action on the host.
async fn power_on_host(task: &VmTask, uri: &str, action: Power) -> ApiResult<()> {
    let (u, id) = (uri.to_string(), task.vm);
    match action {
        Power::Start => task.hv(move |hv| hv.start(&u, id)).await,
        Power::ForceStop => task.hv(move |hv| hv.destroy(&u, id)).await,
        Power::Reboot => task.hv(move |hv| hv.reboot(&u, id)).await,
        Power::Suspend => task.hv(move |hv| hv.suspend(&u, id)).await,
        Power::Resume => task.hv(move |hv| hv.resume(&u, id)).await,
        Power::Reset => task.hv(move |hv| hv.reset(&u, id)).await,
        Power::Stop { timeout } => {
            task.hv(move |hv| hv.shutdown(&u, id)).await?;
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let (u, id) = (uri.to_string(), task.vm);
                if task.hv(move |hv| hv.power(&u, id)).await? != Some(DomainPower::Running) {
                    return Ok(());
                }
                if tokio::time::Instant::now() >= deadline {
                    tracing::info!("the guest did not shut down in time: powering off");
                    let (u, id) = (uri.to_string(), task.vm);
                    return task.hv(move |hv| hv.destroy(&u, id)).await;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// Start, stop, reboot, suspend or resume.
pub async fn power(task: VmTask, action: Power, previous: VmState) -> ApiResult<()> {
    let host = match task.host().await {
        Ok(h) => h,
        Err(e) => {
            task.settle(previous).await?;
            return Err(e);
        }
    };
    task.progress(20).await;
    match power_on_host(&task, &host.uri, action).await {
        Ok(()) => task.settle(action.outcome()).await,
        Err(e) => {
            task.settle_from_host(&host.uri, previous).await;
            Err(e)
        }
    }
}

/// A resize accepted by the API: the quota already holds the new size.
pub struct ResizePlan {
    pub cluster: Uuid,
    pub old: (i32, i64),
    pub new: (i32, i64),
    pub running: bool,
    pub restart: bool,
    pub previous: VmState,
}

/// Resize: the host's room first, then cold (stopped VM), restart (stop →
/// resize → start) or live. A failure gives back the reservations.
pub async fn resize(task: VmTask, plan: ResizePlan) -> ApiResult<()> {
    let (vcpus, mem) = (plan.new.0 as u32, plan.new.1 as u64);
    let mut placed = false;
    let steps = async {
        let host = task.host().await?;
        placement::resize(&task.db, plan.cluster, task.vm, plan.new.0, plan.new.1).await?;
        placed = true;
        if plan.running && plan.restart {
            power_on_host(&task, &host.uri, Power::Stop { timeout: Duration::from_secs(60) }).await?;
        }
        task.progress(50).await;
        let live = plan.running && !plan.restart;
        let (u, id) = (host.uri.clone(), task.vm);
        task.hv(move |hv| hv.resize(&u, id, vcpus, mem, live)).await?;
        if plan.running && plan.restart {
            power_on_host(&task, &host.uri, Power::Start).await?;
        }
        Ok::<String, ApiError>(host.uri)
    }
    .await;
    match steps {
        Ok(_) => {
            let mut tx = task.tx().await?;
            sqlx::query("UPDATE vms SET vcpus = $2, memory_mib = $3, version = version + 1 WHERE id = $1")
                .bind(task.vm)
                .bind(plan.new.0)
                .bind(plan.new.1)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            task.settle(plan.previous).await
        }
        Err(e) => {
            let undo = async {
                if placed {
                    placement::resize(&task.db, plan.cluster, task.vm, plan.old.0, plan.old.1).await?;
                }
                let mut tx = task.tx().await?;
                adjust_quota(&mut tx, plan.cluster, plan.old.0 - plan.new.0, plan.old.1 - plan.new.1, 0).await?;
                tx.commit().await?;
                Ok::<(), ApiError>(())
            };
            if let Err(u) = undo.await {
                tracing::error!(error = %u, "undo: could not restore the VM's reservation");
            }
            match task.host().await {
                Ok(h) => task.settle_from_host(&h.uri, plan.previous).await,
                Err(_) => task.settle(plan.previous).await?,
            }
            Err(e)
        }
    }
}

/// Migrate to `wanted` or a host placement chooses: live when running,
/// offline otherwise.
pub async fn migrate(task: VmTask, cluster: Uuid, wanted: Option<Uuid>, previous: VmState) -> ApiResult<()> {
    let moved = async {
        let from = task.host().await?;
        if from.uri.starts_with("test:") {
            return Err(ApiError::Unprocessable {
                code: "migration_unsupported",
                message: "this VM's host runs libvirt's test driver, which cannot migrate domains".into(),
                details: serde_json::json!({}),
            });
        }
        // The group stays locked until the move is recorded: no member is placed
        // on the destination meanwhile.
        let guard = SpreadGuard::take(&task).await?;
        let moved = async {
            let to = placement::destination(&task.db, cluster, task.vm, wanted, &guard.avoid).await?;
            task.progress(10).await;
            let (f, t, id) = (from.uri.clone(), to.uri.clone(), task.vm);
            let live = previous == VmState::Running;
            task.hv(move |hv| hv.migrate(&f, &t, id, live)).await?;
            placement::moved(&task.db, task.vm, to.host_id).await
        }
        .await;
        guard.release().await;
        moved
    }
    .await;
    task.settle(previous).await?;
    moved
}

/// Delete: power off, undefine, remove the disk, release placement and quota,
/// delete the row (snapshots go with it). A VM with no placement has nothing on
/// a host to remove.
pub async fn delete(task: VmTask, cluster: Uuid, size: (i32, i64), disk: Option<PathBuf>) -> ApiResult<()> {
    if let Ok(host) = task.host().await {
        let (u, id) = (host.uri, task.vm);
        if let Err(e) = task.hv(move |hv| hv.undefine(&u, id)).await {
            task.settle(VmState::Failed).await?;
            return Err(e);
        }
    }
    task.progress(50).await;
    if let Some(disk) = disk {
        disks::remove(&disk).await.map_err(ApiError::internal)?;
    }
    placement::release(&task.db, task.vm).await?;
    let mut tx = task.tx().await?;
    adjust_quota(&mut tx, cluster, -size.0, -size.1, -1).await?;
    sqlx::query("DELETE FROM vms WHERE id = $1").bind(task.vm).execute(&mut *tx).await?;
    crate::idempotency::forget_object(&mut tx, task.vm).await?;
    tx.commit().await?;
    Ok(())
}

/// Revert to a snapshot; the VM's state follows what the snapshot held.
pub async fn revert(task: VmTask, snapshot: String, previous: VmState) -> ApiResult<()> {
    let host = match task.host().await {
        Ok(h) => h,
        Err(e) => {
            task.settle(previous).await?;
            return Err(e);
        }
    };
    let (u, id) = (host.uri.clone(), task.vm);
    let outcome = task.hv(move |hv| hv.snapshot_revert(&u, id, &snapshot)).await;
    task.settle_from_host(&host.uri, previous).await;
    outcome
}

/// A rebuild accepted by the API: the domain as it will be defined (the new
/// template's boot parameters and disk), and where its disk comes from.
pub struct RebuildPlan {
    pub spec: DomainSpec,
    pub source: DiskSource,
    /// The disk the VM has now, if any.
    pub old_disk: Option<PathBuf>,
    pub template: Uuid,
    pub running: bool,
    pub previous: VmState,
}

/// Rebuild: make the new disk beside the old one (a failure so far leaves the VM
/// as it was) → power off → put the new disk in the old one's place → define
/// the domain again → start it again if it ran. The VM row takes the template,
/// its boot parameters and the disk.
pub async fn rebuild(task: VmTask, plan: RebuildPlan) -> ApiResult<()> {
    let staged = plan.spec.disk.as_ref().map(|d| d.with_extension("rebuild.qcow2"));
    let mut uri = None;
    let steps = async {
        let host = task.host().await?;
        uri = Some(host.uri.clone());
        if let Some(staged) = &staged {
            plan.source.make(staged).await?;
        }
        task.progress(40).await;
        let (u, id) = (host.uri.clone(), task.vm);
        task.hv(move |hv| hv.destroy(&u, id)).await?;
        match (&staged, &plan.spec.disk) {
            (Some(staged), Some(disk)) => tokio::fs::rename(staged, disk).await.map_err(ApiError::internal)?,
            _ => {
                if let Some(old) = &plan.old_disk {
                    disks::remove(old).await.map_err(ApiError::internal)?;
                }
            }
        }
        task.progress(70).await;
        let (u, spec) = (host.uri.clone(), plan.spec.clone());
        task.hv(move |hv| hv.define(&u, &spec)).await?;
        if plan.running {
            let (u, id) = (host.uri.clone(), task.vm);
            task.hv(move |hv| hv.start(&u, id)).await?;
        }
        Ok::<(), ApiError>(())
    }
    .await;
    if let Err(e) = steps {
        if let Some(staged) = &staged {
            let _ = disks::remove(staged).await;
        }
        match uri {
            Some(uri) => task.settle_from_host(&uri, plan.previous).await,
            None => task.settle(plan.previous).await?,
        }
        return Err(e);
    }
    let mut tx = task.tx().await?;
    let boot = plan.spec.kernel.as_ref();
    sqlx::query(
        "UPDATE vms SET template_id = $2, disk_path = $3, kernel = $4, initrd = $5, cmdline = $6,
                version = version + 1, updated_at = now() WHERE id = $1",
    )
    .bind(task.vm)
    .bind(plan.template)
    .bind(plan.spec.disk.as_ref().map(|d| d.to_string_lossy().into_owned()))
    .bind(boot.map_or_else(String::new, |k| k.kernel.to_string_lossy().into_owned()))
    .bind(boot.map_or_else(String::new, |k| k.initrd.to_string_lossy().into_owned()))
    .bind(boot.map_or_else(String::new, |k| k.cmdline.clone()))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    task.settle(if plan.running { VmState::Running } else { VmState::Stopped }).await
}
