//! `/v1/operations`: long work (VM create, power, resize, migrate, delete,
//! snapshot revert) to poll after a `202 Accepted`. A cluster delegate sees the
//! operations on VMs of its clusters only.

use axum::Json;
use basalt_client::{Operation, Page};

use super::crud;
use super::extract::{page, ApiQuery, PageQuery, PathId, Req};
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
