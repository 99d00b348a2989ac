//! Operations: the records behind `202 Accepted`, and the runner that carries the
//! work out in the background.
//!
//! A handler checks, reserves and records in the request's transaction (the VM's
//! transitional state and a `pending` operation commit together), then hands the
//! work to [`spawn`]. The work runs its steps and, when one fails, undoes the
//! completed ones before it returns the error, so a failure leaves nothing
//! half-made; the runner then records `succeeded` or `failed` with the error.

use std::future::Future;

use basalt_client::{Operation, OperationStatus};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::db::{Db, DbScope, Tx};
use crate::error::{ApiError, ApiResult};

pub const COLUMNS: &str =
    "id, tenant_id, kind, target_type, target_id, status, progress, error, created_at, updated_at, finished_at";

#[derive(sqlx::FromRow)]
pub struct OperationRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    kind: String,
    target_type: String,
    target_id: Uuid,
    status: String,
    progress: i32,
    error: Option<Value>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl From<OperationRow> for Operation {
    fn from(r: OperationRow) -> Operation {
        Operation {
            id: r.id,
            tenant_id: r.tenant_id,
            kind: r.kind,
            target_type: r.target_type,
            target_id: r.target_id,
            status: OperationStatus::parse(&r.status).unwrap_or(OperationStatus::Failed),
            progress: r.progress,
            error: r.error,
            created_at: r.created_at,
            updated_at: r.updated_at,
            finished_at: r.finished_at,
        }
    }
}

/// Records a pending operation in `tx` (the caller's context), run by this
/// process (its instance: see [`crate::instances`]).
pub async fn record(
    tx: &mut Tx,
    tenant: Option<Uuid>,
    kind: &str,
    target_type: &str,
    target_id: Uuid,
    actor: Uuid,
    params: Value,
) -> ApiResult<Operation> {
    let row: OperationRow = sqlx::query_as(&format!(
        "INSERT INTO operations (id, tenant_id, kind, target_type, target_id, actor_id, params, instance_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(tenant)
    .bind(kind)
    .bind(target_type)
    .bind(target_id)
    .bind(actor)
    .bind(params)
    .bind(crate::instances::id())
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.into())
}

/// A transaction in `tenant`'s context for the runner's bookkeeping. Not
/// "mutating": work accepted before a suspension still records its outcome.
pub async fn context_tx(db: &Db, tenant: Option<Uuid>) -> ApiResult<Tx> {
    let scope = tenant.map_or(DbScope::System, DbScope::Tenant);
    Ok(db.begin(scope, None, false).await?)
}

/// Records progress (0–100) of a running operation (never of a finished one:
/// a cancelled operation stays cancelled).
pub async fn progress(db: &Db, tenant: Option<Uuid>, op: Uuid, percent: i32) -> ApiResult<()> {
    let mut tx = context_tx(db, tenant).await?;
    sqlx::query(
        "UPDATE operations SET status = 'running', progress = $2, updated_at = now()
          WHERE id = $1 AND finished_at IS NULL",
    )
    .bind(op)
    .bind(percent.clamp(0, 100))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Records the outcome of an operation (once: an operation cancelled before it
/// started keeps its outcome). A failure's error is `{code, message}`, with the
/// `details` of an error that has them (what an evacuation could not move).
pub async fn finish(db: &Db, tenant: Option<Uuid>, op: Uuid, outcome: &Result<(), ApiError>) -> ApiResult<()> {
    let (status, error) = match outcome {
        Ok(()) => ("succeeded", None),
        Err(ApiError::Unprocessable { code, message, details })
            if details.as_object().is_some_and(|d| !d.is_empty()) =>
        {
            ("failed", Some(json!({ "code": code, "message": message, "details": details })))
        }
        Err(e) => ("failed", Some(json!({ "code": e.code(), "message": e.to_string() }))),
    };
    let mut tx = context_tx(db, tenant).await?;
    sqlx::query(
        "UPDATE operations SET status = $2, error = $3, progress = CASE WHEN $2 = 'succeeded' THEN 100 ELSE progress END,
                updated_at = now(), finished_at = now() WHERE id = $1 AND finished_at IS NULL",
    )
    .bind(op)
    .bind(status)
    .bind(error)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Runs `work` in the background and records its outcome on operation `op`.
pub fn spawn<F>(db: Db, tenant: Option<Uuid>, op: Uuid, kind: &'static str, work: F)
where
    F: Future<Output = Result<(), ApiError>> + Send + 'static,
{
    let span = tracing::info_span!("operation", %op, kind);
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            if let Err(e) = progress(&db, tenant, op, 1).await {
                tracing::warn!(error = %e, "could not mark the operation running");
            }
            let outcome = work.await;
            match &outcome {
                Ok(()) => tracing::info!("operation succeeded"),
                Err(e) => tracing::warn!(error = %e, "operation failed"),
            }
            if let Err(e) = finish(&db, tenant, op, &outcome).await {
                tracing::error!(error = %e, "could not record the operation's outcome");
            }
        },
        span,
    ));
}
