//! Host evacuation: move every VM off a host to the other hosts of its cluster,
//! as one system operation (`host.evacuate`) started by
//! `POST /v1/clusters/{id}/hosts/{host_id}/evacuate`.
//!
//! The API drains the host first (placement then never chooses it). The work
//! then finds the VMs placed on the host: placements name only the VM, so each
//! is looked up in the contexts of the tenants that hold a quota on the cluster
//! (a VM needs one), and moved one after the other with the VM migration of
//! [`vm_work::migrate`] under a `vm.migrate` operation of its own, in its
//! tenant's context and audit log, exactly as if the tenant had asked: live when
//! running, offline when stopped, to the host placement picks.
//!
//! A VM that cannot move (busy with another operation, suspended, no room
//! elsewhere, a host that cannot migrate, a VM no live tenant holds) stays where
//! it is and is reported: the evacuation then fails with `evacuation_incomplete`
//! and `details: {moved, unmoved}` listing every VM and why. A cancellation
//! (`POST /v1/operations/{id}/cancel`) is honoured between two VMs: the
//! migration in flight completes, the rest are not attempted.

use basalt_client::VmState;
use serde_json::{json, Value};
use uuid::Uuid;

use super::vm_work::{self, VmTask};
use super::{operations, Compute};
use crate::audit::{self, Event};
use crate::db::{Db, DbScope};
use crate::error::{ApiError, ApiResult};

/// The actor name evacuation work records in tenants' audit logs.
const ACTOR: &str = "host-evacuation";

/// What an evacuation works on.
#[derive(Clone)]
pub struct Evacuation {
    pub db: Db,
    pub compute: Compute,
    /// The `host.evacuate` operation (a system row).
    pub op: Uuid,
    pub cluster: Uuid,
    pub host: Uuid,
    /// The staff member who asked (recorded on each VM's operation).
    pub actor: Uuid,
}

/// A VM placed on the host, and the tenant found holding it (if any).
struct Placed {
    vm: Uuid,
    tenant: Option<Uuid>,
}

/// Runs the evacuation; succeeds when every VM moved.
pub async fn run(e: Evacuation) -> ApiResult<()> {
    let placed = survey(&e).await?;
    let total = placed.len();
    let (mut moved, mut unmoved) = (Vec::new(), Vec::new());
    for (i, p) in placed.iter().enumerate() {
        if cancel_requested(&e).await? {
            let rest: Vec<Uuid> = placed[i..].iter().map(|p| p.vm).collect();
            record_outcome(&e, &moved, &unmoved, true).await;
            return Err(ApiError::Unprocessable {
                code: "cancelled",
                message: format!("the evacuation was cancelled after {i} of {total} VMs"),
                details: json!({ "moved": moved, "unmoved": unmoved, "not_attempted": rest }),
            });
        }
        let outcome = match p.tenant {
            Some(tenant) => move_one(&e, tenant, p.vm).await,
            None => Err(ApiError::Conflict {
                code: "vm_unknown",
                message: "no live tenant holds this VM; the reconciler removes orphans".into(),
            }),
        };
        match outcome {
            Ok(()) => moved.push(json!({ "vm_id": p.vm, "tenant_id": p.tenant })),
            Err(err) => unmoved.push(json!({
                "vm_id": p.vm, "tenant_id": p.tenant, "code": err.code(), "message": err.to_string(),
            })),
        }
        let done = i32::try_from((i + 1) * 98 / total).unwrap_or(98);
        if let Err(err) = operations::progress(&e.db, None, e.op, 1 + done).await {
            tracing::warn!(error = %err, "could not record the evacuation's progress");
        }
    }
    record_outcome(&e, &moved, &unmoved, false).await;
    if unmoved.is_empty() {
        return Ok(());
    }
    Err(ApiError::Unprocessable {
        code: "evacuation_incomplete",
        message: format!("{} of {total} VMs could not move off the host and still run there", unmoved.len()),
        details: json!({ "moved": moved, "unmoved": unmoved }),
    })
}

/// The VMs placed on the host, each with the tenant that holds it.
async fn survey(e: &Evacuation) -> ApiResult<Vec<Placed>> {
    let mut tx = e.db.begin(DbScope::System, None, false).await?;
    let vms: Vec<(Uuid,)> = sqlx::query_as("SELECT vm_id FROM placements WHERE host_id = $1 ORDER BY vm_id")
        .bind(e.host)
        .fetch_all(&mut *tx)
        .await?;
    let tenants: Vec<(Uuid,)> = sqlx::query_as("SELECT DISTINCT tenant_id FROM quotas WHERE cluster_id = $1")
        .bind(e.cluster)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    let ids: Vec<Uuid> = vms.iter().map(|(v,)| *v).collect();
    let mut placed: Vec<Placed> = ids.iter().map(|vm| Placed { vm: *vm, tenant: None }).collect();
    for (tenant,) in tenants {
        // A tenant that cannot be entered (deleted meanwhile) holds nothing to move.
        let Ok(mut tx) = e.db.begin(DbScope::Tenant(tenant), None, false).await else { continue };
        let held: Vec<(Uuid,)> =
            sqlx::query_as("SELECT id FROM vms WHERE id = ANY($1)").bind(&ids).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        for (vm,) in held {
            if let Some(p) = placed.iter_mut().find(|p| p.vm == vm) {
                p.tenant = Some(tenant);
            }
        }
    }
    Ok(placed)
}

async fn cancel_requested(e: &Evacuation) -> ApiResult<bool> {
    let mut tx = e.db.begin(DbScope::System, None, false).await?;
    let (asked,): (bool,) = sqlx::query_as("SELECT cancel_requested_at IS NOT NULL FROM operations WHERE id = $1")
        .bind(e.op)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(asked)
}

/// Moves one VM under its own `vm.migrate` operation, in its tenant's context.
async fn move_one(e: &Evacuation, tenant: Uuid, vm: Uuid) -> ApiResult<()> {
    let mut tx = e.db.begin(DbScope::Tenant(tenant), None, false).await?;
    let row: Option<(String,)> =
        sqlx::query_as("SELECT state FROM vms WHERE id = $1 FOR UPDATE").bind(vm).fetch_optional(&mut *tx).await?;
    let (state,) = row.ok_or(ApiError::NotFound { kind: "vm" })?;
    let previous = VmState::parse(&state).unwrap_or(VmState::Failed);
    if previous.is_transitional() {
        return Err(ApiError::Conflict {
            code: "vm_busy",
            message: format!("the VM is {}: another operation is working on it", previous.as_str()),
        });
    }
    if !matches!(previous, VmState::Running | VmState::Stopped) {
        return Err(ApiError::Conflict {
            code: "invalid_vm_state",
            message: format!("a VM that is {} cannot be migrated", previous.as_str()),
        });
    }
    let params = json!({ "host_id": null, "evacuation_id": e.op });
    let op = operations::record(&mut tx, Some(tenant), "vm.migrate", "vm", vm, e.actor, params).await?;
    sqlx::query(
        "UPDATE vms SET state = 'migrating', operation_id = $2, version = version + 1, updated_at = now() WHERE id = $1",
    )
    .bind(vm)
    .bind(op.id)
    .execute(&mut *tx)
    .await?;
    let event = Event::new("vm.migrate", "vm", Some(vm))
        .details(json!({ "operation_id": op.id, "reason": "the provider evacuated the VM's host" }));
    audit::record_service(&mut tx, Some(tenant), ACTOR, event).await?;
    tx.commit().await?;

    if let Err(err) = operations::progress(&e.db, Some(tenant), op.id, 1).await {
        tracing::warn!(error = %err, "could not mark the VM's migration running");
    }
    let task = VmTask { db: e.db.clone(), compute: e.compute.clone(), tenant, vm, op: op.id };
    let outcome = vm_work::migrate(task, e.cluster, None, previous).await;
    operations::finish(&e.db, Some(tenant), op.id, &outcome).await?;
    outcome
}

/// Audits what the evacuation did, in the system log.
async fn record_outcome(e: &Evacuation, moved: &[Value], unmoved: &[Value], cancelled: bool) {
    let recorded = async {
        let mut tx = e.db.begin(DbScope::System, None, false).await?;
        let details = json!({
            "operation_id": e.op, "cluster_id": e.cluster, "moved": moved, "unmoved": unmoved, "cancelled": cancelled,
        });
        audit::record_service(
            &mut tx,
            None,
            ACTOR,
            Event::new("host.evacuate.finish", "host", Some(e.host)).details(details),
        )
        .await?;
        tx.commit().await?;
        Ok::<(), ApiError>(())
    }
    .await;
    if let Err(err) = recorded {
        tracing::warn!(error = %err, "could not audit the evacuation's outcome");
    }
}
