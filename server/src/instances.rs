//! Server instances: which `basalt-server` processes are alive.
//!
//! Each process has an instance id, random at start ([`id`]). While it serves it
//! records a heartbeat in `server_instances` every [`HEARTBEAT`]; a clean shutdown
//! removes its row. Operations record the instance that runs their work, so the
//! reconciler of any replica can tell work another live replica is doing (left
//! alone) from work a dead process left behind (settled): a replica that starts
//! never fails a sibling's operations, and a survivor takes over a killed
//! replica's within [`LEASE`] and one reconcile pass.

use std::sync::OnceLock;
use std::time::Duration;

use uuid::Uuid;

use crate::db::{Db, DbScope, Tx};

/// How often a serving process records that it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long after its last heartbeat an instance counts as dead (four missed beats).
pub const LEASE: Duration = Duration::from_secs(20);
/// Rows of instances dead this long are forgotten.
const FORGET_AFTER_HOURS: i32 = 24;

/// This process's instance id (one per process, whatever it serves).
pub fn id() -> Uuid {
    static ID: OnceLock<Uuid> = OnceLock::new();
    *ID.get_or_init(Uuid::new_v4)
}

/// Records a heartbeat for this process (registering it on the first).
pub async fn beat(db: &Db) -> Result<(), sqlx::Error> {
    let mut tx = db.begin(DbScope::System, None, false).await?;
    sqlx::query(
        "INSERT INTO server_instances (id) VALUES ($1)
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()",
    )
    .bind(id())
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM server_instances WHERE heartbeat_at < now() - make_interval(hours => $1)")
        .bind(FORGET_AFTER_HOURS)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// Heartbeats every [`HEARTBEAT`], forever (a failed beat is retried at the next).
pub async fn run(db: Db) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        if let Err(e) = beat(&db).await {
            tracing::warn!(error = %e, "could not record this instance's heartbeat");
        }
    }
}

/// Removes this process's row at a clean shutdown: its siblings need not wait
/// for the lease to take over what it leaves.
pub async fn leave(db: &Db) {
    let result = async {
        let mut tx = db.begin(DbScope::System, None, false).await?;
        sqlx::query("DELETE FROM server_instances WHERE id = $1").bind(id()).execute(&mut *tx).await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not deregister this instance");
    }
}

/// The instances alive now, in `tx` (system scope): every heartbeat within the
/// lease, and this process unless `starting` (before it serves, nothing of this
/// process can be running, whatever an earlier process with the same id left).
pub async fn alive(tx: &mut Tx, starting: bool) -> Result<Vec<Uuid>, sqlx::Error> {
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT id FROM server_instances
          WHERE heartbeat_at > now() - make_interval(secs => $1) AND NOT ($2 AND id = $3)",
    )
    .bind(LEASE.as_secs_f64())
    .bind(starting)
    .bind(id())
    .fetch_all(&mut **tx)
    .await?;
    let mut ids: Vec<Uuid> = rows.into_iter().map(|(id,)| id).collect();
    if !starting && !ids.contains(&id()) {
        ids.push(id());
    }
    Ok(ids)
}
