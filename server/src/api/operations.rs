//! `/v1/operations`: long work (VM create, power, resize, migrate, delete,
//! snapshot revert) to poll after a `202 Accepted`.

use super::crud;
use super::extract::{ApiQuery, PageQuery, PathId, Req};
use crate::compute::operations::{OperationRow, COLUMNS};
use crate::error::ApiResult;
use axum::Json;
use basalt_client::{Operation, Page};

/// List the operations of the current context.
#[utoipa::path(get, operation_id = "operations_list", path = "/v1/operations", tag = "compute", params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Operation>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<Operation>>> {
    crud::list::<OperationRow, Operation>(&req, &q, "operations", COLUMNS).await
}

/// Poll an operation: `status` is `pending`, `running`, `succeeded` or `failed`
/// (with `error`).
#[utoipa::path(get, operation_id = "operations_get", path = "/v1/operations/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = Operation), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<Operation>> {
    let mut tx = req.tx()?;
    let op: Operation = crud::fetch::<OperationRow, _>(&mut tx, "operations", COLUMNS, id, false, "operation").await?;
    tx.commit().await?;
    Ok(Json(op))
}
