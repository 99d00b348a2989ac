//! The reconciler: makes libvirt's actual state match what Postgres says, at
//! start-up and every `reconcile_interval_seconds`.
//!
//! One pass, under an advisory lock (one replica reconciles at a time):
//! 1. **Hosts**: every host is asked for its domains; a host that does not answer
//!    is marked `unreachable` (with the error), one that answers `up`.
//! 2. **Each tenant, in its own context**: every VM that no operation is working
//!    on is compared with its host. A missing domain is defined again; a domain
//!    that runs while the VM should be stopped (or the reverse) is stopped (or
//!    started); a suspended tenant whose suspend action is `stop` wants every VM
//!    stopped. A VM whose host is unreachable is restarted on another host of the
//!    cluster with room (its disk is on storage the cluster's hosts share, or it
//!    has none). Every action is audited in the tenant's log as `vm.reconcile.*`.
//! 3. **Work of dead processes**: an operation left `pending`/`running` by an
//!    instance that is no longer alive (see [`crate::instances`]: no heartbeat
//!    within the lease, or this process's own id at start-up) was interrupted: it
//!    is marked failed (`interrupted`); its VM, if half-made (`creating`), is
//!    undone like a failed create, else takes the state its host reports. Work
//!    of a live replica is left to it, so starting a replica never fails a
//!    sibling's operations, and a survivor takes over a killed replica's. So it
//!    is for system operations (host evacuations); their hosts stay drained.
//! 4. **Orphans**: a placement whose VM exists in no tenant (its tenant was
//!    purged) has its domain and disk removed and its capacity released.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use basalt_client::VmState;
use serde_json::json;
use uuid::Uuid;

use super::placement::{self, PlacedHost};
use super::vm_work::{self, CreatePlan, DiskSource, VmTask};
use super::{disks, DomainPower, DomainSpec, HvError};
use crate::app::AppState;
use crate::audit::{self, Event};
use crate::db::{DbScope, Tx};
use crate::error::{ApiError, ApiResult};

/// Advisory lock key of a reconcile pass ("basalt reconcile").
pub const RECONCILE_LOCK: i64 = 0x6261_7372_6563_6f6e;
const ACTOR: &str = "reconciler";

/// Fails the operations of the context that dead instances left pending or
/// running (`$1`: the instances alive).
const FAIL_INTERRUPTED: &str = "UPDATE operations SET status = 'failed', finished_at = now(), updated_at = now(),
        error = '{\"code\": \"interrupted\", \"message\": \"the server stopped while this operation ran\"}'
  WHERE status IN ('pending', 'running') AND (instance_id IS NULL OR NOT instance_id = ANY($1))";

/// What one pass did (for logs and tests).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub hosts_unreachable: usize,
    /// `(vm, action)`: `define`, `start`, `stop`, `recover`, `undo_create`, `settle`, `orphan`.
    pub actions: Vec<(Uuid, &'static str)>,
}

/// What a pass learned up front: each host's domains (or why it did not
/// answer) and where every VM is placed, read once rather than per VM.
struct Survey {
    domains: HashMap<String, Result<HashMap<Uuid, DomainPower>, HvError>>,
    placed: HashMap<Uuid, PlacedHost>,
}

impl Survey {
    fn host(&self, vm: Uuid) -> ApiResult<PlacedHost> {
        self.placed
            .get(&vm)
            .cloned()
            .ok_or_else(|| ApiError::Conflict { code: "vm_not_placed", message: "the VM has no host".into() })
    }
}

/// The start-up pass: run before the server accepts requests.
pub async fn startup(state: &AppState) {
    log(reconcile_once(state, true).await);
}

/// A pass every `reconcile_interval_seconds`, forever.
pub async fn run(state: AppState) {
    let every = Duration::from_secs(state.config.reconcile_interval_seconds.max(1));
    loop {
        tokio::time::sleep(every).await;
        log(reconcile_once(&state, false).await);
    }
}

fn log(outcome: ApiResult<Option<Report>>) {
    match outcome {
        Ok(Some(r)) if !r.actions.is_empty() || r.hosts_unreachable > 0 => {
            tracing::info!(actions = ?r.actions, unreachable = r.hosts_unreachable, "reconciled")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "reconcile pass failed; will retry"),
    }
}

#[derive(sqlx::FromRow)]
struct HostRow {
    id: Uuid,
    uri: String,
}

#[derive(sqlx::FromRow, Clone)]
struct VmRow {
    id: Uuid,
    cluster_id: Uuid,
    vcpus: i32,
    memory_mib: i64,
    state: String,
    disk_path: Option<String>,
    kernel: String,
    initrd: String,
    cmdline: String,
    /// An operation of a live process is working on the VM.
    busy: bool,
}

/// One pass; `None` when another replica holds the lock.
pub async fn reconcile_once(state: &AppState, startup: bool) -> ApiResult<Option<Report>> {
    let mut lock = state.db.begin(DbScope::System, None, false).await?;
    let (locked,): (bool,) =
        sqlx::query_as("SELECT pg_try_advisory_xact_lock($1)").bind(RECONCILE_LOCK).fetch_one(&mut *lock).await?;
    if !locked {
        return Ok(None);
    }
    let mut report = Report::default();
    let hosts: Vec<HostRow> = sqlx::query_as("SELECT id, uri FROM hosts").fetch_all(&mut *lock).await?;
    let tenants: Vec<(Uuid, String, String)> =
        sqlx::query_as("SELECT id, state, suspend_action FROM tenants WHERE state <> 'deleted'")
            .fetch_all(&mut *lock)
            .await?;
    // Read before any tenant's VMs: a VM row commits before its placement, so
    // every placement seen here has a VM the tenant listing below will show.
    let placed: Vec<(Uuid, Uuid, String)> =
        sqlx::query_as("SELECT p.vm_id, h.id, h.uri FROM placements p JOIN hosts h ON h.id = p.host_id")
            .fetch_all(&mut *lock)
            .await?;
    let placed = placed.into_iter().map(|(vm, host_id, uri)| (vm, PlacedHost { host_id, uri })).collect();
    // The lock's transaction stays open (and holds its connection) for the pass.
    let survey = Survey { domains: survey_hosts(state, &hosts, &mut report).await?, placed };
    let alive = crate::instances::alive(&mut lock, startup).await?;
    // System operations (host evacuations) of dead instances; their hosts stay drained.
    sqlx::query(FAIL_INTERRUPTED).bind(&alive).execute(&mut *lock).await?;
    let mut live_vms = HashSet::new();
    for (tenant, tenant_state, suspend_action) in tenants {
        let stop_all = tenant_state == "suspended" && suspend_action == "stop";
        let vms = reconcile_tenant(state, tenant, stop_all, &alive, &survey, &mut report).await?;
        live_vms.extend(vms);
    }
    remove_orphans(state, &live_vms, &survey, &mut report).await?;
    lock.commit().await?;
    Ok(Some(report))
}

/// Each host's domains (or why it could not answer), recorded on the host.
async fn survey_hosts(
    state: &AppState,
    hosts: &[HostRow],
    report: &mut Report,
) -> ApiResult<HashMap<String, Result<HashMap<Uuid, DomainPower>, HvError>>> {
    let mut out = HashMap::new();
    for host in hosts {
        let uri = host.uri.clone();
        let answer = state.compute.call(move |hv| hv.domains(&uri)).await.map(|d| d.into_iter().collect());
        let (host_state, error) = match &answer {
            Err(HvError::Unreachable { message, .. }) => {
                report.hosts_unreachable += 1;
                ("unreachable", Some(message.clone()))
            }
            _ => ("up", None),
        };
        let mut tx = state.db.begin(DbScope::System, None, false).await?;
        sqlx::query("UPDATE hosts SET state = $2, last_error = $3 WHERE id = $1 AND state <> 'draining'")
            .bind(host.id)
            .bind(host_state)
            .bind(error)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        out.insert(host.uri.clone(), answer);
    }
    Ok(out)
}

async fn tenant_tx(state: &AppState, tenant: Uuid) -> ApiResult<Tx> {
    Ok(state.db.begin(DbScope::Tenant(tenant), None, false).await?)
}

async fn audit_action(state: &AppState, tenant: Uuid, vm: Uuid, action: &'static str, details: serde_json::Value) {
    let result = async {
        let mut tx = tenant_tx(state, tenant).await?;
        audit::record_service(&mut tx, Some(tenant), ACTOR, Event::new(action, "vm", Some(vm)).details(details))
            .await?;
        tx.commit().await?;
        Ok::<(), ApiError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, action, "could not audit a reconciler action");
    }
}

/// Reconciles one tenant's VMs; answers their ids (for the orphan check).
async fn reconcile_tenant(
    state: &AppState,
    tenant: Uuid,
    stop_all: bool,
    alive: &[Uuid],
    survey: &Survey,
    report: &mut Report,
) -> ApiResult<Vec<Uuid>> {
    let mut tx = tenant_tx(state, tenant).await?;
    // Work of dead instances first; what stays pending/running after this
    // belongs to a live process, whose VMs ("busy", read in one snapshot with
    // their state) are left to it.
    sqlx::query(FAIL_INTERRUPTED).bind(alive).execute(&mut *tx).await?;
    let vms: Vec<VmRow> = sqlx::query_as(
        "SELECT v.id, v.cluster_id, v.vcpus, v.memory_mib, v.state, v.disk_path, v.kernel, v.initrd, v.cmdline,
                EXISTS (SELECT 1 FROM operations o WHERE o.target_id = v.id AND o.status IN ('pending', 'running')) AS busy
           FROM vms v",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;

    let mut ids = Vec::new();
    for vm in vms {
        ids.push(vm.id);
        let vm_state = VmState::parse(&vm.state).unwrap_or(VmState::Failed);
        let task = VmTask { db: state.db.clone(), compute: state.compute.clone(), tenant, vm: vm.id, op: Uuid::nil() };
        if vm_state.is_transitional() {
            // Mid-operation: a live process's work to finish, or a dead one's to settle.
            if !vm.busy {
                finish_interrupted(state, &task, &vm, vm_state, survey, report).await;
            }
            continue;
        }
        if let Err(e) = reconcile_vm(state, &task, &vm, stop_all, survey, report).await {
            tracing::warn!(vm = %vm.id, error = %e, "could not reconcile a VM");
        }
    }
    Ok(ids)
}

/// The VM's definition as Postgres has it, without its devices (enough to
/// undo a create, which had none yet).
fn bare_spec(vm: &VmRow) -> DomainSpec {
    DomainSpec {
        id: vm.id,
        name: format!("basalt-{}", vm.id),
        vcpus: vm.vcpus as u32,
        memory_mib: vm.memory_mib as u64,
        disk: vm.disk_path.clone().map(Into::into),
        kernel: crate::api::vms::kernel_boot(&vm.kernel, &vm.initrd, &vm.cmdline),
        devices: Vec::new(),
    }
}

/// The VM's definition as Postgres has it, with the NICs and volumes it holds.
async fn spec_of(tx: &mut Tx, vm: &VmRow) -> ApiResult<DomainSpec> {
    Ok(DomainSpec { devices: super::devices_of(tx, vm.id).await?, ..bare_spec(vm) })
}

/// A VM left mid-operation by a previous process.
async fn finish_interrupted(
    state: &AppState,
    task: &VmTask,
    vm: &VmRow,
    vm_state: VmState,
    survey: &Survey,
    report: &mut Report,
) {
    if vm_state == VmState::Creating {
        let plan = CreatePlan { cluster: vm.cluster_id, spec: bare_spec(vm), source: DiskSource::None, start: false };
        let uri = survey.placed.get(&vm.id).map(|h| h.uri.clone());
        vm_work::undo_create(task, &plan, uri.as_deref()).await;
        report.actions.push((vm.id, "undo_create"));
        audit_action(state, task.tenant, vm.id, "vm.reconcile.undo_create", json!({})).await;
        return;
    }
    match survey.host(vm.id) {
        Ok(host) => task.settle_from_host(&host.uri, VmState::Failed).await,
        Err(_) => {
            if let Err(e) = task.settle(VmState::Failed).await {
                tracing::warn!(vm = %vm.id, error = %e, "could not settle an interrupted VM");
            }
        }
    }
    report.actions.push((vm.id, "settle"));
    audit_action(state, task.tenant, vm.id, "vm.reconcile.settle", json!({ "was": vm_state.as_str() })).await;
}

/// The state a VM's row should show for what its host reports.
fn state_for(power: Option<DomainPower>) -> VmState {
    match power {
        Some(DomainPower::Running) => VmState::Running,
        Some(DomainPower::Paused) => VmState::Suspended,
        Some(DomainPower::Off) => VmState::Stopped,
        None => VmState::Failed,
    }
}

async fn set_state(tx: &mut Tx, vm: Uuid, state: VmState) -> ApiResult<()> {
    sqlx::query("UPDATE vms SET state = $2, updated_at = now() WHERE id = $1 AND state <> $2")
        .bind(vm)
        .bind(state.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Brings one settled VM in line with its host. The VM's row stays locked
/// (`SKIP LOCKED`: a request working on it wins, and the VM waits for the next
/// pass) and the host is asked afresh, so nothing acts on a stale picture.
async fn reconcile_vm(
    state: &AppState,
    task: &VmTask,
    vm: &VmRow,
    stop_all: bool,
    survey: &Survey,
    report: &mut Report,
) -> ApiResult<()> {
    let mut tx = tenant_tx(state, task.tenant).await?;
    let locked: Option<(String, String)> =
        sqlx::query_as("SELECT state, power_state FROM vms WHERE id = $1 FOR UPDATE SKIP LOCKED")
            .bind(vm.id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((row_state, power_state)) = locked else { return Ok(()) };
    if VmState::parse(&row_state).is_none_or(|s| s.is_transitional()) {
        return Ok(());
    }
    let host = survey.host(vm.id)?;
    let want_running = power_state == "running" && !stop_all;
    if matches!(survey.domains.get(&host.uri), Some(Err(HvError::Unreachable { .. }))) {
        recover(state, &mut tx, task, vm, &host, want_running, report).await?;
        return Ok(tx.commit().await?);
    }
    let (uri, id) = (host.uri.clone(), vm.id);
    let on_host = {
        let u = uri.clone();
        state.compute.call(move |hv| hv.power(&u, id)).await?
    };
    if on_host.is_none() {
        let (u, spec) = (uri.clone(), spec_of(&mut tx, vm).await?);
        state.compute.call(move |hv| hv.define(&u, &spec)).await?;
        report.actions.push((vm.id, "define"));
        audit_action(state, task.tenant, vm.id, "vm.reconcile.define", json!({})).await;
    }
    let action = match (want_running, on_host.unwrap_or(DomainPower::Off)) {
        (true, DomainPower::Off) => {
            let u = uri.clone();
            state.compute.call(move |hv| hv.start(&u, id)).await?;
            Some(("start", "vm.reconcile.start"))
        }
        (false, DomainPower::Running | DomainPower::Paused) => {
            let u = uri.clone();
            state.compute.call(move |hv| hv.destroy(&u, id)).await?;
            Some(("stop", "vm.reconcile.stop"))
        }
        _ => None,
    };
    if let Some((action, event)) = action {
        report.actions.push((vm.id, action));
        let reason = if stop_all { "tenant suspended" } else { "drift" };
        audit_action(state, task.tenant, vm.id, event, json!({ "reason": reason })).await;
    }
    // The row follows what the host now does.
    let now = state.compute.call(move |hv| hv.power(&uri, id)).await?;
    set_state(&mut tx, vm.id, state_for(now)).await?;
    Ok(tx.commit().await?)
}

/// Restarts a VM of an unreachable host on another host of its cluster.
async fn recover(
    state: &AppState,
    tx: &mut Tx,
    task: &VmTask,
    vm: &VmRow,
    lost: &PlacedHost,
    want_running: bool,
    report: &mut Report,
) -> ApiResult<()> {
    // A placement group's spread is not asked here: a VM back up next to one
    // of its group's members beats a VM left down (docs/compute.md).
    let to = match placement::destination(&state.db, vm.cluster_id, vm.id, None, &[]).await {
        Ok(to) => to,
        Err(e) => {
            set_state(tx, vm.id, VmState::Failed).await?;
            return Err(e);
        }
    };
    let spec = spec_of(tx, vm).await?;
    let (u, id) = (to.uri.clone(), vm.id);
    state
        .compute
        .call(move |hv| {
            hv.define(&u, &spec)?;
            if want_running {
                hv.start(&u, id)?;
            }
            Ok(())
        })
        .await?;
    placement::moved(&state.db, vm.id, to.host_id).await?;
    set_state(tx, vm.id, if want_running { VmState::Running } else { VmState::Stopped }).await?;
    report.actions.push((vm.id, "recover"));
    let details = json!({ "from_host": lost.host_id, "to_host": to.host_id });
    audit_action(state, task.tenant, vm.id, "vm.reconcile.recover", details).await;
    Ok(())
}

/// Placements whose VM no tenant has (its tenant was purged).
async fn remove_orphans(state: &AppState, live: &HashSet<Uuid>, survey: &Survey, report: &mut Report) -> ApiResult<()> {
    for (vm, host) in survey.placed.iter().filter(|(vm, _)| !live.contains(vm)) {
        let vm = *vm;
        if matches!(survey.domains.get(&host.uri), Some(Ok(d)) if d.contains_key(&vm)) {
            let u = host.uri.clone();
            if let Err(e) = state.compute.call(move |hv| hv.undefine(&u, vm)).await {
                tracing::warn!(%vm, error = %e, "could not remove an orphaned domain");
                continue;
            }
        }
        let _ = disks::remove(&disks::vm_disk_path(&state.compute.storage_dir, vm)).await;
        placement::release(&state.db, vm).await?;
        report.actions.push((vm, "orphan"));
        tracing::info!(%vm, "removed an orphaned VM (its tenant is gone)");
    }
    Ok(())
}
