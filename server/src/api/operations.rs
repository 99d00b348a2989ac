//! `/v1/operations`: long work (VM create, power, resize, migrate, delete,
//! snapshot revert, host evacuation) to poll after a `202 Accepted`. A cluster
//! delegate sees the operations on VMs of its clusters only.
//!
//! Cancelling (`POST /v1/operations/{id}/cancel`, system scope) is honest about
//! what can stop: a VM operation starts as soon as it is accepted and runs one
//! hypervisor call (a define, a migration, a shutdown) that cannot be stopped
//! half-way without leaving the VM in an unknown state, so it is refused (409
//! `not_cancellable`). A host evacuation is a series of migrations: it stops
//! between two of them (the one in flight completes); one that has not started
//! ends at once. Either way it finishes `failed` with the error code
//! `cancelled`. A finished operation answers 409 `operation_finished`.

use axum::response::Response;
use axum::Json;
use basalt_client::{Operation, Page};
use serde_json::json;

use super::crud;
use super::extract::{page, ApiQuery, PageQuery, PathId, Req};
use crate::audit::{self, Event};
use crate::authz::Permission;
use crate::compute::operations::{OperationRow, COLUMNS};
use crate::error::{ApiError, ApiResult};

/// Operations on VMs of the given clusters (all of them when `None`).
const VISIBLE: &str = "($1::uuid[] IS NULL OR (target_type = 'vm'
     AND target_id IN (SELECT v.id FROM vms v WHERE v.cluster_id = ANY($1))))";

/// List the operations of the current context.
#[utoipa::path(get, operation_id = "operations_list", path = "/v1/operations", tag = "compute", params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Operation>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<Operation>>> {
    let only = req.grants.clusters_for(Permission::OperationList).as_param();
    if only.is_none() {
        return crud::list::<OperationRow, Operation>(&req, &q, "operations", COLUMNS).await;
    }
    let params = q.params()?;
    let mut tx = req.tx()?;
    let rows: Vec<OperationRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM operations WHERE {VISIBLE} AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3"
    ))
    .bind(only)
    .bind(params.after)
    .bind(params.limit + 1)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(page(rows.into_iter().map(Operation::from).collect(), params, |o: &Operation| o.id)))
}

/// Poll an operation: `status` is `pending`, `running`, `succeeded` or `failed`
/// (with `error`).
#[utoipa::path(get, operation_id = "operations_get", path = "/v1/operations/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = Operation), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<Operation>> {
    let only = req.grants.clusters_for(Permission::OperationRead).as_param();
    let mut tx = req.tx()?;
    let row: Option<OperationRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM operations WHERE id = $2 AND {VISIBLE}"))
            .bind(only)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    tx.commit().await?;
    row.map(|r| Json(Operation::from(r))).ok_or(ApiError::NotFound { kind: "operation" })
}

/// Operation kinds that can stop safely between steps.
const CANCELLABLE: &[&str] = &["host.evacuate"];

/// Cancel an operation: one that has not started ends at once; a host
/// evacuation stops before its next VM. 202 with the operation; poll it until it
/// ends (`failed`, error code `cancelled`).
#[utoipa::path(post, operation_id = "operations_cancel", path = "/v1/operations/{id}/cancel", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 202, body = Operation), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn cancel(req: Req, PathId(id): PathId) -> ApiResult<Response> {
    let only = req.grants.clusters_for(Permission::OperationCancel).as_param();
    let mut tx = req.tx()?;
    let found: Option<OperationRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM operations WHERE id = $2 AND {VISIBLE} FOR UPDATE"))
            .bind(only)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let before = found.map(Operation::from).ok_or(ApiError::NotFound { kind: "operation" })?;
    if before.status.is_done() {
        return Err(ApiError::Conflict {
            code: "operation_finished",
            message: format!("the operation already {}", before.status.as_str()),
        });
    }
    if !CANCELLABLE.contains(&before.kind.as_str()) {
        return Err(ApiError::Conflict {
            code: "not_cancellable",
            message: format!(
                "a {} operation cannot be stopped safely once accepted: it runs as one hypervisor call; wait for it",
                before.kind
            ),
        });
    }
    let row: OperationRow = sqlx::query_as(&format!(
        "UPDATE operations SET cancel_requested_at = coalesce(cancel_requested_at, now()), updated_at = now(),
                status = CASE WHEN status = 'pending' THEN 'failed' ELSE status END,
                finished_at = CASE WHEN status = 'pending' THEN now() ELSE finished_at END,
                error = CASE WHEN status = 'pending'
                             THEN '{{\"code\": \"cancelled\", \"message\": \"cancelled before it started\"}}'::jsonb
                             ELSE error END
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    let after = Operation::from(row);
    let details =
        json!({ "kind": before.kind, "status_before": before.status.as_str(), "status": after.status.as_str() });
    audit::record(&mut tx, &req, Event::new("operation.cancel", "operation", Some(id)).details(details)).await?;
    tx.commit().await?;
    Ok(super::vms::accepted(&after))
}
