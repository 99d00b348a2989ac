//! Periodic jobs. Each run takes a transaction-scoped Postgres advisory lock, so
//! with several replicas exactly one does the work and another takes over when it
//! dies (the lock goes with its session).

use std::time::Duration;

use uuid::Uuid;

use crate::app::AppState;
use crate::db::{Db, DbScope, Tx};

/// Advisory lock key of the purge job ("basalt purge").
pub const PURGE_LOCK: i64 = 0x6261_7361_6c74_7075;
/// Idempotency keys are answered again for this long.
const IDEMPOTENCY_KEEP_HOURS: i32 = 24;

pub async fn run(state: AppState) {
    let every = Duration::from_secs(state.config.purge_interval_seconds.max(1));
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match purge(&state.db).await {
            Ok(Some(n)) if n > 0 => {
                tracing::info!(purged = n, "purged deleted tenants past retention")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purge job failed; will retry"),
        }
    }
}

/// The start of a pass of a job that works tenant by tenant, one replica at a
/// time: takes the job's advisory `lock` in a system transaction and answers it
/// with the tenants `tenants_sql` selects there (one uuid column); `None` when
/// another replica holds the lock. The lock lasts as long as the transaction:
/// commit it when the pass is over.
pub async fn exclusive_tenant_pass(
    db: &Db,
    lock: i64,
    tenants_sql: &str,
) -> Result<Option<(Tx, Vec<Uuid>)>, sqlx::Error> {
    let mut tx = db.begin(DbScope::System, None, false).await?;
    let (locked,): (bool,) =
        sqlx::query_as("SELECT pg_try_advisory_xact_lock($1)").bind(lock).fetch_one(&mut *tx).await?;
    if !locked {
        return Ok(None);
    }
    let tenants: Vec<(Uuid,)> = sqlx::query_as(tenants_sql).fetch_all(&mut *tx).await?;
    Ok(Some((tx, tenants.into_iter().map(|(t,)| t).collect())))
}

/// Purges tenants deleted longer ago than their retention, expired idempotency
/// keys and old login failures. Returns `None` when another replica holds the lock.
pub async fn purge(db: &Db) -> Result<Option<u64>, sqlx::Error> {
    let mut tx = db.begin(DbScope::System, None, true).await?;
    let (locked,): (bool,) =
        sqlx::query_as("SELECT pg_try_advisory_xact_lock($1)").bind(PURGE_LOCK).fetch_one(&mut *tx).await?;
    if !locked {
        return Ok(None);
    }
    // Tenant rows cascade into every tenant table (referential actions are not
    // subject to row security); the audit trail has no foreign key and stays.
    let purged = sqlx::query("DELETE FROM tenants WHERE state = 'deleted' AND purge_after <= now()")
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let tenants: Vec<(uuid::Uuid,)> =
        sqlx::query_as("SELECT id FROM tenants WHERE state <> 'deleted'").fetch_all(&mut *tx).await?;
    expire(&mut tx).await?;
    tx.commit().await?;
    // Each tenant's keys are deleted in that tenant's own context: no path here
    // sees two tenants at once.
    for (tenant,) in tenants {
        let mut tx = db.begin(DbScope::Tenant(tenant), None, false).await?;
        expire(&mut tx).await?;
        tx.commit().await?;
    }
    Ok(Some(purged))
}

/// Deletes what has outlived its use in the transaction's context: idempotency
/// keys past their window and old login failures.
async fn expire(tx: &mut crate::db::Tx) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)")
        .bind(IDEMPOTENCY_KEEP_HOURS)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM login_failures WHERE at < now() - interval '1 day'").execute(&mut **tx).await?;
    Ok(())
}
