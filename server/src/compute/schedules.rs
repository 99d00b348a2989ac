//! The snapshot schedule job: every [`TICK`], one replica (a transaction-scoped
//! advisory lock, like the purge and the reconciler) runs the schedules that
//! are due, tenant by tenant in each tenant's own context.
//!
//! Running a schedule ([`execute`]) takes a snapshot of its VM through the same
//! code as `POST /v1/vms/{id}/snapshots` ([`snapshots::insert`] and
//! [`snapshots::take_on_host`]), then prunes the schedule's own snapshots to
//! its `keep`, newest first (host first, then the row, like a delete by hand),
//! and records `last_run_at` and `last_error`. Every step is audited in the
//! tenant's log: as `snapshot-scheduler` for the job, as the user for
//! `POST /v1/snapshot-schedules/{id}/run`. The job moves `next_run_at` one
//! interval on before the host is asked, so a failing VM is retried at the
//! next interval, not at every tick. A VM busy with an operation is skipped
//! and tried again at the next tick.

use std::time::Duration;

use basalt_client::{Snapshot, VmState};
use serde_json::json;
use uuid::Uuid;

use crate::api::extract::Req;
use crate::api::snapshots;
use crate::app::AppState;
use crate::audit::{self, Event};
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};

/// Advisory lock key of a schedule pass ("basnapsc").
pub const SCHEDULE_LOCK: i64 = 0x6261_736e_6170_7363;
/// The tenants a pass visits: the active ones with an enabled schedule
/// (`job_tenants`, kept in step by a trigger on `snapshot_schedules`).
const ACTIVE_TENANTS: &str = "SELECT j.tenant_id FROM job_tenants j JOIN tenants t ON t.id = j.tenant_id
                               WHERE j.job = 'snapshot_schedules' AND t.state = 'active' ORDER BY 1";
/// How often due schedules are looked for.
pub const TICK: Duration = Duration::from_secs(60);
const ACTOR: &str = "snapshot-scheduler";

/// Who runs a schedule: the job (no user), or a request (`.../run`).
pub enum Actor<'a> {
    Job,
    Request(&'a Req),
}

impl Actor<'_> {
    async fn begin(&self, state: &AppState, tenant: Uuid) -> ApiResult<Tx> {
        match self {
            Actor::Job => super::operations::context_tx(&state.db, Some(tenant)).await,
            Actor::Request(req) => req.begin(true).await,
        }
    }

    async fn record(&self, tx: &mut Tx, tenant: Uuid, event: Event<'_>) -> ApiResult<()> {
        match self {
            Actor::Job => audit::record_service(tx, Some(tenant), ACTOR, event).await,
            Actor::Request(req) => audit::record(tx, req, event).await,
        }
    }
}

/// What one run did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub snapshot: Snapshot,
    /// The schedule's snapshots deleted past its `keep`.
    pub pruned: Vec<Uuid>,
}

/// What one pass did (for logs and tests): per schedule, its run or its error.
#[derive(Debug, Default)]
pub struct Report {
    pub ran: Vec<(Uuid, Outcome)>,
    pub failed: Vec<(Uuid, String)>,
}

#[derive(sqlx::FromRow)]
struct Due {
    vm_id: Uuid,
    keep: i32,
}

/// Passes every [`TICK`], forever.
pub async fn run(state: AppState) {
    loop {
        tokio::time::sleep(TICK).await;
        match run_due(&state).await {
            Ok(Some(r)) if !r.ran.is_empty() || !r.failed.is_empty() => {
                tracing::info!(ran = r.ran.len(), failed = ?r.failed, "ran snapshot schedules")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "snapshot schedule pass failed; will retry"),
        }
    }
}

/// One pass over every active tenant's due, enabled schedules; `None` when
/// another replica holds the lock.
pub async fn run_due(state: &AppState) -> ApiResult<Option<Report>> {
    let Some((lock, tenants)) = crate::jobs::exclusive_tenant_pass(&state.db, SCHEDULE_LOCK, ACTIVE_TENANTS).await?
    else {
        return Ok(None);
    };
    let mut report = Report::default();
    for tenant in tenants {
        // One tenant that cannot be read now (suspended since) does not stop the others.
        let due = match due_in(state, tenant).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(%tenant, error = %e, "could not read a tenant's due snapshot schedules");
                continue;
            }
        };
        for id in due {
            match execute(state, tenant, id, &Actor::Job, true).await {
                Ok(outcome) => report.ran.push((id, outcome)),
                Err(e) => report.failed.push((id, e.to_string())),
            }
        }
    }
    lock.commit().await?;
    Ok(Some(report))
}

/// The enabled schedules of `tenant` whose time has come, the longest due first.
async fn due_in(state: &AppState, tenant: Uuid) -> ApiResult<Vec<Uuid>> {
    let mut tx = super::operations::context_tx(&state.db, Some(tenant)).await?;
    let due: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT id FROM snapshot_schedules WHERE enabled AND next_run_at <= now() ORDER BY next_run_at, id",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(due.into_iter().map(|(id,)| id).collect())
}

/// Runs schedule `id` of `tenant` once: a snapshot, then the pruning; records
/// the result on the schedule. `advance`: move `next_run_at` one interval on
/// (the job; a run by hand leaves it).
pub async fn execute(state: &AppState, tenant: Uuid, id: Uuid, actor: &Actor<'_>, advance: bool) -> ApiResult<Outcome> {
    let (due, snapshot) = take(state, tenant, id, actor, advance).await?;
    let result = match snapshots::take_on_host(state, tenant, due.vm_id, snapshot.id).await {
        Ok(()) => prune(state, tenant, id, &due, actor).await,
        Err(e) => Err(e),
    };
    finish(state, tenant, id, actor, snapshot.id, &result).await?;
    result.map(|pruned| Outcome { snapshot, pruned })
}

/// The snapshot's row, in one transaction with the schedule and its VM locked
/// (a VM busy with an operation is a 409 `vm_busy`, and nothing is written).
async fn take(
    state: &AppState,
    tenant: Uuid,
    id: Uuid,
    actor: &Actor<'_>,
    advance: bool,
) -> ApiResult<(Due, Snapshot)> {
    let mut tx = actor.begin(state, tenant).await?;
    let due: Due = sqlx::query_as("SELECT vm_id, keep FROM snapshot_schedules WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ApiError::NotFound { kind: "snapshot_schedule" })?;
    let (vm_state,): (String,) = sqlx::query_as("SELECT state FROM vms WHERE id = $1 FOR UPDATE")
        .bind(due.vm_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ApiError::NotFound { kind: "vm" })?;
    if VmState::parse(&vm_state).is_none_or(VmState::is_transitional) {
        return Err(ApiError::Conflict {
            code: "vm_busy",
            message: format!("the VM is {vm_state}; the schedule runs when its operation is done"),
        });
    }
    if advance {
        sqlx::query(
            "UPDATE snapshot_schedules SET next_run_at = now() + make_interval(mins => interval_minutes) WHERE id = $1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    let snapshot = snapshots::insert(&mut tx, due.vm_id, &format!("auto-{}", Uuid::now_v7()), Some(id)).await?;
    let event = Event::new("snapshot.create", "snapshot", Some(snapshot.id));
    actor.record(&mut tx, tenant, event.details(json!({ "after": snapshot, "schedule_id": id }))).await?;
    tx.commit().await?;
    Ok((due, snapshot))
}

/// Deletes the schedule's snapshots past its `keep`, oldest last kept: each
/// from the host first, then its row, audited one by one.
async fn prune(state: &AppState, tenant: Uuid, id: Uuid, due: &Due, actor: &Actor<'_>) -> ApiResult<Vec<Uuid>> {
    let mut tx = actor.begin(state, tenant).await?;
    let old: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT id FROM vm_snapshots WHERE schedule_id = $1 ORDER BY created_at DESC, id DESC OFFSET $2",
    )
    .bind(id)
    .bind(i64::from(due.keep))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut pruned = Vec::new();
    for (snapshot,) in old {
        snapshots::remove_from_host(state, due.vm_id, snapshot).await?;
        let mut tx = actor.begin(state, tenant).await?;
        snapshots::forget_row(&mut tx, snapshot).await?;
        let event = Event::new("snapshot.delete", "snapshot", Some(snapshot));
        actor.record(&mut tx, tenant, event.details(json!({ "schedule_id": id, "keep": due.keep }))).await?;
        tx.commit().await?;
        pruned.push(snapshot);
    }
    Ok(pruned)
}

/// Records a run on the schedule (`last_run_at`, `last_error`) and audits it.
async fn finish(
    state: &AppState,
    tenant: Uuid,
    id: Uuid,
    actor: &Actor<'_>,
    snapshot: Uuid,
    result: &ApiResult<Vec<Uuid>>,
) -> ApiResult<()> {
    let error = result.as_ref().err().map(ToString::to_string);
    let mut tx = actor.begin(state, tenant).await?;
    sqlx::query("UPDATE snapshot_schedules SET last_run_at = now(), last_error = $2 WHERE id = $1")
        .bind(id)
        .bind(&error)
        .execute(&mut *tx)
        .await?;
    let details = match result {
        Ok(pruned) => json!({ "snapshot_id": snapshot, "pruned": pruned }),
        Err(_) => json!({ "snapshot_id": snapshot, "error": error }),
    };
    actor
        .record(&mut tx, tenant, Event::new("snapshot_schedule.run", "snapshot_schedule", Some(id)).details(details))
        .await?;
    tx.commit().await?;
    Ok(())
}
